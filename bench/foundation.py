"""Issue 2 figures: STT and TTS overhead over the bare models, a free event loop,
cache-hit latency, start-up time and memory; then what each audio and text component takes
on its own (codec, processing, sentiment), in this process.

Run: .venv/bin/python -m bench.foundation   (components only: ... -m bench.foundation components)
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import os
import sys
import threading
import time
import wave
from collections.abc import Awaitable, Callable

import httpx
import numpy as np

from bench.harness import load_generator, median, requests_per_second, running_service, table

CLIP_TEXT = (
    "The quick brown fox jumps over the lazy dog while the sun sets slowly "
    "behind the distant purple mountains."
)
CLIP_SECONDS = 5.0
MISS_TEXT = (
    "The quick brown fox jumps over the lazy dog while the sun sets slowly "
    "behind the distant purple mountains tonight."
)  # 20 words
RUNS = 10
ROUNDS = 3  # the machine is noisy: report the median of three medians-of-ten


def timed(call: Callable[..., object], *args: object, **kwargs: object) -> float:
    start = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - start


def wav_to_float(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def bare_whisper() -> Callable[[np.ndarray], None]:
    from faster_whisper import WhisperModel

    from adapters.faster_whisper_transcriber import bundled_model

    model = WhisperModel(
        str(bundled_model()), device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1
    )

    def transcribe(audio: np.ndarray) -> None:
        segments, _ = model.transcribe(audio, beam_size=5, vad_filter=True)
        list(segments)  # the generator is lazy: the work happens here

    return transcribe


def bare_piper() -> Callable[[str], None]:
    from adapters.piper_synthesizer import bundled_voice, load_voice

    voice = load_voice(bundled_voice())

    def synthesize(text: str) -> None:
        list(voice.synthesize(text))

    return synthesize


def interleaved(a: Callable[[], None], b: Callable[[], None]) -> tuple[float, float, list[float]]:
    """Medians of RUNS timings each, alternating so machine noise hits both alike.

    Repeated ROUNDS times; returns the round with the median ratio, and every ratio.
    """
    a()  # warm up both
    b()
    rounds = []
    for _ in range(ROUNDS):
        times_a, times_b = [], []
        for _ in range(RUNS):
            times_a.append(timed(a))
            times_b.append(timed(b))
        rounds.append((median(times_a), median(times_b)))
    rounds.sort(key=lambda r: r[0] / r[1])
    middle = rounds[len(rounds) // 2]
    return middle[0], middle[1], [round(r[0] / r[1], 3) for r in rounds]


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with running_service() as service, httpx.Client(base_url=service.url, timeout=120) as http:
        ready = service.ready_seconds
        rows.append(("start to ready (s)", f"{ready:.2f}", "<= 10", str(ready <= 10)))

        # A 16 kHz wav clip of ~5 s, spoken by the service itself.
        clip = http.post("/api/tts", json={"text": CLIP_TEXT, "format": "wav"}).json()
        wav16 = exactly(resample_wav(base64.b64decode(clip["audio_base64"]), 16000), CLIP_SECONDS)
        seconds = len(wav_to_float(wav16)) / 16000
        body = {"audio_base64": base64.b64encode(wav16).decode()}

        def stt() -> None:
            http.post("/api/stt", json=body).raise_for_status()

        def tts_miss() -> None:
            http.post("/api/tts", json={"text": MISS_TEXT, "use_cache": False}).raise_for_status()

        for _ in range(3):
            stt()
            tts_miss()
        rss = service.rss_mb()
        rows.append(("resident memory after warm-up (MB)", f"{rss:.0f}", "<= 700", str(rss <= 700)))

        audio = wav_to_float(wav16)
        whisper, piper = bare_whisper(), bare_piper()
        service_stt, bare_stt, stt_rounds = interleaved(stt, lambda: whisper(audio))
        service_tts, bare_tts, tts_rounds = interleaved(tts_miss, lambda: piper(MISS_TEXT))
        http.post("/api/tts", json={"text": MISS_TEXT})
        hits = sorted(
            timed(http.post, "/api/tts", json={"text": MISS_TEXT}) * 1000 for _ in range(200)
        )
        steps = http.get("/stats").json()["latency_ms"]["steps"]

        idle = requests_per_second(service.port, "/health", 3)
        stop = threading.Event()

        def stt_back_to_back() -> None:
            while not stop.is_set():
                stt()

        worker = threading.Thread(target=stt_back_to_back)
        worker.start()
        time.sleep(0.5)
        busy = requests_per_second(service.port, "/health", 5)
        stop.set()
        worker.join()

    stt_ratio, tts_ratio, loop_ratio = service_stt / bare_stt, service_tts / bare_tts, busy / idle
    rows += [
        (
            f"STT REST {seconds:.1f} s clip: service / bare model",
            f"{stt_ratio:.3f} ({service_stt * 1000:.0f} / {bare_stt * 1000:.0f} ms); "
            f"rounds {stt_rounds}",
            "<= 1.08",
            str(stt_ratio <= 1.08),
        ),
        (
            "/health req/s during STT / idle",
            f"{loop_ratio:.2f} ({busy:.0f} / {idle:.0f})",
            ">= 0.50",
            str(loop_ratio >= 0.5),
        ),
        (
            "TTS miss 20 words wav: service / bare Piper",
            f"{tts_ratio:.3f} ({service_tts * 1000:.0f} / {bare_tts * 1000:.0f} ms); "
            f"rounds {tts_rounds}",
            "<= 1.3",
            str(tts_ratio <= 1.3),
        ),
        ("  of which processing p50 (ms)", f"{steps['processing']['p50']:.1f}", "measure", "-"),
        ("  of which encoding p50 (ms)", f"{steps['encoding']['p50']:.1f}", "measure", "-"),
        (
            "TTS cache hit REST p50 (ms)",
            f"{hits[100]:.2f} (p99 {hits[197]:.2f})",
            "<= 5",
            str(hits[100] <= 5),
        ),
    ]
    print(table(rows + component_rows()))
    print(f"load generator for /health: {load_generator()}")


async def _timings_ms(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await call()  # warm up
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        timings.append(1000 * (time.perf_counter() - start))
    return timings


def component_rows() -> list[tuple[str, str, str, str]]:
    """Each component alone, on Piper's speech: no service, no HTTP, no other request."""
    from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice
    from adapters.pyav_codec import PyAVAudioCodec
    from adapters.pydub_processor import PydubAudioProcessor
    from adapters.textblob_sentiment import TextBlobSentimentAnalyzer
    from domain.speech import AudioClip, AudioFormat, ProcessingSettings

    async def measure() -> list[tuple[str, str, str, str]]:
        piper = PiperSynthesizer([bundled_voice()])
        speech = await piper.synthesize(CLIP_TEXT, piper.default_voice)

        def cut(seconds: int) -> AudioClip:  # the speech, repeated as needed
            pcm = speech.pcm * (1 + int(seconds * speech.sample_rate * 2 / len(speech.pcm)))
            return AudioClip(pcm[: seconds * speech.sample_rate * 2], speech.sample_rate)

        codec, rows = PyAVAudioCodec(), []
        five = cut(5)
        for audio_format in (AudioFormat.WAV, AudioFormat.MP3, AudioFormat.OPUS, AudioFormat.FLAC):
            encode = await _timings_ms(functools.partial(codec.encode, five, audio_format), 5)
            data = await codec.encode(five, audio_format)
            decode = await _timings_ms(functools.partial(codec.decode, data, 16_000), 5)
            rows.append(
                (
                    f"codec 5 s {audio_format.value}: encode / decode to 16 kHz, min (ms)",
                    f"{min(encode):.2f} / {min(decode):.2f}",
                    "measure",
                    "-",
                )
            )
        processor, six = PydubAudioProcessor(), cut(6)
        processing = await _timings_ms(lambda: processor.process(six, ProcessingSettings()), 10)
        rows.append(
            (
                f"processing 6 s at {speech.sample_rate} Hz, median (ms)",
                f"{median(processing):.2f}",
                "measure",
                "-",
            )
        )
        sentence = "The weather in Paris is beautiful, and I am so happy to walk by the river. "
        text = (sentence * (5000 // len(sentence) + 1))[:5000]
        analyzer = TextBlobSentimentAnalyzer()
        sentiment = await _timings_ms(lambda: analyzer.analyse(text), 10)
        figure = "sentiment of 5,000 characters, median (ms)"
        rows.append((figure, f"{median(sentiment):.1f}", "measure", "-"))
        return rows

    return asyncio.run(measure())


def exactly(data: bytes, seconds: float) -> bytes:
    """Cut or pad a 16 kHz mono wav to an exact duration."""
    samples = (wav_to_float(data) * 32768).astype("<i2")
    wanted = int(seconds * 16000)
    samples = np.pad(samples[:wanted], (0, max(0, wanted - len(samples))))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def resample_wav(data: bytes, rate: int) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(data), "r") as source, av.open(out, "w", format="wav") as target:
        stream = target.add_stream("pcm_s16le", rate=rate, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            for converted in resampler.resample(frame):
                target.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            target.mux(stream.encode(converted))
        target.mux(stream.encode(None))
    return out.getvalue()


if __name__ == "__main__":
    if sys.argv[1:] == ["components"]:
        print(table(component_rows()))
    else:
        main()
