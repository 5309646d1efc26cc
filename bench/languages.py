"""Issue 27: other languages through every listening protocol, on recorded human speech.

Per language (bench/language_speech: Asterisk's Spanish, French and Russian prompts, a human
voice): one-shot WER of `/v1/audio/transcriptions` with `model=base`, the language given and
detected; language-identification accuracy; streamed WER through `/ws/voice`, Deepgram live and
the Realtime API with the language given (each picks `base` from the language); and end of
speech → final on `/ws/voice`, its audio sent in real time.

usage: flock /tmp/bench.lock .venv/bin/python -m bench.languages [--clips N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import time
import wave
from typing import Any

import httpx
from websockets.asyncio.client import connect

from adapters.pyav_audio_streams import PyAVAudioConverter
from bench.harness import running_service
from bench.human_speech import Clip
from bench.human_speech import clips as english_clips
from bench.language_speech import LANGUAGES, clips, wer

NAMES = {"es": "spanish", "fr": "french", "ru": "russian"}
FRAME = 640  # 20 ms


def wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16_000)
        audio.writeframes(pcm)
    return out.getvalue()


async def one_shot(http: httpx.AsyncClient, clip: Clip, language: str | None) -> tuple[str, str]:
    data = {"model": "base", "response_format": "verbose_json"}
    if language:
        data["language"] = language
    answer = await http.post("/v1/audio/transcriptions", data=data,
                             files={"file": ("clip.wav", wav(clip.pcm))})  # fmt: skip
    answer.raise_for_status()
    body = answer.json()
    return body["text"], body["language"]


async def ws_voice(url: str, clip: Clip, language: str) -> tuple[str, list[float]]:
    """Sent in real time: the finals' text and their end of speech → final (ms)."""
    texts, lags = [], []
    async with connect(url.replace("http", "ws") + "/ws/voice", max_size=None) as socket:
        await socket.send(json.dumps({"type": "stt_start", "language": language}))
        started = time.monotonic()
        pcm = clip.pcm + b"\x00\x00" * 16_000  # a second of silence ends the last utterance
        for n, at in enumerate(range(0, len(pcm), FRAME)):
            await socket.send(pcm[at : at + FRAME])
            await asyncio.sleep(max(0.0, started + (n + 1) * 0.02 - time.monotonic()))
        await socket.send(json.dumps({"type": "stt_stop"}))
        async for frame in socket:
            message = json.loads(frame)
            if message["type"] == "final":
                texts.append(message["text"])
                lags.append(message["end_of_speech_ms"])
            elif message["type"] in ("stt_stopped", "error"):
                break
    return " ".join(texts), lags


async def deepgram(url: str, clip: Clip, language: str) -> str:
    # punctuate: the model's own text, as the other protocols give it (the plain form splits
    # French elisions at word timings: d' agent)
    query = f"model=nova-3&language={language}&encoding=linear16&sample_rate=16000&punctuate=true"
    texts = []
    async with connect(url.replace("http", "ws") + "/v1/listen?" + query) as socket:
        for at in range(0, len(clip.pcm), 3200):
            await socket.send(clip.pcm[at : at + 3200])
        await socket.send(json.dumps({"type": "CloseStream"}))
        async for frame in socket:
            message = json.loads(frame)
            if message.get("type") == "Results" and message["is_final"]:
                texts.append(message["channel"]["alternatives"][0]["transcript"])
    return " ".join(texts)


async def realtime(url: str, clip: Clip, language: str) -> str:
    audio = PyAVAudioConverter().resample(clip.pcm, 16_000, 24_000)
    address = url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    async with connect(address, max_size=None) as socket:
        transcription = {"model": "gpt-4o-transcribe", "language": language}
        audio_in = {"transcription": transcription, "turn_detection": None}
        session = {"type": "transcription", "audio": {"input": audio_in}}
        await socket.send(json.dumps({"type": "session.update", "session": session}))
        for at in range(0, len(audio), 9600):
            chunk = base64.b64encode(audio[at : at + 9600]).decode()
            await socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        await socket.send(json.dumps({"type": "input_audio_buffer.commit"}))
        async for frame in socket:
            event: dict[str, Any] = json.loads(frame)
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                return str(event["transcript"])
            if event["type"] == "error":
                raise RuntimeError(event["error"]["message"])
    raise RuntimeError("closed before the transcript")


async def language_rows(url: str, language: str, count: int) -> list[str]:
    every = clips(language)
    chosen = every[:: max(1, len(every) // count)][:count]
    refs = [c.text for c in chosen]
    given, detected, ids, voice, dg, rt, lags = [], [], [], [], [], [], []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for clip in chosen:
            given.append((await one_shot(http, clip, language))[0])
            text, name = await one_shot(http, clip, None)
            detected.append(text)
            ids.append(name == NAMES[language])
            heard, lag = await ws_voice(url, clip, language)
            voice.append(heard)
            lags += lag
            dg.append(await deepgram(url, clip, language))
            rt.append(await realtime(url, clip, language))
    one = wer(refs, given)
    seconds = sum(c.seconds for c in chosen)
    cells = [f"{one:.3f}", f"{wer(refs, detected):.3f}", f"{sum(ids)}/{len(ids)}"]
    cells += [f"{wer(refs, s):.3f} ({wer(refs, s) / max(one, 1e-9):.2f}×)" for s in (voice, dg, rt)]
    cells.append(f"{statistics.median(lags):.0f} / {max(lags):.0f}" if lags else "-")
    return [f"{language} ({len(chosen)} clips, {seconds:.0f} s)", *cells]


async def english_row(url: str, count: int) -> list[str]:
    """The default English model on English human speech, streamed the same way: the base."""
    every = [c for c in english_clips() if c.name.startswith("asterisk_") and c.seconds > 3]
    chosen = every[:: max(1, len(every) // count)][:count]
    heard, lags = [], []
    for clip in chosen:
        text, lag = await ws_voice(url, clip, "en")
        heard.append(text)
        lags += lag
    seconds = sum(c.seconds for c in chosen)
    cells = ["-"] * 3 + [f"{wer([c.text for c in chosen], heard):.3f}", "-", "-"]
    return [f"en, tiny.en ({len(chosen)} clips, {seconds:.0f} s)", *cells,
            f"{statistics.median(lags):.0f} / {max(lags):.0f}"]  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=8, help="clips per language")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="e.g. es,fr")
    parser.add_argument("--no-english", action="store_true", help="skip the tiny.en row")
    args = parser.parse_args()
    count = args.clips
    head = ["language", "one-shot WER (given)", "one-shot WER (detected)", "language ID",
            "/ws/voice WER", "Deepgram live WER", "Realtime WER",
            "EoS→final ms (median / max)"]  # fmt: skip
    rows = []
    with running_service(STT_TURN_DETECTION="silence") as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as http:
            await one_shot(http, clips("es")[0], "es")  # `base` loads on first use: not timed
        for language in args.languages.split(","):
            rows.append(await language_rows(service.url, language, count))
        if not args.no_english:
            rows.append(await english_row(service.url, count))
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    asyncio.run(main())
