"""Use case: what the service can do now. Each component's state (degraded or not, and why),
its bounded model queues, and whether it may take new work (readiness)."""

from __future__ import annotations

from typing import Any

import msgspec

from application.catalog import voices_of
from application.speech_pipeline import SpeechPipeline
from domain.readiness import QueueLoad, Readiness, readiness

Part = dict[str, Any]


class Health:
    """Components report through optional methods and attributes: `health()` (a part),
    `queued` and `max_queue` (a bounded queue), `problem` (what a provider found wrong)."""

    def __init__(
        self,
        *,
        speech: SpeechPipeline,
        transcriber: Any,
        cache: Any,
        event_log: Any,
        warnings: list[str],
        saturated_at: float,
    ) -> None:
        self.speech = speech
        self.transcriber = transcriber
        self.cache = cache
        self.event_log = event_log
        self.warnings = warnings
        self.saturated_at = saturated_at

    def parts(self) -> dict[str, Part]:
        return {
            "tts": self._tts(),
            "stt": self._stt(),
            "cache": component(self.cache),
            "event_log": component(self.event_log),
        }

    def reasons(self, parts: dict[str, Part]) -> list[str]:
        """Why the service is degraded (none: it is fine)."""
        found = list(self.warnings)
        for name, part in parts.items():
            if part.get("status") != "ok":
                found.append(f"{name}: {part.get('reason', part.get('status'))}")
        return found

    def queues(self) -> list[QueueLoad]:
        """Every bounded model queue: each TTS provider's that has one, and the STT models'."""
        components: list[tuple[str, object]] = [
            (f"tts {s.provider}", s) for s in self.speech.providers.synthesizers
        ]
        components.append((f"stt {self.transcriber.model_name}", self.transcriber))
        return [
            QueueLoad(name, int(getattr(c, "queued", 0)), int(getattr(c, "max_queue", 0)))
            for name, c in components
            if hasattr(c, "queued") and hasattr(c, "max_queue")
        ]

    def queue_view(self) -> dict[str, dict[str, int]]:
        return {q.name: {"queued": q.queued, "max": q.max_queue} for q in self.queues()}

    def readiness(self, *, draining: bool) -> Readiness:
        return readiness(self.queues(), saturated_at=self.saturated_at, draining=draining)

    def _tts(self) -> Part:
        chain = self.speech.providers
        breakers = chain.states()
        problems = {
            s.provider: problem
            for s in chain.synthesizers
            if (problem := getattr(s, "problem", None)) is not None
        }
        reasons = [f"{p} circuit {state}" for p, state in breakers.items() if state != "closed"]
        reasons += [f"{p}: {problem}" for p, problem in problems.items()]
        part: Part = {
            "status": "degraded" if reasons else "ok",
            "providers": {s.provider: list(s.voices()) for s in chain.synthesizers},
            "voices": [msgspec.to_builtins(voice) for voice in voices_of(self.speech)],
            "breakers": breakers,
            "problems": problems,
        }
        if reasons:
            part["reason"] = "; ".join(reasons)
        return part

    def _stt(self) -> Part:
        transcriber = self.transcriber
        part: Part = {"status": "ok", "model": transcriber.model_name}
        if hasattr(transcriber, "names"):
            part["models"] = transcriber.names()
            part["loaded"] = transcriber.loaded()  # extra models in memory, idle seconds
        return part


def component(part: object) -> Part:
    report = getattr(part, "health", None)
    if callable(report):
        return dict(report())
    return {"status": "ok", "kind": type(part).__name__}
