"""Issue 17: streamed accuracy and turn ends on recorded human speech, through the service.

Run: .venv/bin/python -m bench.turn_end [--clips 40] [--configs "before;after"] [--dump DIR]

For each configuration a `voicepipe serve` starts on loopback; one WebSocket client streams
recorded human clips (bench/human_speech; 1.5-12 s each, every k-th of them) over /ws/voice
in real time, 20 ms frames, each clip followed by 1.5 s of silence. Figures:
- end of speech -> final: the server's own `end_of_speech_ms` of every final (median, p95);
- streamed WER: every final joined, against every reference joined;
- one-shot WER: `POST /api/stt` of each clip through the same service;
- their ratio.
Configurations: `before` ends turns on 500 ms of silence only (the old behaviour); `after` is
the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.harness import p95, running_service
from bench.human_speech import Clip, clips, wer
from bench.streaming import _wav

FRAME = 640  # 20 ms
GAP = b"\x00\x00" * int(16_000 * 1.5)
CONFIGS = {
    "before": {  # the previous defaults
        "STT_TURN_DETECTION": "silence",
        "STT_EARLY_MS": "192",
        "STT_DRAFT_WINDOW_S": "30",
        "STT_FINAL_WINDOW_S": "30",
    },
    "after": {},
    "after, silence turns": {"STT_TURN_DETECTION": "silence"},
}


def chosen(count: int) -> list[Clip]:
    usable = [c for c in clips(shortest=1.5, longest=12.0)]
    step = max(1, len(usable) // count)
    return usable[::step][:count]


async def stream(ws_url: str, audio: list[Clip]) -> list[dict[str, Any]]:
    """Every final of one real-time stream of the clips, in order."""
    finals: list[dict[str, Any]] = []
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "stt_start", "sample_rate": 16000}))
        await ws.recv()

        async def receive() -> None:
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "final":
                    finals.append(message)
                elif message["type"] == "stt_stopped":
                    return

        receiver = asyncio.create_task(receive())
        clock = time.perf_counter()
        for clip in audio:
            for pcm in (clip.pcm, GAP):
                for at in range(0, len(pcm), FRAME):
                    await ws.send(pcm[at : at + FRAME])
                    clock += 0.02
                    await asyncio.sleep(max(0.0, clock - time.perf_counter()))
        await ws.send(json.dumps({"type": "stt_stop"}))
        await asyncio.wait_for(receiver, 60)
    return finals


def one_shot(http: httpx.Client, audio: list[Clip]) -> list[str]:
    texts = []
    for clip in audio:
        body = {"audio_base64": base64.b64encode(_wav(clip.pcm)).decode()}
        reply = http.post("/api/stt", json=body)
        reply.raise_for_status()
        texts.append(reply.json()["text"])
    return texts


async def streams(ws_url: str, parts: list[list[Clip]]) -> list[list[dict[str, Any]]]:
    return list(await asyncio.gather(*(stream(ws_url, part) for part in parts)))


def measure(
    name: str, audio: list[Clip], dump: Path | None = None, count: int = 1
) -> dict[str, float]:
    """`count` streams at once share the clips: more clips in the time, for WER (their turn
    ends then include waiting for one another's finals)."""
    parts = [audio[i::count] for i in range(count)]
    with running_service(**CONFIGS[name]) as service:
        ws_url = service.url.replace("http", "ws") + "/ws/voice"
        with httpx.Client(base_url=service.url, timeout=120) as http:
            one_shot(http, audio[:2])  # warm-up
            shots = [one_shot(http, part) for part in parts]
        finals = asyncio.run(streams(ws_url, parts))
    lags = [float(f["end_of_speech_ms"]) for each in finals for f in each]
    references = [" ".join(c.text for c in part) for part in parts]
    if dump is not None:  # to read the differences: what each way heard
        texts = {"references": references, "one_shot": shots, "finals": finals}
        (dump / f"{name.replace(' ', '_').replace(',', '')}.json").write_text(json.dumps(texts))
    streamed = wer(references, [" ".join(f["text"] for f in each) for each in finals])
    shot = wer(references, [" ".join(texts) for texts in shots])
    return {
        "finals": sum(len(each) for each in finals),
        "median": statistics.median(lags),
        "p95": p95(lags),
        "streamed": streamed,
        "one_shot": shot,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--configs", default="before;after", help="names, separated by ;")
    parser.add_argument("--dump", type=Path, help="a folder for each way's texts")
    parser.add_argument("--streams", type=int, default=1, help="streams at once (WER runs)")
    args = parser.parse_args()
    audio = chosen(args.clips)
    seconds = sum(c.seconds for c in audio)
    print(f"{len(audio)} recorded clips, {seconds:.0f} s of speech, 1.5 s of silence after each")
    print(
        "| configuration | finals | end of speech -> final, median / p95 | WER streamed | "
        "WER one-shot | streamed / one-shot |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.configs.split(";"):
        got = measure(name, audio, args.dump, args.streams)
        ratio = got["streamed"] / got["one_shot"] if got["one_shot"] else float("nan")
        print(
            f"| {name} | {got['finals']:.0f} | {got['median']:.0f} / {got['p95']:.0f} ms | "
            f"{got['streamed']:.4f} | {got['one_shot']:.4f} | {ratio:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
