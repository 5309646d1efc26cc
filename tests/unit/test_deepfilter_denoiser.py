"""The DeepFilterNet noise filter (the real model from its wheel): what goes in comes out,
as long and lined up, noise much quieter, speech as loud; hostile frame sizes are taken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from adapters.deepfilter_denoiser import DeepFilterDenoiser, DeepFilterNoiseFilter
from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice
from adapters.pyav_resampling import Resampler

FRAME = 640  # 20 ms of 16 kHz s16le


@pytest.fixture(scope="module")
async def denoiser() -> AsyncIterator[DeepFilterDenoiser]:
    found = DeepFilterDenoiser()
    yield found
    found.close()


@pytest.fixture(scope="module")
async def speech() -> bytes:
    """Piper saying a sentence, 16 kHz s16le, with 0.3 s of silence around it."""
    synth = PiperSynthesizer([bundled_voice()])
    clip = await synth.synthesize(
        "Please call me back tomorrow morning at the office.", synth.default_voice
    )
    down = Resampler(clip.sample_rate, 16_000)
    pad = bytes(2 * 4800)
    return pad + down.convert(clip.pcm) + down.flush() + pad


def fan_noise(seconds: float, level: float = 0.05, seed: int = 1) -> bytes:
    """Brown noise with a 100 Hz hum: what a fan or an engine room sounds like."""
    rng = np.random.default_rng(seed)
    brown = np.cumsum(rng.standard_normal(int(16_000 * seconds)))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # no drift
    brown /= np.abs(brown).max()
    hum = np.sin(2 * np.pi * 100 * np.arange(len(brown)) / 16_000)
    audio = level * (0.8 * brown + 0.2 * hum)
    return (audio * 32767).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64)


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(samples(pcm) ** 2)))


async def filtered(noise: DeepFilterNoiseFilter, pcm: bytes, sizes: list[int]) -> bytes:
    out, at, turn = [], 0, 0
    while at < len(pcm):
        size = sizes[turn % len(sizes)]
        out.append(await noise.process(pcm[at : at + size]))
        at, turn = at + size, turn + 1
    out.append(await noise.flush())
    return b"".join(out)


async def test_a_stream_comes_out_as_long_and_lined_up(
    denoiser: DeepFilterDenoiser, speech: bytes
) -> None:
    noise = denoiser.open("far_field")
    out = await filtered(noise, speech, [FRAME])
    noise.close()
    assert len(out) == len(speech)
    x, y = samples(speech), samples(out)
    lags = range(-800, 801)  # +-50 ms
    match = [float(np.dot(x[800:-800], y[800 + lag : len(y) - 800 + lag])) for lag in lags]
    assert lags[int(np.argmax(match))] == 0  # word timestamps stay right


@pytest.mark.parametrize("mode", ["near_field", "far_field"])
async def test_steady_noise_is_much_quieter(denoiser: DeepFilterDenoiser, mode: str) -> None:
    noise = fan_noise(3.0)
    noise_filter = denoiser.open(mode)  # type: ignore[arg-type]
    out = await filtered(noise_filter, noise, [FRAME])
    noise_filter.close()
    settled = slice(16_000 * 2, None)  # after its first second the model knows the noise
    reduction_db = 20 * np.log10(rms(noise[settled]) / max(rms(out[settled]), 1e-9))
    assert reduction_db > 12


async def test_speech_keeps_its_loudness(denoiser: DeepFilterDenoiser, speech: bytes) -> None:
    noise = denoiser.open("far_field")
    out = await filtered(noise, speech, [FRAME])
    noise.close()
    ratio_db = 20 * np.log10(rms(out) / rms(speech))
    assert -3 < ratio_db < 1


async def test_odd_and_tiny_frames_are_taken(denoiser: DeepFilterDenoiser, speech: bytes) -> None:
    """1 byte at a time, odd byte counts, empty frames: nothing breaks, nothing is lost."""
    part = speech[:16_000]  # 0.5 s
    noise = denoiser.open("near_field")
    out = await filtered(noise, part[:301], [1])
    noise.close()
    assert len(out) == 300  # whole samples; the odd last byte is no sample
    noise = denoiser.open("near_field")
    assert await noise.process(b"") == b""
    out = await filtered(noise, part, [3, 641, 1, 7, 1279])
    noise.close()
    assert len(out) == len(part)


async def test_a_closed_filter_gives_nothing_and_frees_once(
    denoiser: DeepFilterDenoiser, speech: bytes
) -> None:
    noise = denoiser.open("far_field")
    running = asyncio.ensure_future(noise.process(speech))  # in the worker when closed
    await asyncio.sleep(0)
    noise.close()
    noise.close()
    await running  # the state is freed after the call, not under it
    assert await noise.process(speech[:FRAME]) == b""
    assert await noise.flush() == b""
