"""Headerless audio (Deepgram's `encoding` + `sample_rate`) on the one-shot transcription
path: made a WAVE recording, bounded, charged and recorded as every upload."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from application.access import ANONYMOUS
from domain.errors import AudioTooLarge, InvalidAudio, InvalidRequest
from domain.speech import AudioClip
from domain.wav import wave_header
from tests.unit.conftest import FakeWorld


class WaveCodec:
    """Reads the header it is given: PCM through the standard library, G.711 by hand."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def decode(self, data: bytes, sample_rate: int) -> AudioClip:
        self.seen.append(data)
        tag, channels, rate, _, block, _bits = struct.unpack("<HHIIHH", data[20:36])
        if tag == 1:
            with wave.open(io.BytesIO(data)) as reader:
                frames = reader.readframes(reader.getnframes())
            return AudioClip(frames[: len(frames) // channels], rate)
        size = struct.unpack("<I", data[40:44])[0]
        return AudioClip(b"\x00\x00" * (size // block), rate)

    async def encode(self, clip: AudioClip, audio_format: object) -> bytes:
        raise NotImplementedError


@pytest.fixture
def codec(world: FakeWorld) -> WaveCodec:
    codec = WaveCodec()
    world.container.transcribe.codec = codec
    return codec


def test_the_header_is_a_wave_file_the_standard_library_reads() -> None:
    pcm = bytes(range(200)) * 4
    data = wave_header("pcm_s16le", 22_050, 2, len(pcm)) + pcm
    assert len(data) - len(pcm) == 44
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            2,
            2,
            22050,
        )
        assert reader.readframes(1000) == pcm


@pytest.mark.parametrize(("encoding", "tag"), [("pcmu", 7), ("pcma", 6)])
def test_g711_headers_carry_their_format_tag(encoding: str, tag: int) -> None:
    header = wave_header(encoding, 8_000, 1, 8_000)
    assert struct.unpack("<HHIIHH", header[20:36]) == (tag, 1, 8_000, 8_000, 1, 8)
    assert struct.unpack("<I", header[4:8])[0] == 36 + 8_000


async def test_raw_pcm_is_transcribed_and_charged_as_an_upload(
    world: FakeWorld, codec: WaveCodec
) -> None:
    pcm = b"\x01\x00" * 4_000 + b"\x07"  # 250 ms, and a torn last sample
    result = await world.container.transcribing.transcribe_raw(
        ANONYMOUS,
        pcm,
        "en",
        encoding="pcm_s16le",
        sample_rate=16_000,
        pipeline_id="p1",
        transport="deepgram",
    )
    assert result.transcript.text == "hello world"
    assert codec.seen[0][44:] == pcm[:-1]
    assert world.transcriber.calls == [(250.0, False)]
    assert "SpeechTranscribed" in await world.recorded_types()


async def test_g711_at_any_rate(world: FakeWorld, codec: WaveCodec) -> None:
    await world.container.transcribing.transcribe_raw(
        ANONYMOUS, b"\xff" * 8_000, None, encoding="pcmu", sample_rate=16_000,
        pipeline_id="p", transport="t",
    )  # fmt: skip
    assert world.transcriber.calls == [(500.0, False)]


@pytest.mark.parametrize(
    ("audio", "encoding", "rate", "channels", "error"),
    [
        (b"", "pcm_s16le", 16_000, 1, InvalidAudio),
        (b"\x01", "pcm_s16le", 16_000, 1, InvalidAudio),
        (b"\x01\x02\x03", "pcm_s16le", 16_000, 2, InvalidAudio),
        (b"\x00" * 100, "pcm_f32le", 16_000, 1, InvalidRequest),
        (b"\x00" * 100, "pcmu", 4_000, 1, InvalidRequest),
        (b"\x00" * 100, "pcm_s16le", 16_000, 9, InvalidRequest),
        (b"\x00" * (10_000 - 43), "pcm_s16le", 16_000, 1, AudioTooLarge),  # MAX_AUDIO_BYTES
    ],
)
async def test_bad_raw_audio_is_refused_before_the_model(
    world: FakeWorld,
    codec: WaveCodec,
    audio: bytes,
    encoding: str,
    rate: int,
    channels: int,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await world.container.transcribing.transcribe_raw(
            ANONYMOUS, audio, None, encoding=encoding, sample_rate=rate, channels=channels,
            pipeline_id="p", transport="t",
        )  # fmt: skip
    assert world.transcriber.calls == [] and codec.seen == []
