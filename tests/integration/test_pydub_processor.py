"""PydubAudioProcessor against real Piper speech: loudness, trimming, clipping, silence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adapters.pydub_processor import PydubAudioProcessor
from domain.speech import AudioClip, ProcessingSettings
from tests.integration.speech import piper_clip

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydub import AudioSegment

SENTENCE = (
    "Good morning. The quick brown fox jumps over the lazy dog, "
    "while the band plays on in the park across the street."
)


@pytest.fixture(scope="module")
def speech() -> AudioClip:
    return piper_clip(SENTENCE)


@pytest.fixture(scope="module")
def processor() -> PydubAudioProcessor:
    return PydubAudioProcessor()


def _dbfs(clip: AudioClip) -> float:
    """The loudness the processor promises, measured the way pydub measures it."""
    segment = AudioSegment(data=clip.pcm, sample_width=2, frame_rate=clip.sample_rate, channels=1)
    return float(segment.dBFS)


def _samples(clip: AudioClip) -> np.ndarray:
    return np.frombuffer(clip.pcm, dtype="<i2")


def _at_level(clip: AudioClip, dbfs: float, silence_s: float = 0.0) -> AudioClip:
    """Speech scaled to `dbfs` (clipped like a hot recording would be), padded with zeros."""
    scaled = _samples(clip) * 10 ** ((dbfs - _dbfs(clip)) / 20)
    pad = np.zeros(int(silence_s * clip.sample_rate))
    padded = np.concatenate([pad, np.clip(np.round(scaled), -32768, 32767), pad])
    return AudioClip(pcm=padded.astype("<i2").tobytes(), sample_rate=clip.sample_rate)


def _clipped(clip: AudioClip) -> int:
    return int(np.count_nonzero(np.abs(_samples(clip).astype(np.int32)) >= 32767))


def _level_spread_db(clip: AudioClip) -> float:
    """90th minus 50th percentile of 10 ms frame levels over voiced frames: dynamic range."""
    hop = clip.sample_rate // 100
    samples = _samples(clip).astype(np.float64)
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    levels = 10 * np.log10(np.mean(np.square(frames), axis=1) + 1e-9)
    voiced = levels[levels > levels.max() - 40]
    return float(np.percentile(voiced, 90) - np.percentile(voiced, 50))


@pytest.mark.asyncio
@pytest.mark.parametrize("input_dbfs", [-35.0, -8.0, -20.0])
async def test_output_is_normalised_trimmed_and_unclipped(
    processor: PydubAudioProcessor, speech: AudioClip, input_dbfs: float
) -> None:
    clip = _at_level(speech, input_dbfs, silence_s=1.0)

    result = await processor.process(clip, ProcessingSettings())

    assert abs(_dbfs(result.clip) - (-20.0)) <= 0.5
    assert result.trimmed_ms >= 1800
    assert result.clip.duration_ms == pytest.approx(clip.duration_ms - result.trimmed_ms, abs=1)
    assert result.clip.duration_ms > 0.9 * speech.duration_ms  # speech itself kept
    assert _clipped(result.clip) <= 5
    assert result.clip.sample_rate == clip.sample_rate


@pytest.mark.asyncio
async def test_quiet_input_gets_positive_gain_and_loud_input_negative(
    processor: PydubAudioProcessor, speech: AudioClip
) -> None:
    quiet = await processor.process(_at_level(speech, -35.0), ProcessingSettings())
    loud = await processor.process(_at_level(speech, -8.0), ProcessingSettings())
    assert quiet.gain_db > 10
    assert loud.gain_db < 0


@pytest.mark.asyncio
async def test_compression_narrows_the_dynamic_range(
    processor: PydubAudioProcessor, speech: AudioClip
) -> None:
    clip = _at_level(speech, -30.0)
    plain = await processor.process(clip, ProcessingSettings(compress=False))
    compressed = await processor.process(clip, ProcessingSettings(compress=True))

    assert abs(_dbfs(plain.clip) + 20) <= 0.5
    assert abs(_dbfs(compressed.clip) + 20) <= 0.5
    assert _level_spread_db(compressed.clip) < _level_spread_db(plain.clip) - 1.0


@pytest.mark.asyncio
async def test_other_targets_and_no_trimming(
    processor: PydubAudioProcessor, speech: AudioClip
) -> None:
    clip = _at_level(speech, -20.0, silence_s=0.5)
    settings = ProcessingSettings(target_dbfs=-16.0, compress=False, trim_silence=False)

    result = await processor.process(clip, settings)

    assert result.trimmed_ms == 0
    assert result.clip.samples == clip.samples
    assert abs(_dbfs(result.clip) - (-16.0)) <= 0.5
    assert _clipped(result.clip) <= 5


@pytest.mark.asyncio
@pytest.mark.parametrize("compress", [False, True])
async def test_hot_target_is_limited_not_clipped(
    processor: PydubAudioProcessor, speech: AudioClip, compress: bool
) -> None:
    # -10 dBFS RMS puts raw speech peaks well past full scale: the limiter must catch them.
    settings = ProcessingSettings(target_dbfs=-10.0, compress=compress)

    result = await processor.process(_at_level(speech, -20.0), settings)

    assert abs(_dbfs(result.clip) - (-10.0)) <= 0.5
    assert _clipped(result.clip) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("samples", [0, 1, 100, 22_050])
async def test_silence_is_returned_unchanged(processor: PydubAudioProcessor, samples: int) -> None:
    clip = AudioClip(pcm=bytes(2 * samples), sample_rate=22_050)

    result = await processor.process(clip, ProcessingSettings())

    assert result.clip == clip
    assert result.gain_db == 0.0
    assert result.trimmed_ms == 0.0


@pytest.mark.asyncio
async def test_faint_noise_is_not_boosted(processor: PydubAudioProcessor) -> None:
    noise = np.random.default_rng(3).normal(0, 3, 22_050).round().astype("<i2")  # ~ -80 dBFS
    clip = AudioClip(pcm=noise.tobytes(), sample_rate=22_050)

    result = await processor.process(clip, ProcessingSettings())

    assert result.clip == clip
    assert result.gain_db == 0.0


@pytest.mark.asyncio
async def test_very_short_speech_does_not_crash(
    processor: PydubAudioProcessor, speech: AudioClip
) -> None:
    loudest = int(np.argmax(np.abs(_samples(speech))))
    tiny = AudioClip(pcm=speech.pcm[2 * loudest : 2 * loudest + 2 * 50], sample_rate=22_050)

    result = await processor.process(tiny, ProcessingSettings())

    assert 0 < result.clip.samples <= 50
    assert _clipped(result.clip) <= 5
