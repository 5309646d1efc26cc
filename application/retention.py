"""What was said or heard, kept only when asked (RETAIN_CONTENT, for debugging)."""

from __future__ import annotations

import logging

content_log = logging.getLogger("voicepipe.content")


class Retention:
    """RETAIN_CONTENT=true (debugging only): log what was said or heard; off by default."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def keep(self, kind: str, text: str) -> None:
        if self.enabled:
            content_log.info("content %s: %s", kind, text[:500])
