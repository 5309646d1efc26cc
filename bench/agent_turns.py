"""Issue 26: how soon a voice agent answers, on recorded human speech at real time.

    .venv/bin/python -m bench.agent_turns [--clips 20] [--base PATH]

Each clip (bench/human_speech, 16 kHz, resampled to the Realtime API's 24 kHz) is one user
turn on a fresh /v1/realtime conversation, sent in 100 ms appends at real time and followed
by silence at real time, against a local fake chat model that answers at once. Per
configuration:
- voice to voice: the end of the clip's speech (its end minus its trailing silence) to the
  first `response.output_audio.delta` (median, p90);
- turns cut short: clips the server split into more than one user turn, and clips whose
  final differs from the one-shot `/v1/audio/transcriptions` transcript of the whole clip;
- speculative answers: begun and dropped per 100 turns (`/stats`).
`--base PATH` runs the same configurations on another checkout (a worktree of the main this
started from) in the same run: both services run at once and each clip goes to one, then the
other.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from adapters.pyav_audio_streams import PyAVAudioConverter
from bench.harness import ROOT, running_service_at
from bench.human_speech import Clip, clips, normalize
from tests.integration.fake_llm import FakeLLM

RATE = 24_000
FRAME = RATE * 2 // 10  # 100 ms
ANSWER = "Sure. It is sunny and twenty degrees in Paris today."
CONFIGS: dict[str, dict[str, Any] | None] = {
    "server_vad (default)": None,
    "semantic_vad auto": {"type": "semantic_vad", "eagerness": "auto"},
}


def chosen(count: int) -> list[tuple[Clip, bytes]]:
    usable = clips(shortest=1.5, longest=8.0)
    step = max(1, len(usable) // count)
    converter = PyAVAudioConverter()
    return [(c, converter.resample(c.pcm, 16_000, RATE)) for c in usable[::step][:count]]


def speech_end(pcm: bytes) -> float:
    """Seconds from the clip's start to the end of its speech (last 10 ms over -40 dBFS)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    window = RATE // 100
    for at in range(len(samples) - window, 0, -window):
        if np.sqrt(np.mean(samples[at : at + window] ** 2)) > 0.01:
            return (at + window) / RATE
    return len(samples) / RATE


async def one_turn(url: str, pcm: bytes, detection: dict[str, Any] | None) -> dict[str, Any]:
    async with websockets.connect(url, max_size=None) as socket:
        if detection is not None:
            session = {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}
            await socket.send(json.dumps({"type": "session.update", "session": session}))
        first: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        finals: list[str] = []

        async def read() -> None:
            async for message in socket:
                event = json.loads(message)
                kind = event["type"]
                if kind == "response.output_audio.delta" and not first.done():
                    first.set_result(time.perf_counter())
                elif kind == "conversation.item.input_audio_transcription.completed":
                    finals.append(event["transcript"])

        reader = asyncio.create_task(read())
        start = time.perf_counter()
        silence = b"\x00\x00" * RATE * 6
        audio = pcm + silence
        for index, at in enumerate(range(0, len(audio), FRAME)):
            if first.done() and at >= len(pcm):
                break
            delay = start + index * 0.1 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = base64.b64encode(audio[at : at + FRAME]).decode()
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        heard = await asyncio.wait_for(first, 10) if not first.done() else first.result()
        await asyncio.sleep(0.5)  # the last final, if any
        reader.cancel()
        return {"v2v_ms": 1000 * (heard - start - speech_end(pcm)), "finals": finals}


def one_shot(http: httpx.Client, pcm: bytes) -> str:
    from bench.streaming import _wav

    wav = _wav(PyAVAudioConverter().resample(pcm, RATE, 16_000))
    answer = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)},
                       data={"model": "whisper-1"})  # fmt: skip
    return str(answer.json()["text"])


def measure(roots: dict[str, Path], turns: list[tuple[Clip, bytes]]) -> dict[str, Any]:
    """Every service runs at once; each clip goes to one after the other (interleaved), so
    the machine's load falls on all alike."""
    figures: dict[str, Any] = {label: {} for label in roots}
    with contextlib.ExitStack() as stack:
        llm = stack.enter_context(FakeLLM(ANSWER))
        services = {
            label: stack.enter_context(
                running_service_at(root, LLM_BASE_URL=llm.url, LLM_MODEL="x")
            )
            for label, root in roots.items()
        }
        http = {label: stack.enter_context(httpx.Client(base_url=s.url, timeout=120))
                for label, s in services.items()}  # fmt: skip
        urls = {label: s.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
                for label, s in services.items()}  # fmt: skip
        for url in urls.values():
            asyncio.run(one_turn(url, turns[0][1], None))  # warm-up
        first = next(iter(http.values()))
        whole = [normalize(one_shot(first, pcm)) for _, pcm in turns]
        for name, detection in CONFIGS.items():
            before = {label: _speculated(h) for label, h in http.items()}
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in roots}
            for _, pcm in turns:
                for label, url in urls.items():
                    runs[label].append(asyncio.run(one_turn(url, pcm, detection)))
            for label, h in http.items():
                after, was = _speculated(h), before[label]
                done = runs[label]
                figures[label][name] = {
                    "v2v": [r["v2v_ms"] for r in done],
                    "split": sum(len(r["finals"]) > 1 for r in done),
                    "differs": sum(
                        normalize(" ".join(r["finals"])) != w
                        for r, w in zip(done, whole, strict=True)
                    ),
                    "begun": sum(after.values()) - sum(was.values()),
                    "dropped": after["dropped"] - was["dropped"],
                }
    return figures


def _speculated(http: httpx.Client) -> dict[str, int]:
    realtime = http.get("/stats").json()["realtime"]
    return dict(realtime.get("speculative_answers", {"used": 0, "dropped": 0}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--base", type=Path, help="a checkout of the main to compare with")
    args = parser.parse_args()
    turns = chosen(args.clips)
    roots = {"this": ROOT} | ({"base": args.base} if args.base else {})
    figures = measure(roots, turns)
    rows = []
    for label, results in figures.items():
        for name, r in results.items():
            v2v = sorted(r["v2v"])
            per_100 = 100 / len(turns)
            rows.append(
                (
                    f"{label}: {name}",
                    f"{statistics.median(v2v):.0f} ms (p90 {v2v[int(0.9 * (len(v2v) - 1))]:.0f})",
                    f"{r['split']} split, {r['differs']} differ",
                    f"{r['begun'] * per_100:.0f} begun, {r['dropped'] * per_100:.0f} dropped",
                )
            )
    print(f"{len(turns)} human clips, one turn each")
    header = ("service: turn detection", "voice to voice", "turns cut short", "speculative/100")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
