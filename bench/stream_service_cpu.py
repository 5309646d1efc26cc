"""The service's own CPU for one listening stream, as PCM or as Ogg/WebM, over /ws/voice.

Run: .venv/bin/python -m bench.stream_service_cpu

A real `voicepipe serve`; one WebSocket client sends 120 s of audio in 4 KiB frames at 8x real
time (inside the 10x pace), then `stt_stop`, and waits for `stt_stopped`. The figure is the
server process's CPU (user + system, every thread) for the whole stream. Two kinds of audio:
a low noise floor (no speech: voice activity detection and decoding only, the case the
hostile-input review measured), and Piper speech (utterances transcribed: what users send).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import psutil
import websockets

from bench.harness import median, running_service, table
from bench.stream_decoding import RATE, SLICE, opus, speech

SECONDS = 120
ROUNDS = 2
PACE = 8.0  # times real time


def noise(seconds: int) -> bytes:
    rng = np.random.default_rng(7)
    samples = rng.normal(0, 30, seconds * RATE).astype("<i2")  # about -60 dBFS
    return samples.tobytes()


async def stream(url: str, data: bytes, encoding: str, seconds: int) -> None:
    frames = [data[i : i + SLICE] for i in range(0, len(data), SLICE)]
    interval = seconds / PACE / len(frames)
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "stt_start", "encoding": encoding}))
        assert json.loads(await ws.recv())["type"] == "stt_started"
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, frame in enumerate(frames):
            await ws.send(frame)
            await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
        await ws.send(json.dumps({"type": "stt_stop"}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "error":
                raise RuntimeError(message)
            if message["type"] == "stt_stopped":
                return


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> None:
    rows = []
    with running_service() as service:
        server = psutil.Process(service.process.pid)
        url = service.url.replace("http", "ws") + "/ws/voice"
        for kind, pcm in (("noise floor", noise(SECONDS)), ("speech", speech(SECONDS))):
            inputs = {
                "pcm_s16le": pcm,
                "ogg": opus(pcm, "ogg"),
                "webm": opus(pcm, "webm"),
            }
            costs: dict[str, list[float]] = {name: [] for name in inputs}
            for _ in range(ROUNDS):
                for encoding, data in inputs.items():  # interleaved: drift hits all alike
                    before = cpu(server)
                    asyncio.run(stream(url, data, encoding, SECONDS))
                    costs[encoding].append(cpu(server) - before)
            base = median(costs["pcm_s16le"])
            for encoding in inputs:
                value = median(costs[encoding])
                pcm_row = encoding == "pcm_s16le"
                rows.append(
                    (
                        f"{kind}, {encoding}: server CPU s (÷ PCM)",
                        f"{value:.2f} ({value / base:.2f})",
                        "1.00" if pcm_row else "<= ~1.5",
                        "-" if pcm_row else str(value / base <= 1.5),
                    )
                )
    print(f"{SECONDS} s of audio in {SLICE}-byte frames at {PACE:g}x real time, median of {ROUNDS}")
    print(table(rows))


if __name__ == "__main__":
    main()
