"""Issue 5 figures: first audio chunk, end of speech to final transcript, streamed WER, and
transcript lag over 60 s streams sent in real time (1 client, then 4 at once).

Run: .venv/bin/python -m bench.streaming
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from typing import Any

import httpx
import websockets

from bench.harness import running_service, table
from tests.integration.speech import speech_16k_pcm, wer

THREE = (
    "The weather is lovely today. We should walk along the river after lunch. "
    "Bring a warm coat, because the wind can be cold near the water."
)
TWENTY = (
    "The quick brown fox jumps over the lazy dog while the sun sets slowly "
    "behind the distant purple mountains tonight."
)
UTTERANCES = [
    "Good morning, I would like to book a table for two people tonight.",
    "Could we sit near the window if that is possible?",
    "We will arrive at around eight o'clock in the evening.",
    "My name is Alex and my phone number ends in four two.",
    "Please let me know if anything changes before then.",
    "Thank you very much, that is perfect for us.",
]
FRAME = 640  # 20 ms


async def first_chunk(ws_url: str, text: str) -> tuple[float, float]:
    """(first chunk ms, whole stream ms) as the client sees them."""
    async with websockets.connect(ws_url, max_size=None) as ws:
        start = time.perf_counter()
        await ws.send(
            json.dumps({"type": "text", "text": text, "stream": True, "use_cache": False})
        )
        first = None
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                first = first or time.perf_counter()
            elif json.loads(frame)["type"] == "audio_end":
                end = time.perf_counter()
                assert first is not None
                return 1000 * (first - start), 1000 * (end - start)


async def speak_stream(ws_url: str, pieces: list[bytes], gap: float) -> list[dict[str, Any]]:
    """Send utterances with `gap` s of silence in real time; per final: lag after end of speech."""
    results: list[dict[str, Any]] = []
    silence = b"\x00\x00" * int(16_000 * gap)
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "stt_start", "sample_rate": 16000}))
        await ws.recv()
        speech_ended: list[float] = []
        finals: list[dict[str, object]] = []

        async def receive() -> None:
            while len(finals) < len(pieces):
                message = json.loads(await ws.recv())
                if message["type"] == "final":
                    message["received"] = time.perf_counter()
                    finals.append(message)

        receiver = asyncio.create_task(receive())
        clock = time.perf_counter()
        for pcm in pieces:
            for audio in (pcm, silence):
                for i in range(0, len(audio), FRAME):
                    await ws.send(audio[i : i + FRAME])
                    clock += 0.02
                    await asyncio.sleep(max(0.0, clock - time.perf_counter()))
                if audio is pcm:
                    speech_ended.append(time.perf_counter())
        await asyncio.wait_for(receiver, 30)
        for ended, final in zip(speech_ended, finals, strict=True):
            received = float(str(final["received"]))
            results.append({"lag_ms": 1000 * (received - ended), "text": str(final["text"])})
    return results


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with running_service() as service, httpx.Client(base_url=service.url, timeout=60) as http:
        ws_url = service.url.replace("http", "ws") + "/ws/voice"
        asyncio.run(first_chunk(ws_url, "Warm up."))
        ratios, singles = [], []
        for _ in range(5):
            first, whole = asyncio.run(first_chunk(ws_url, THREE))
            ratios.append(first / whole)
            singles.append(asyncio.run(first_chunk(ws_url, TWENTY))[0])
        ratio, single = statistics.median(ratios), statistics.median(singles)
        rows.append(
            (
                "first chunk / whole stream, 3 sentences (median of 5)",
                f"{ratio:.2f}",
                "<= 0.35",
                str(ratio <= 0.35),
            )
        )
        rows.append(
            (
                "first chunk, one 20-word sentence (median of 5)",
                f"{single:.0f} ms",
                "<= 300 ms",
                str(single <= 300),
            )
        )

        five = speech_16k_pcm(" ".join(UTTERANCES[:2]))[: 16_000 * 2 * 5]
        lags = [asyncio.run(speak_stream(ws_url, [five], 1.0))[0]["lag_ms"] for _ in range(10)]
        lag = statistics.median(lags)
        rows.append(
            (
                "end of speech -> final, 5 s utterance (median of 10)",
                f"{lag:.0f} ms (max {max(lags):.0f})",
                "<= 800 ms",
                str(lag <= 800),
            )
        )

        pieces = [speech_16k_pcm(text) for text in UTTERANCES]
        streamed = asyncio.run(speak_stream(ws_url, pieces, 0.8))
        reference = " ".join(UTTERANCES)
        streamed_wer = wer(reference, " ".join(str(r["text"]) for r in streamed))
        one_shot = http.post(
            "/api/stt",
            json={
                "audio_base64": base64.b64encode(
                    _wav(b"".join(p + b"\x00\x00" * 12_800 for p in pieces))
                ).decode()
            },
        ).json()["text"]
        shot_wer = wer(reference, one_shot)
        limit = max(shot_wer * 1.15, shot_wer + 0.01)
        rows.append(
            (
                "WER streamed / one-shot, same audio",
                f"{streamed_wer:.3f} / {shot_wer:.3f}",
                "<= 1.15x",
                str(streamed_wer <= limit),
            )
        )

        long_stream = pieces * 3  # ~60 s with the gaps
        for clients in (1, 4):
            every = asyncio.run(many_clients(ws_url, long_stream, clients))
            worst_last = max(r[-1]["lag_ms"] for r in every)
            growth = max(_mean_lag(r[-4:]) - _mean_lag(r[:4]) for r in every)
            # The 1.5 s bound is for one stream; with 4 the figure is that lag does not grow.
            last_target = "<= 1500 ms" if clients == 1 else "measure"
            last_ok = str(worst_last <= 1500) if clients == 1 else "-"
            rows.append(
                (
                    f"{clients} real-time client(s), 60 s: lag of last final (worst)",
                    f"{worst_last:.0f} ms",
                    last_target,
                    last_ok,
                )
            )
            rows.append(
                (
                    f"{clients} real-time client(s), 60 s: lag growth, last 4 - first 4",
                    f"{growth:+.0f} ms",
                    "no growth (< +200 ms)",
                    str(growth < 200),
                )
            )
    print(table(rows))


async def many_clients(
    ws_url: str, pieces: list[bytes], clients: int
) -> list[list[dict[str, Any]]]:
    runs = [speak_stream(ws_url, pieces, 1.0) for _ in range(clients)]
    return [list(r) for r in await asyncio.gather(*runs)]


def _mean_lag(results: list[dict[str, Any]]) -> float:
    return statistics.mean(float(r["lag_ms"]) for r in results)


def _wav(pcm: bytes) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out.getvalue()


if __name__ == "__main__":
    main()
