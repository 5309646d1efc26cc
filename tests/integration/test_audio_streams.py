"""PyAVAudioConverter on real Piper speech: PCM resampled frame by frame, Ogg/Opus and
WebM/Opus decoded as they arrive in arbitrary slices, bad input, bounds and worker clean-up."""

from __future__ import annotations

import asyncio
import gc
import io
import threading
import time
import wave
from collections.abc import Callable

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream

from adapters.pyav_audio_streams import PyAVAudioConverter
from adapters.pyav_codec import PyAVAudioCodec
from adapters.pyav_container_stream import ContainerStream
from domain.errors import AudioTooLarge, InvalidAudio, InvalidRequest, UnsupportedFormat
from domain.speech import AudioClip
from tests.integration.speech import piper_clip

SENTENCE = "The quick brown fox jumps over the lazy dog, while the band plays on in the park."
RATES = (8_000, 11_025, 22_050, 44_100, 48_000)
SEGMENT, CLUSTER = b"\x18\x53\x80\x67", b"\x1f\x43\xb6\x75"

pytestmark = pytest.mark.asyncio


class _Sink:
    """A write-only file: the muxer cannot seek back, as in a browser's MediaRecorder."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def _opus(pcm: bytes, rate: int, container_format: str) -> bytes:
    """Opus at 32 kbit/s, written as a live recorder writes it (no sizes filled in, no cues)."""
    sink = _Sink()
    with av.open(sink, mode="w", format=container_format) as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        assert isinstance(stream, AudioStream)
        stream.bit_rate = 32_000
        array = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = AudioFrame.from_ndarray(array, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = bytes(sink.data)
    return _unknown_size_clusters(data) if container_format == "webm" else data


def _vint_length(first: int) -> int:
    return 9 - first.bit_length()


def _unknown_size_clusters(webm: bytes) -> bytes:
    """Mark each Cluster's size unknown, as Chrome's MediaRecorder does."""
    out = bytearray(webm)
    pos = webm.index(SEGMENT) + len(SEGMENT)
    pos += _vint_length(webm[pos])  # the segment's own size: already unknown
    while pos < len(webm):
        id_length = _vint_length(webm[pos])
        element = webm[pos : pos + id_length]
        pos += id_length
        length = _vint_length(webm[pos])
        size = int.from_bytes(webm[pos : pos + length], "big") & ((1 << 7 * length) - 1)
        if element == CLUSTER:
            out[pos : pos + length] = bytes([0xFF >> (length - 1)]) + b"\xff" * (length - 1)
        pos += length + size
    assert out != webm, "no cluster found"
    return bytes(out)


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def _decoders() -> int:
    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder"))


async def _eventually(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _stream(stream: ContainerStream, data: bytes, size: int) -> tuple[bytes, bytes]:
    """(PCM returned by feed() while the slices arrive, PCM returned by finish())."""
    fed = [await stream.feed(data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(fed), await stream.finish()


@pytest.fixture(scope="module")
def speech() -> AudioClip:
    return piper_clip(SENTENCE)  # 22.05 kHz, ~4.6 s


@pytest.fixture(scope="module")
def converter() -> PyAVAudioConverter:
    return PyAVAudioConverter()


@pytest.fixture(scope="module")
def recordings(speech: AudioClip) -> dict[str, bytes]:
    """The sentence, and a minute of it, as Ogg/Opus and WebM/Opus."""
    minute = speech.pcm * 13  # ~60 s
    return {
        "ogg": _opus(speech.pcm, speech.sample_rate, "ogg"),
        "webm": _opus(speech.pcm, speech.sample_rate, "webm"),
        "ogg minute": _opus(minute, speech.sample_rate, "ogg"),
        "webm minute": _opus(minute, speech.sample_rate, "webm"),
    }


async def _whole(data: bytes) -> bytes:
    return (await PyAVAudioCodec().decode(data, 16_000)).pcm


@pytest.mark.parametrize("rate", RATES)
async def test_pcm_frames_resample_like_the_whole_clip(
    converter: PyAVAudioConverter, speech: AudioClip, rate: int
) -> None:
    source = converter.resample(speech.pcm, speech.sample_rate, rate)
    reference = _samples(converter.resample(source, rate, 16_000))
    stream = converter.open_stream("pcm_s16le", rate)
    sizes = np.random.default_rng(rate).integers(0, 3_000, size=len(source) // 500)
    sizes[::7] = 1  # single bytes: half a sample carried to the next frame
    out = bytearray()
    at = 0
    for size in sizes:
        if at >= len(source):
            break
        out += await stream.feed(source[at : at + size])
        at = min(at + int(size), len(source))
        lag = (at // 2) * 16_000 / rate - len(out) / 2
        assert 0 <= lag <= 33, f"output lags input by {lag:.1f} samples after {at} bytes"
    out += await stream.feed(source[at:])
    out += await stream.finish()

    streamed = _samples(bytes(out))
    assert abs(streamed.size - len(source) / 2 * 16_000 / rate) <= 1, "no drift"
    assert streamed.size == reference.size
    assert np.abs(streamed - reference).max() <= 1, "frame boundaries leave no trace"


@pytest.mark.parametrize("rate", [16_000, *RATES])
async def test_pcm_frames_of_zero_or_one_byte(converter: PyAVAudioConverter, rate: int) -> None:
    stream = converter.open_stream("pcm_s16le", rate)
    assert await stream.feed(b"") == b""
    assert await stream.feed(b"\x01") == b""
    assert await stream.feed(b"") == b""
    completed = await stream.feed(b"\x02")  # the carried byte and this one: sample 0x0201
    assert completed == (b"\x01\x02" if rate == 16_000 else b"")
    assert await stream.feed(b"\x03") == b""
    assert len(await stream.finish()) <= 4


async def test_resample_a_clip_keeps_length_and_pitch(converter: PyAVAudioConverter) -> None:
    t = np.arange(16_000 * 3) / 16_000
    tone = (8_000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    out = _samples(converter.resample(tone, 16_000, 24_000))
    assert abs(out.size - 72_000) <= 1
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 24_000 / out.size - 440) < 1


@pytest.mark.parametrize("size", [1, 4096, 65536])
@pytest.mark.parametrize("encoding", ["ogg", "webm"])
async def test_container_slices_decode_like_the_whole_file(
    converter: PyAVAudioConverter, recordings: dict[str, bytes], encoding: str, size: int
) -> None:
    data = recordings[encoding]
    stream = converter.open_stream(encoding, 0)
    assert isinstance(stream, ContainerStream)
    fed, tail = await _stream(stream, data, size)

    whole = _samples(await _whole(data))
    streamed = _samples(fed + tail)
    assert abs(streamed.size - whole.size) <= 48, "within 3 ms of the whole file's duration"
    n = min(streamed.size, whole.size)
    assert np.abs(streamed[:n] - whole[:n]).max() <= 1
    assert len(tail) < 1.5 * 32_000, "the audio came back while the slices arrived"
    assert stream.consumed_bytes == len(data)


@pytest.mark.parametrize("encoding", ["ogg", "webm"])
async def test_each_byte_is_decoded_once(
    converter: PyAVAudioConverter, recordings: dict[str, bytes], encoding: str
) -> None:
    data = recordings[f"{encoding} minute"]
    start = time.process_time()
    whole = await _whole(data)
    whole_cpu = time.process_time() - start

    stream = converter.open_stream(encoding, 0)
    assert isinstance(stream, ContainerStream)
    start = time.process_time()
    fed, tail = await _stream(stream, data, 4096)
    stream_cpu = time.process_time() - start

    assert stream.consumed_bytes == len(data), "the demuxer read each byte exactly once"
    assert abs(len(fed + tail) - len(whole)) <= 96
    # Re-decoding the growing file every 4 KiB costs ~30x one decode for this minute.
    assert stream_cpu < 2 * whole_cpu + 0.1, (stream_cpu, whole_cpu)


async def test_a_container_cut_short_gives_the_audio_before_the_cut(
    converter: PyAVAudioConverter, recordings: dict[str, bytes]
) -> None:
    half = recordings["ogg"][: len(recordings["ogg"]) // 2]
    stream = converter.open_stream("ogg", 0)
    assert isinstance(stream, ContainerStream)
    fed, tail = await _stream(stream, half, 4096)
    assert fed + tail == await _whole(half)


Builder = Callable[[dict[str, bytes], bytes, bytes], bytes]  # (recordings, wav, noise) -> bytes

MALFORMED: dict[str, tuple[str, Builder]] = {
    "random bytes as ogg": ("ogg", lambda r, wav, noise: noise),
    "random bytes as webm": ("webm", lambda r, wav, noise: noise),
    "a wav claiming ogg": ("ogg", lambda r, wav, noise: wav),
    "a wav claiming webm": ("webm", lambda r, wav, noise: wav),
    "webm claiming ogg": ("ogg", lambda r, wav, noise: r["webm"]),
    "ogg cut inside its headers": ("ogg", lambda r, wav, noise: r["ogg"][:100]),
    "webm cut inside its headers": ("webm", lambda r, wav, noise: r["webm"][:100]),
    "ogg magic then noise": ("ogg", lambda r, wav, noise: b"OggS" + noise),
    "webm magic then noise": ("webm", lambda r, wav, noise: r["webm"][:4] + noise),
    "three bytes of ogg": ("ogg", lambda r, wav, noise: r["ogg"][:3]),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_audio_is_invalid_audio(
    converter: PyAVAudioConverter, recordings: dict[str, bytes], speech: AudioClip, case: str
) -> None:
    encoding, build = MALFORMED[case]
    noise = np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    data = build(recordings, _wav(speech.pcm, speech.sample_rate), noise)
    stream = converter.open_stream(encoding, 0)
    assert isinstance(stream, ContainerStream)
    with pytest.raises(InvalidAudio):
        await asyncio.wait_for(_stream(stream, data, 4096), timeout=10)
    assert await _eventually(lambda: _decoders() == 0), "the worker thread ended"


async def test_close_mid_stream_ends_the_worker(
    converter: PyAVAudioConverter, recordings: dict[str, bytes]
) -> None:
    data = recordings["webm minute"]
    before = threading.active_count()
    stream = converter.open_stream("webm", 0)
    assert await stream.feed(data[: len(data) // 2])
    assert threading.active_count() == before + 1, "one worker thread per container stream"

    stream.close()
    assert await _eventually(lambda: threading.active_count() == before)
    assert await stream.feed(data[len(data) // 2 :]) == b""


async def test_a_stream_dropped_without_close_ends_its_worker(
    converter: PyAVAudioConverter, recordings: dict[str, bytes]
) -> None:
    # Decoder threads only: other tests' threads come and go while this one runs.
    before = _decoders()
    stream = converter.open_stream("ogg", 0)
    await stream.feed(recordings["ogg"][:5000])
    assert _decoders() == before + 1
    del stream
    gc.collect()
    assert await _eventually(lambda: _decoders() == before)


async def test_a_stream_far_ahead_of_its_decoder_is_refused(
    recordings: dict[str, bytes],
) -> None:
    impatient = PyAVAudioConverter(max_pending_bytes=1024, wait_seconds=0)
    stream = impatient.open_stream("ogg", 0)
    with pytest.raises(AudioTooLarge):
        await stream.feed(recordings["ogg minute"])
    assert await _eventually(lambda: _decoders() == 0)


async def test_a_slice_that_decodes_to_too_much_audio_is_refused(
    recordings: dict[str, bytes],
) -> None:
    strict = PyAVAudioConverter(max_held_seconds=2.0)
    data = recordings["ogg"]  # ~4.6 s in ~19 KiB: 4 KiB slices hold ~1 s each
    whole = await _whole(data)
    assert len(whole) > 4 * 32_000
    stream = strict.open_stream("ogg", 0)
    assert isinstance(stream, ContainerStream)
    fed, tail = await _stream(stream, data, 4096)
    assert abs(len(fed + tail) - len(whole)) <= 96

    stream = strict.open_stream("ogg", 0)
    with pytest.raises(AudioTooLarge):
        await stream.feed(data)
    assert await _eventually(lambda: _decoders() == 0)


async def test_unknown_encodings_and_rates_are_refused(converter: PyAVAudioConverter) -> None:
    with pytest.raises(UnsupportedFormat):
        converter.open_stream("mp3", 16_000)
    for rate in (7_999, 48_001, 0):
        with pytest.raises(InvalidRequest):
            converter.open_stream("pcm_s16le", rate)
