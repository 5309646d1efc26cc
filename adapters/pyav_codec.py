"""AudioCodec on PyAV (bundled FFmpeg): decodes any common container in memory, encodes outputs."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import cast

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream

from domain.errors import AudioTooLong, InvalidAudio, UnsupportedFormat
from domain.speech import AudioClip, AudioFormat

# (container, encoder, bit rate, options): mono speech needs far less than FFmpeg's defaults,
# and a lower compression_level makes libopus ~3x and LAME ~2x faster for a small quality cost.
_ENCODERS: dict[AudioFormat, tuple[str, str, int | None, dict[str, str]]] = {
    AudioFormat.MP3: ("mp3", "libmp3lame", 64_000, {"compression_level": "7"}),
    AudioFormat.OPUS: ("ogg", "libopus", 32_000, {"compression_level": "5"}),
    AudioFormat.FLAC: ("flac", "flac", None, {}),
    AudioFormat.AAC: ("adts", "aac", 64_000, {}),
}


# Recorders writing a WAV to a pipe put 0, 2 GiB or 4 GiB in its size fields (espeak-ng: 2 GiB).
_STREAMING_SIZE = 0x7FFF_F000


class PyAVAudioCodec:
    """Decodes to mono s16 at the asked rate; encodes mono s16 to wav/pcm/mp3/opus/flac."""

    def __init__(
        self, max_seconds: float | None = None, max_channels: int = 8, max_rate: int = 192_000
    ) -> None:
        self._max_seconds = max_seconds
        self._shape = (max_channels, max_rate)

    async def decode(self, data: bytes, sample_rate: int) -> AudioClip:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        if not data:
            raise InvalidAudio("audio is empty")
        pcm = await asyncio.to_thread(_decode, data, sample_rate, self._max_seconds, self._shape)
        if not pcm:
            raise InvalidAudio("audio contains no samples")
        return AudioClip(pcm=pcm, sample_rate=sample_rate)

    async def encode(self, clip: AudioClip, audio_format: AudioFormat) -> bytes:
        if audio_format is AudioFormat.PCM:
            return clip.pcm
        if audio_format is AudioFormat.WAV:
            return _encode_wav(clip)
        if audio_format not in _ENCODERS:
            raise UnsupportedFormat(f"cannot encode {audio_format.value}")
        return await asyncio.to_thread(_encode_av, clip, audio_format)


def _decode(
    data: bytes, sample_rate: int, max_seconds: float | None, shape: tuple[int, int]
) -> bytes:
    # The stdlib parses plain PCM WAV ~10x faster than demuxing it through FFmpeg.
    pcm = _decode_wav(data, sample_rate, max_seconds, shape)
    return _decode_av(data, sample_rate, max_seconds, shape) if pcm is None else pcm


def check_shape(channels: int, rate: int, shape: tuple[int, int]) -> None:
    """Refuse layouts no voice needs before decoding: they multiply memory and CPU."""
    max_channels, max_rate = shape
    if not 0 < channels <= max_channels:
        raise InvalidAudio(f"audio has {channels} channels; at most {max_channels} are accepted")
    if not 0 < rate <= max_rate:
        raise InvalidAudio(f"audio sample rate is {rate} Hz; at most {max_rate} Hz is accepted")


def _decode_wav(
    data: bytes, sample_rate: int, max_seconds: float | None, shape: tuple[int, int]
) -> bytes | None:
    """Plain 16-bit PCM WAV; None for anything else (float, 24-bit, extensible, odd headers)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            if reader.getsampwidth() != 2 or reader.getcomptype() != "NONE":
                return None
            channels, rate = reader.getnchannels(), reader.getframerate()
            check_shape(channels, rate, shape)
            declared = reader.getnframes()
            if declared == 0 or declared * 2 * channels >= _STREAMING_SIZE:
                return None  # written while recording, size never filled in: FFmpeg copes
            wanted = declared
            if max_seconds is not None:
                wanted = min(wanted, int(max_seconds * rate) + 1)
            raw = reader.readframes(wanted)
    except (wave.Error, EOFError):
        return None  # let FFmpeg judge it
    if len(raw) < wanted * 2 * channels:
        raise InvalidAudio(
            f"audio is truncated: the WAV header promises {declared / rate:.2f} s, "
            f"the data holds {len(raw) / (2 * channels * rate):.2f} s"
        )
    samples = np.frombuffer(raw[: len(raw) - len(raw) % (2 * channels)], dtype="<i2")
    if max_seconds is not None and samples.size > max_seconds * rate * channels:
        raise AudioTooLong(f"audio is longer than {max_seconds:g} s")
    if channels > 1:
        samples = np.round(samples.reshape(-1, channels).mean(axis=1)).astype("<i2")
    if rate == sample_rate or samples.size == 0:
        return samples.tobytes()
    # FFmpeg's resampler low-passes before decimating (np.interp would alias), as fast.
    frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = AudioResampler(format="s16", layout="mono", rate=sample_rate)
    out = resampler.resample(frame) + resampler.resample(None)
    return b"".join(bytes(f.to_ndarray()) for f in out)


def _decode_av(
    data: bytes, sample_rate: int, max_seconds: float | None, shape: tuple[int, int]
) -> bytes:
    try:
        # No protocols: playlist-like demuxers (ffconcat, HLS) must not open files or URLs.
        options = {"protocol_whitelist": "none"}
        container = av.open(io.BytesIO(data), mode="r", container_options=options)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidAudio("not a recognised audio file") from exc
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    chunks: list[bytes] = []
    total = 0
    with container:
        if not container.streams.audio:
            raise InvalidAudio("file has no audio stream")
        stream = container.streams.audio[0]
        check_shape(stream.channels, stream.sample_rate, shape)
        resampler = AudioResampler(format="s16", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(bytes(out.to_ndarray()))
                    total += out.samples
                if limit is not None and total > limit:
                    # Checked while decoding: a tiny file can claim (and decode to) hours.
                    raise AudioTooLong(f"audio is longer than {max_seconds:g} s")
            chunks.extend(bytes(out.to_ndarray()) for out in resampler.resample(None))
        except (av.FFmpegError, ValueError) as exc:
            raise InvalidAudio("audio is truncated or corrupt") from exc
    return b"".join(chunks)


def _encode_wav(clip: AudioClip) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(clip.sample_rate)
        writer.writeframes(clip.pcm)
    return buffer.getvalue()


def _encode_av(clip: AudioClip, audio_format: AudioFormat) -> bytes:
    container_format, codec_name, bit_rate, options = _ENCODERS[audio_format]
    rate = _supported_rate(codec_name, clip.sample_rate)
    buffer = io.BytesIO()
    # No ID3 tag: MP3 needs none, and pieces of a stream must join (a tag mid-stream is noise).
    muxer = {"id3v2_version": "0"} if container_format == "mp3" else {}
    with av.open(buffer, mode="w", format=container_format, container_options=muxer) as container:
        added = container.add_stream(codec_name, rate=rate, options=options, layout="mono")
        stream = cast(AudioStream, added)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        samples = np.frombuffer(clip.pcm[: clip.samples * 2], dtype="<i2").reshape(1, -1)
        if samples.size:
            frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = clip.sample_rate
            # The stream resamples to the encoder's rate, sample format and frame size itself.
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _supported_rate(codec_name: str, rate: int) -> int:
    """Opus takes only 8/12/16/24/48 kHz, MP3 a fixed set: use the next rate up that fits."""
    rates = av.Codec(codec_name, "w").audio_rates
    if not rates or rate in rates:
        return rate
    higher = [r for r in rates if r >= rate]
    return min(higher) if higher else max(rates)


def probe_seconds(path: str) -> float:
    """A recording's duration from its container's header (0 when it cannot tell)."""
    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return float(container.duration or 0) / 1_000_000
    except Exception:
        return 0.0
