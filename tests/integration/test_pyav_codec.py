"""PyAVAudioCodec against real Piper speech: round trips, foreign containers, bad input."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream

from adapters.pyav_codec import PyAVAudioCodec
from domain.errors import AudioTooLong, InvalidAudio
from domain.speech import AudioClip, AudioFormat
from tests.integration.speech import piper_clip

SENTENCE = "The quick brown fox jumps over the lazy dog, while the band plays on in the park."
SAFE_MESSAGES = {
    "audio is empty",
    "audio contains no samples",
    "not a recognised audio file",
    "file has no audio stream",
    "audio is truncated or corrupt",
}


@pytest.fixture(scope="module")
def speech() -> AudioClip:
    return piper_clip(SENTENCE)


@pytest.fixture(scope="module")
def codec() -> PyAVAudioCodec:
    return PyAVAudioCodec()


def _samples(clip: AudioClip) -> np.ndarray:
    return np.frombuffer(clip.pcm, dtype="<i2").astype(np.float64)


def _dbfs(clip: AudioClip) -> float:
    rms = float(np.sqrt(np.mean(np.square(_samples(clip)))))
    return float(20 * np.log10(max(rms, 1e-9) / 32768))


def _envelope_correlation(a: AudioClip, b: AudioClip) -> float:
    """Best correlation of 10 ms loudness envelopes within ±100 ms: same words, delay aside."""
    hop = a.sample_rate // 100

    def env(clip: AudioClip) -> np.ndarray:
        samples = _samples(clip)
        frames = samples[: samples.size // hop * hop].reshape(-1, hop)
        levels: np.ndarray = 10 * np.log10(np.mean(np.square(frames), axis=1) + 1.0)
        return levels

    ea, eb = env(a), env(b)
    best = -1.0
    for lag in range(-10, 11):
        x, y = (ea[lag:], eb) if lag >= 0 else (ea, eb[-lag:])
        n = min(x.size, y.size)
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def _wav(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def _stereo_44k(clip: AudioClip) -> bytes:
    """Interleaved s16 stereo at 44.1 kHz: speech on the left, a quieter copy on the right."""
    resampler = AudioResampler(format="s16", layout="mono", rate=44_100)
    frame = AudioFrame.from_ndarray(_samples(clip).astype("<i2").reshape(1, -1), layout="mono")
    frame.sample_rate = clip.sample_rate
    frames = resampler.resample(frame) + resampler.resample(None)
    left = np.concatenate([f.to_ndarray()[0] for f in frames])
    return np.stack([left, left // 2], axis=1).astype("<i2").tobytes()


def _encode_with_av(
    pcm: bytes, rate: int, container_format: str, codec_name: str, layout: str = "mono"
) -> bytes:
    """Builds inputs the service does not produce itself (webm, m4a, stereo mp3...)."""
    channels = 2 if layout == "stereo" else 1
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec_name, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        array = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = AudioFrame.from_ndarray(array, format="s16", layout=layout)
        frame.sample_rate = rate
        assert frame.samples == array.size // channels
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.asyncio
@pytest.mark.parametrize("audio_format", list(AudioFormat), ids=lambda f: f.value)
async def test_round_trip_every_output_format(
    codec: PyAVAudioCodec, speech: AudioClip, audio_format: AudioFormat
) -> None:
    encoded = await codec.encode(speech, audio_format)

    if audio_format is AudioFormat.PCM:
        assert encoded == speech.pcm  # raw PCM has no header to decode; nothing else to check
        return
    decoded = await codec.decode(encoded, 16_000)
    reference = await codec.decode(await codec.encode(speech, AudioFormat.WAV), 16_000)

    assert decoded.sample_rate == 16_000
    assert abs(decoded.duration_ms - speech.duration_ms) < 100
    assert abs(_dbfs(decoded) - _dbfs(reference)) < 2.0, "not silence, and about as loud"
    assert _envelope_correlation(decoded, reference) > 0.9


@pytest.mark.asyncio
@pytest.mark.parametrize("audio_format", [AudioFormat.WAV, AudioFormat.FLAC])
async def test_lossless_formats_are_bit_exact_at_the_same_rate(
    codec: PyAVAudioCodec, speech: AudioClip, audio_format: AudioFormat
) -> None:
    encoded = await codec.encode(speech, audio_format)
    assert await codec.decode(encoded, speech.sample_rate) == speech


@pytest.mark.asyncio
async def test_opus_is_encoded_at_a_rate_opus_supports(
    codec: PyAVAudioCodec, speech: AudioClip
) -> None:
    assert speech.sample_rate == 22_050  # not an Opus rate, so the codec must resample
    encoded = await codec.encode(speech, AudioFormat.OPUS)
    assert encoded[:4] == b"OggS"
    with av.open(io.BytesIO(encoded)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("container_format", "codec_name"),
    [
        ("wav", "pcm_s16le"),
        ("mp3", "libmp3lame"),
        ("ogg", "libopus"),
        ("webm", "libopus"),
        ("flac", "flac"),
        ("ipod", "aac"),  # .m4a
        ("mp4", "aac"),
    ],
)
async def test_decodes_common_containers(
    codec: PyAVAudioCodec, speech: AudioClip, container_format: str, codec_name: str
) -> None:
    rate = 48_000 if codec_name == "libopus" else speech.sample_rate
    if rate != speech.sample_rate:
        speech_at_rate = await codec.decode(await codec.encode(speech, AudioFormat.WAV), rate)
        pcm = speech_at_rate.pcm
    else:
        pcm = speech.pcm
    data = _encode_with_av(pcm, rate, container_format, codec_name)
    decoded = await codec.decode(data, 16_000)

    reference = await codec.decode(await codec.encode(speech, AudioFormat.WAV), 16_000)
    assert abs(decoded.duration_ms - speech.duration_ms) < 100
    assert _envelope_correlation(decoded, reference) > 0.9


@pytest.mark.asyncio
async def test_stereo_44k_wav_is_downmixed_to_mono_16k(
    codec: PyAVAudioCodec, speech: AudioClip
) -> None:
    stereo = _stereo_44k(speech)
    decoded = await codec.decode(_wav(stereo, 44_100, channels=2), 16_000)
    reference = await codec.decode(await codec.encode(speech, AudioFormat.WAV), 16_000)

    assert decoded.sample_rate == 16_000
    assert abs(decoded.duration_ms - speech.duration_ms) < 5
    # mean of full and half level is 0.75 of the original: -2.5 dB
    assert abs(_dbfs(decoded) - (_dbfs(reference) + 20 * np.log10(0.75))) < 0.5
    assert _envelope_correlation(decoded, reference) > 0.95


@pytest.mark.asyncio
async def test_stereo_44k_mp3_is_downmixed_to_mono_16k(
    codec: PyAVAudioCodec, speech: AudioClip
) -> None:
    data = _encode_with_av(_stereo_44k(speech), 44_100, "mp3", "libmp3lame", layout="stereo")
    decoded = await codec.decode(data, 16_000)
    reference = await codec.decode(await codec.encode(speech, AudioFormat.WAV), 16_000)

    assert abs(decoded.duration_ms - speech.duration_ms) < 100
    assert _envelope_correlation(decoded, reference) > 0.9


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is certainly not audio " * 40,
        b'{"text": "hello"}',
        np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a WAV header cut short
    ],
    ids=["empty", "text", "json", "random", "cut-wav-header"],
)
async def test_non_audio_is_invalid_audio(codec: PyAVAudioCodec, data: bytes) -> None:
    with pytest.raises(InvalidAudio) as caught:
        await codec.decode(data, 16_000)
    assert caught.value.message in SAFE_MESSAGES


@pytest.mark.asyncio
async def test_file_without_an_audio_stream_is_invalid_audio(codec: PyAVAudioCodec) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(3):
            image = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))

    with pytest.raises(InvalidAudio, match="no audio stream"):
        await codec.decode(buffer.getvalue(), 16_000)


@pytest.mark.asyncio
async def test_playlists_cannot_make_ffmpeg_read_local_files(
    codec: PyAVAudioCodec, speech: AudioClip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret.wav").write_bytes(await codec.encode(speech, AudioFormat.WAV))
    monkeypatch.chdir(tmp_path)
    playlist = b"ffconcat version 1.0\nfile secret.wav\n"  # FFmpeg probes this as a demuxer

    with pytest.raises(InvalidAudio):
        await codec.decode(playlist, 16_000)


@pytest.mark.asyncio
async def test_truncated_files(codec: PyAVAudioCodec, speech: AudioClip) -> None:
    wav = await codec.encode(speech, AudioFormat.WAV)
    mp3 = await codec.encode(speech, AudioFormat.MP3)
    flac = await codec.encode(speech, AudioFormat.FLAC)

    # The first few hundred bytes of an MP3 hold no complete frame: nothing decodes.
    with pytest.raises(InvalidAudio):
        await codec.decode(mp3[:300], 16_000)
    # A WAV whose data ends before its header says is refused, naming both durations.
    with pytest.raises(InvalidAudio, match="truncated: the WAV header promises"):
        await codec.decode(wav[: len(wav) // 2], 16_000)
    # One recorded while streaming (data size never filled in) decodes to what is there.
    streaming = wav[:40] + b"\x00\x00\x00\x00" + wav[44 : len(wav) // 2]
    partial = await codec.decode(streaming, 16_000)
    assert 0.3 * speech.duration_ms < partial.duration_ms < 0.7 * speech.duration_ms
    # MP3 resynchronises on frame headers, so half a file is half the speech.
    half = await codec.decode(mp3[: len(mp3) // 2], 16_000)
    assert 0.3 * speech.duration_ms < half.duration_ms < 0.7 * speech.duration_ms
    # FLAC's decoder raises on the cut frame: reported as truncated, not half-decoded. The cut
    # is made 20 bytes into a frame (after its sync code), never on a frame boundary.
    frame = flac.index(b"\xff\xf8", len(flac) // 2)
    with pytest.raises(InvalidAudio, match="truncated or corrupt"):
        await codec.decode(flac[: frame + 20], 16_000)


@pytest.mark.asyncio
async def test_corrupt_mp3_is_invalid_audio(codec: PyAVAudioCodec, speech: AudioClip) -> None:
    mp3 = bytearray(await codec.encode(speech, AudioFormat.MP3))
    middle = len(mp3) // 3
    garbage = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
    mp3[middle : middle + 2000] = garbage

    with pytest.raises(InvalidAudio, match="truncated or corrupt") as caught:
        await codec.decode(bytes(mp3), 16_000)
    assert "avcodec" not in str(caught.value)  # FFmpeg's own text stays in __cause__


@pytest.mark.asyncio
@pytest.mark.parametrize("audio_format", [AudioFormat.WAV, AudioFormat.MP3, AudioFormat.OPUS])
async def test_max_seconds(
    codec: PyAVAudioCodec, speech: AudioClip, audio_format: AudioFormat
) -> None:
    data = await codec.encode(speech, audio_format)
    seconds = speech.duration_ms / 1000

    with pytest.raises(AudioTooLong):
        await PyAVAudioCodec(max_seconds=seconds / 2).decode(data, 16_000)
    decoded = await PyAVAudioCodec(max_seconds=seconds + 1).decode(data, 16_000)
    assert abs(decoded.duration_ms - speech.duration_ms) < 100
