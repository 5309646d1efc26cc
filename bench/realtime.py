"""Realtime API figures through a running `voicepipe serve`, with a local fake chat model that
streams its answer at once. Audio goes in at real time, as a microphone would send it.

    .venv/bin/python -m bench.realtime

- voice to voice: the end of the user's speech (when its last speech frame was sent) to the
  first `response.output_audio.delta` received;
- barge-in: the user's speech onset (sent) to the last audio delta received;
- transcription sessions: WER on the same clips as one-shot `/api/stt`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

from adapters.pyav_audio_streams import PyAVAudioConverter
from bench.harness import running_service, table
from tests.integration.fake_llm import FakeLLM
from tests.integration.speech import piper_clip, wer
from tests.integration.test_streaming import to_wav

RATE = 24_000
ENV = {k: v for k, v in os.environ.items() if k.startswith("STT_")}
FRAME = RATE * 2 // 10  # 100 ms
QUESTIONS = [
    "What is the weather like in Paris today?",
    "Can you book a table for two at eight tonight?",
    "How long does it take to drive to the airport?",
    "Please remind me to call my mother tomorrow morning.",
    "What time does the pharmacy close on Sundays?",
]
CLIPS = [
    *QUESTIONS,
    "The quick brown fox jumps over the lazy dog.",
    "It is a beautiful day and I am very happy to be here.",
]
LONG_ANSWER = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 15))


def piper_24k(text: str) -> bytes:
    clip = piper_clip(text)
    return PyAVAudioConverter().resample(clip.pcm, clip.sample_rate, RATE)


def espeak_24k(text: str) -> bytes:
    """A second, unrelated synthesizer (espeak-ng's formant voice)."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    pcm = wav[44:]
    return PyAVAudioConverter().resample(pcm, 22_050, RATE)


def onset(pcm: bytes) -> float:
    """Seconds into the clip where speech starts (first 10 ms over -40 dBFS)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    window = RATE // 100
    for at in range(0, len(samples) - window, window):
        if np.sqrt(np.mean(samples[at : at + window] ** 2)) > 0.01:
            return at / RATE
    return 0.0


async def send_realtime(socket: Any, pcm: bytes, start: float) -> float:
    """Sends `pcm` in 100 ms appends on a real-time schedule from `start`; returns the end."""
    for index, at in enumerate(range(0, len(pcm), FRAME)):
        delay = start + index * 0.1 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = base64.b64encode(pcm[at : at + FRAME]).decode()
        await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
    return start + len(pcm) / (2 * RATE)


async def voice_to_voice(url: str, speech: bytes) -> float:
    async with websockets.connect(url, max_size=None) as socket:
        first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        async def read() -> None:
            async for message in socket:
                event = json.loads(message)
                if event["type"] == "response.output_audio.delta" and not first.done():
                    first.set_result(time.perf_counter())
                if event["type"] == "response.done":
                    return

        reader = asyncio.create_task(read())
        start = time.perf_counter()
        ended = await send_realtime(socket, speech, start)
        speech_end = start + (len(speech) / (2 * RATE)) - _tail(speech)
        silence = b"\x00\x00" * RATE * 3
        sender = asyncio.create_task(send_realtime(socket, silence, ended))
        heard = await asyncio.wait_for(first, 30)
        sender.cancel()
        await asyncio.wait_for(reader, 60)
        return 1000 * (heard - speech_end)


def _tail(pcm: bytes) -> float:
    """Seconds of trailing silence in the clip (the onset of its samples played backwards)."""
    return onset(np.frombuffer(pcm, dtype="<i2")[::-1].tobytes())


async def barge_in(url: str, interruption: bytes) -> float:
    async with websockets.connect(url, max_size=None) as socket:
        await socket.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Tell me a long story."}]}}))  # fmt: skip
        await socket.send(json.dumps({"type": "response.create"}))
        last_audio = 0.0
        playing = asyncio.Event()
        done = asyncio.get_running_loop().create_future()

        async def read() -> None:
            nonlocal last_audio
            async for message in socket:
                event = json.loads(message)
                if event["type"] == "response.output_audio.delta":
                    last_audio = time.perf_counter()
                    playing.set()
                elif event["type"] == "response.done":
                    done.set_result(event["response"]["status"])
                    return

        reader = asyncio.create_task(read())
        await playing.wait()
        await asyncio.sleep(1.5)
        start = time.perf_counter()
        speech_onset = start + onset(interruption)
        await send_realtime(socket, interruption, start)
        status = await asyncio.wait_for(done, 30)
        reader.cancel()
        assert status == "cancelled", status
        return 1000 * (last_audio - speech_onset)


async def transcribe_session(url: str, speech: bytes) -> str:
    async with websockets.connect(url + "&intent=transcription", max_size=None) as socket:
        for at in range(0, len(speech), FRAME * 5):
            chunk = base64.b64encode(speech[at : at + FRAME * 5]).decode()
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        silence = base64.b64encode(b"\x00\x00" * RATE).decode()
        await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": silence}))
        texts = []
        async with asyncio.timeout(60):
            async for message in socket:
                event = json.loads(message)
                if event["type"] == "conversation.item.input_audio_transcription.completed":
                    texts.append(event["transcript"])
                    return " ".join(texts)
    return ""


def interruption(kept: Path | None) -> bytes:
    """Piper speaks differently each time, and whether the first 100 ms append already holds
    enough speech to start an utterance moves the barge-in figure by a whole append: compare
    two servers on one kept clip."""
    if kept is not None and kept.exists():
        return kept.read_bytes()
    clip = piper_24k("Stop, wait a moment please.")
    if kept is not None:
        kept.write_bytes(clip)
    return clip


def one_shot(http: httpx.Client, speech: bytes) -> str:
    wav = to_wav(speech, RATE)
    answer = http.post("/api/stt", files={"file": ("a.wav", wav, "audio/wav")})
    return str(answer.json()["text"])


def main() -> None:
    parser = argparse.ArgumentParser(description="The Realtime API's figures (issue 15).")
    parser.add_argument("--barge-ins", type=int, default=5, help="barge-ins to time")
    parser.add_argument("--only-barge-in", action="store_true", help="time barge-ins only")
    parser.add_argument(
        "--interruption",
        type=Path,
        help="the barge-in clip (24 kHz s16le): read when there, else spoken and kept there",
    )
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with (
        FakeLLM("Sure. It is sunny and twenty degrees in Paris today.") as llm,
        running_service(LLM_BASE_URL=llm.url, LLM_MODEL="fake", **ENV) as service,
        httpx.Client(base_url=service.url, timeout=120) as http,
    ):
        url = service.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
        questions = [piper_24k(q) for q in QUESTIONS]
        asyncio.run(voice_to_voice(url, questions[0]))  # warm-up
        runs = 0 if args.only_barge_in else 2
        v2v = [asyncio.run(voice_to_voice(url, q)) for q in questions * runs] or [0.0]
        rows.append(
            (
                "end of user speech -> first output_audio.delta (median of 10)",
                f"{statistics.median(v2v):.0f} ms (max {max(v2v):.0f})",
                "<= 900 ms",
                str(statistics.median(v2v) <= 900),
            )
        )
        llm.answer = LONG_ANSWER
        stop = interruption(args.interruption)
        barges = [asyncio.run(barge_in(url, stop)) for _ in range(args.barge_ins)]
        rows.append(
            (
                f"barge-in: speech onset -> last audio delta (median of {len(barges)})",
                f"{statistics.median(barges):.0f} ms (max {max(barges):.0f})",
                "<= 150 ms",
                str(statistics.median(barges) <= 150),
            )
        )
        clips = [(t, piper_24k(t)) for t in CLIPS] + [(t, espeak_24k(t)) for t in CLIPS]
        clips = [] if args.only_barge_in else clips
        if clips:
            references = " ".join(t for t, _ in clips)
            streamed = " ".join(asyncio.run(transcribe_session(url, pcm)) for _, pcm in clips)
            whole = " ".join(one_shot(http, pcm) for _, pcm in clips)
            streamed_wer, whole_wer = wer(references, streamed), wer(references, whole)
            rows.append(
                (
                    "transcription session WER vs /api/stt (Piper + espeak-ng, 14 clips)",
                    f"{streamed_wer:.3f} vs {whole_wer:.3f}",
                    "same",
                    str(streamed_wer <= whole_wer + 0.01),
                )
            )
    print(table(rows))
    print("voice to voice, each (ms):", [round(v) for v in v2v])
    print("barge-in, each (ms):", [round(b) for b in barges])


if __name__ == "__main__":
    main()
