"""CPU to stream 240 s of speech to 16 kHz PCM through PyAVAudioConverter, as PCM or as the
Ogg/Opus and WebM/Opus a browser's MediaRecorder sends, in 4 KiB slices; then the old way
(re-decoding the growing container every 4 KiB) on 60 s for comparison.

Run: .venv/bin/python -m bench.stream_decoding

CPU is time.process_time (the whole process, every thread), median of three rounds. "+ VAD"
adds the Silero VAD session every listening stream runs on the 16 kHz output, so the ratio
compares what a compressed client costs against a PCM client, not against nearly nothing.
"""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream

from adapters.pyav_audio_streams import PyAVAudioConverter
from adapters.pyav_codec import PyAVAudioCodec
from adapters.silero_vad import SileroVoiceActivityDetector
from bench.harness import median, table
from domain.errors import InvalidAudio
from tests.integration.speech import SENTENCES, speech_16k_pcm

SECONDS = 240
OLD_SECONDS = 60
SLICE = 4 * 1024
ROUNDS = 3
RATE = 16_000


class _Sink:
    """Write-only: the muxer cannot seek back, so it writes as MediaRecorder does (no sizes)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def speech(seconds: int) -> bytes:
    """Piper sentences with 300 ms pauses, repeated to `seconds` of 16 kHz PCM."""
    pause = b"\x00\x00" * (RATE * 3 // 10)
    once = b"".join(speech_16k_pcm(text) + pause for text in SENTENCES)
    whole = once * (seconds * RATE * 2 // len(once) + 1)
    return whole[: seconds * RATE * 2]


def opus(pcm: bytes, container_format: str) -> bytes:
    """Opus at 32 kbit/s in 20 ms frames, as browsers record speech."""
    sink = _Sink()
    with av.open(sink, mode="w", format=container_format) as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        assert isinstance(stream, AudioStream)
        stream.bit_rate = 32_000
        frame = AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return bytes(sink.data)


def resampled(pcm: bytes, rate: int) -> bytes:
    return PyAVAudioConverter().resample(pcm, RATE, rate)


async def stream_cpu(
    converter: PyAVAudioConverter,
    encoding: str,
    rate: int,
    data: bytes,
    vad: SileroVoiceActivityDetector | None,
) -> tuple[float, float]:
    """(CPU seconds, seconds of 16 kHz audio out) for one client's stream in 4 KiB slices."""
    session = vad.session() if vad else None
    start = time.process_time()
    stream = converter.open_stream(encoding, rate)
    out = 0
    for at in range(0, len(data), SLICE):
        pcm = await stream.feed(data[at : at + SLICE])
        out += len(pcm)
        if session:
            session.probabilities(pcm)
    pcm = await stream.finish()
    if session:
        session.probabilities(pcm)
    return time.process_time() - start, (out + len(pcm)) / (2 * RATE)


async def old_way_cpu(data: bytes) -> tuple[float, float]:
    """The old listener: append, and decode the whole container so far every 4 KiB."""
    codec = PyAVAudioCodec()
    start = time.process_time()
    buffer = bytearray()
    decoded = 0
    for at in range(0, len(data), SLICE):
        buffer += data[at : at + SLICE]
        try:
            decoded = len((await codec.decode(bytes(buffer), RATE)).pcm)
        except InvalidAudio:
            continue
    return time.process_time() - start, decoded / (2 * RATE)


async def measure() -> None:
    pcm = speech(SECONDS)
    inputs = {
        "PCM 16 kHz": ("pcm_s16le", RATE, pcm),
        "PCM 48 kHz": ("pcm_s16le", 48_000, resampled(pcm, 48_000)),
        "Ogg/Opus": ("ogg", 0, opus(pcm, "ogg")),
        "WebM/Opus": ("webm", 0, opus(pcm, "webm")),
    }
    converter = PyAVAudioConverter()
    vad = SileroVoiceActivityDetector()
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(ROUNDS):
        for name, (encoding, rate, data) in inputs.items():
            for column, detector in (("alone", None), ("vad", vad)):
                cpu, out = await stream_cpu(converter, encoding, rate, data, detector)
                assert abs(out - SECONDS) < 0.1, f"{name}: {out:.2f} s out of {SECONDS} s in"
                results.setdefault(name, {}).setdefault(column, []).append(cpu)

    base = {column: median(results["PCM 16 kHz"][column]) for column in ("alone", "vad")}
    print(f"{SECONDS} s of speech in {SLICE}-byte slices, CPU s, median of {ROUNDS} rounds")
    print("| input | bytes | converter CPU s | ÷ PCM 16 kHz | + VAD CPU s | ÷ PCM 16 kHz |")
    print("|---|---|---|---|---|---|")
    for name, (_, _, data) in inputs.items():
        alone, with_vad = median(results[name]["alone"]), median(results[name]["vad"])
        print(
            f"| {name} | {len(data):,} | {alone:.3f} | {alone / base['alone']:.1f} | "
            f"{with_vad:.3f} | {with_vad / base['vad']:.2f} |"
        )

    ogg60 = opus(pcm[: OLD_SECONDS * RATE * 2], "ogg")
    new_cpu, _ = await stream_cpu(converter, "ogg", 0, ogg60, None)
    old_cpu, old_out = await old_way_cpu(ogg60)
    assert abs(old_out - OLD_SECONDS) < 0.1
    rows = []
    for name in ("Ogg/Opus", "WebM/Opus"):
        ratio = median(results[name]["vad"]) / base["vad"]
        rows.append((f"{name} ÷ PCM 16 kHz, + VAD", f"{ratio:.2f}", "<= 1.5", str(ratio <= 1.5)))
    rows.append((f"old way, Ogg/Opus {OLD_SECONDS} s (CPU s)", f"{old_cpu:.2f}", "-", "-"))
    rows.append((f"new way, Ogg/Opus {OLD_SECONDS} s (CPU s)", f"{new_cpu:.3f}", "-", "-"))
    rows.append(("old ÷ new", f"{old_cpu / new_cpu:.0f}x", "-", "-"))
    print()
    print(table(rows))


def main() -> None:
    asyncio.run(measure())


if __name__ == "__main__":
    main()
