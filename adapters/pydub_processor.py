"""AudioProcessor: silence trim (pydub); compression and loudness normalisation (numpy)."""

from __future__ import annotations

import asyncio
import math
import warnings

import numpy as np
import numpy.typing as npt

from application.ports import ProcessedAudio
from domain.speech import AudioClip, ProcessingSettings

with warnings.catch_warnings():
    # pydub warns at import that ffmpeg is missing; it is only used on raw PCM here.
    warnings.simplefilter("ignore")
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

_FULL_SCALE = 32768.0  # pydub's max_possible_amplitude for 16-bit: dBFS uses the same reference
_SILENCE_DBFS = -50.0
_CHUNK_MS = 10
_PAD_MS = 20  # kept at each end so soft onsets and releases are not clipped off
# Compressor: threshold sits this far below the clip's own loudness (-24 dBFS once at -20),
# so quiet and loud inputs are shaped the same before normalisation.
_THRESHOLD_BELOW_LOUDNESS_DB = 4.0
_RATIO = 3.0
_ATTACK_MS = 5.0
_RELEASE_MS = 60.0
# Soft limiter: samples above the knee bend smoothly towards a ceiling below full scale.
_LIMIT_KNEE = 0.7 * _FULL_SCALE
_LIMIT_CEILING = 32000.0

Samples = npt.NDArray[np.float64]


class PydubAudioProcessor:
    """Trims leading/trailing silence, evens out dynamics, normalises to the target dBFS."""

    async def process(self, clip: AudioClip, settings: ProcessingSettings) -> ProcessedAudio:
        return await asyncio.to_thread(_process, clip, settings)


def _process(clip: AudioClip, settings: ProcessingSettings) -> ProcessedAudio:
    rate = clip.sample_rate
    samples = np.frombuffer(clip.pcm[: clip.samples * 2], dtype="<i2").astype(np.float64)
    hop = max(1, rate * _CHUNK_MS // 1000)
    if samples.size == 0 or rate <= 0 or _frame_dbfs(samples, hop).max() < _SILENCE_DBFS:
        # Silence: nothing to trim towards and boosting it would only raise the noise floor.
        return ProcessedAudio(clip=clip, gain_db=0.0, trimmed_ms=0.0)

    trimmed_ms = 0.0
    if settings.trim_silence:
        start, end = _speech_bounds(clip)
        trimmed_ms = 1000.0 * (samples.size - (end - start)) / rate
        samples = samples[start:end]
    if settings.compress:
        samples = _compress(samples, hop, rate)

    gain_db = settings.target_dbfs - _dbfs(samples)
    out = _limit(samples * 10.0 ** (gain_db / 20.0))
    # The limiter shaves loudness off hot targets: top the gain up (normal speech never loops).
    for _ in range(3):
        miss = settings.target_dbfs - _dbfs(out)
        if abs(miss) < 0.05:
            break
        gain_db += miss
        out = _limit(samples * 10.0 ** (gain_db / 20.0))
    pcm = np.round(out).astype("<i2").tobytes()
    return ProcessedAudio(
        clip=AudioClip(pcm=pcm, sample_rate=rate), gain_db=gain_db, trimmed_ms=trimmed_ms
    )


def _speech_bounds(clip: AudioClip) -> tuple[int, int]:
    """Sample range between leading and trailing silence, with a little padding kept."""
    segment = AudioSegment(data=clip.pcm, sample_width=2, frame_rate=clip.sample_rate, channels=1)
    lead_ms = detect_leading_silence(segment, _SILENCE_DBFS, _CHUNK_MS)
    trail_ms = detect_leading_silence(segment.reverse(), _SILENCE_DBFS, _CHUNK_MS)
    start = max(0, (lead_ms - _PAD_MS) * clip.sample_rate // 1000)
    end = clip.samples - max(0, (trail_ms - _PAD_MS) * clip.sample_rate // 1000)
    return (start, end) if end > start else (0, clip.samples)


def _dbfs(samples: Samples) -> float:
    """RMS relative to full scale, as pydub's AudioSegment.dBFS measures it."""
    rms = math.sqrt(float(np.mean(np.square(samples)))) if samples.size else 0.0
    return 20.0 * math.log10(rms / _FULL_SCALE) if rms > 0 else -math.inf


def _frame_dbfs(samples: Samples, hop: int) -> Samples:
    frames = -(-samples.size // hop)
    padded = np.zeros(frames * hop)
    padded[: samples.size] = samples
    rms = np.sqrt(np.mean(np.square(padded.reshape(frames, hop)), axis=1))
    result: Samples = 20.0 * np.log10(np.maximum(rms, 1e-9) / _FULL_SCALE)
    return result


def _compress(samples: Samples, hop: int, rate: int) -> Samples:
    """Feed-forward RMS compressor on 10 ms frames; gain is smoothed, then interpolated."""
    levels = _frame_dbfs(samples, hop)
    threshold = _dbfs(samples) - _THRESHOLD_BELOW_LOUDNESS_DB
    wanted = -np.maximum(levels - threshold, 0.0) * (1.0 - 1.0 / _RATIO)
    frame_ms = 1000.0 * hop / rate
    attack = math.exp(-frame_ms / _ATTACK_MS)
    release = math.exp(-frame_ms / _RELEASE_MS)
    smoothed = np.empty_like(wanted)
    gain = 0.0
    # A loop over ~100 frames a second is cheap; the recursion is what makes it a compressor.
    for i, target in enumerate(wanted.tolist()):
        coeff = attack if target < gain else release
        gain = coeff * gain + (1.0 - coeff) * target
        smoothed[i] = gain
    centres = (np.arange(levels.size) + 0.5) * hop
    per_sample = np.interp(np.arange(samples.size), centres, 10.0 ** (smoothed / 20.0))
    result: Samples = samples * per_sample
    return result


def _limit(samples: Samples) -> Samples:
    """Soft-knee limiter: never reaches full scale, and leaves samples below the knee alone."""
    magnitude = np.abs(samples)
    over = magnitude > _LIMIT_KNEE
    if not over.any():
        return samples
    span = _LIMIT_CEILING - _LIMIT_KNEE
    bent = _LIMIT_KNEE + span * np.tanh((magnitude[over] - _LIMIT_KNEE) / span)
    limited = samples.copy()
    limited[over] = np.copysign(bent, samples[over])
    return limited
