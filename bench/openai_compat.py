"""Issue 6 figure: /v1/audio/transcriptions costs the same as /api/stt (one shared pipeline).

Run: .venv/bin/python -m bench.openai_compat
"""

from __future__ import annotations

import base64

import httpx

from bench.foundation import CLIP_TEXT, exactly, interleaved, resample_wav
from bench.harness import running_service, table


def main() -> None:
    with running_service() as service, httpx.Client(base_url=service.url, timeout=120) as http:
        clip = http.post("/api/tts", json={"text": CLIP_TEXT, "format": "wav"}).json()
        wav = exactly(resample_wav(base64.b64decode(clip["audio_base64"]), 16000), 5.0)

        def openai_route() -> None:
            files = {"file": ("clip.wav", wav)}
            http.post("/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})

        def v1_route() -> None:
            http.post("/api/stt", files={"file": ("clip.wav", wav)}).raise_for_status()

        ours, theirs, rounds = interleaved(openai_route, v1_route)
    ratio = ours / theirs
    print(
        table(
            [
                (
                    "/v1/audio/transcriptions / /api/stt, 5 s clip (medians of 10)",
                    f"{ratio:.3f} ({ours * 1000:.0f} / {theirs * 1000:.0f} ms); rounds {rounds}",
                    "<= 1.05",
                    str(ratio <= 1.05),
                )
            ]
        )
    )


if __name__ == "__main__":
    main()
