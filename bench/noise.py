"""Issue 26: noise reduction (NOISE_REDUCTION) on recorded human speech in noise.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.noise [--clips 24]

Recorded human clips (bench/human_speech, 2-10 s, every k-th) are mixed with noise at 10 and
5 dB SNR (speech power over the clip; 0.5 s of noise before the speech, 0.3 s after, so the
filter has heard the noise before the words, as in a live session):
- babble: four other human clips of the set at once (none of the clips under test);
- fan: brown noise with the high end rolled off and a 100 Hz hum (what a fan or an engine
  room sounds like), generated with a fixed seed.
Each mix, and the clean clip, goes through the service's noise filter as a listening session
feeds it (20 ms frames, then flush) with each mode, then through the service's transcriber
(faster-whisper tiny.en, the `utterance` settings of a stream's final). WER over the set per
condition (bench.human_speech.wer), and the filter's CPU seconds per second of audio.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from adapters.deepfilter_denoiser import DeepFilterDenoiser
from application.ports import TranscriptionJob
from bench.human_speech import Clip, clips, wer
from domain.speech import AudioClip
from entrypoints import speech_models
from entrypoints.settings import Settings

RATE = 16_000
FRAME = 640  # 20 ms
LEAD, TAIL = int(0.5 * RATE), int(0.3 * RATE)
MODES = ("off", "near_field", "far_field")


def pick(count: int) -> tuple[list[Clip], list[Clip]]:
    """`count` clips under test, and four others for the babble."""
    usable = clips(shortest=2.0, longest=10.0)
    step = max(1, len(usable) // (count + 4))
    spread = usable[::step]
    return spread[:count], spread[count : count + 4]


def floats(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0


def babble(talkers: list[Clip], length: int) -> np.ndarray:
    mix = np.zeros(length)
    for shift, talker in enumerate(talkers):
        voice = floats(talker.pcm)
        voice /= np.sqrt(np.mean(voice**2)) + 1e-9
        looped = np.tile(voice, length // len(voice) + 2)
        start = (shift * len(voice)) // 3  # each talker from another point
        mix += looped[start : start + length]
    return mix


def fan(length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    brown = np.cumsum(rng.standard_normal(length))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # no drift below 40 Hz
    brown = np.convolve(brown, np.ones(4) / 4, mode="same")  # roll the high end off
    hum = np.sin(2 * np.pi * 100 * np.arange(length) / RATE)
    hum += 0.5 * np.sin(2 * np.pi * 200 * np.arange(length) / RATE)
    brown /= np.sqrt(np.mean(brown**2))
    return np.asarray(brown + 0.5 * hum / np.sqrt(np.mean(hum**2)))


def mixed(clip: Clip, noise: np.ndarray | None, snr_db: float) -> bytes:
    speech = np.concatenate((np.zeros(LEAD), floats(clip.pcm), np.zeros(TAIL)))
    if noise is None:
        out = speech
    else:
        power = np.mean(floats(clip.pcm) ** 2)
        noise = noise[: len(speech)] * np.sqrt(power / np.mean(noise**2) / 10 ** (snr_db / 10))
        out = speech + noise
    return bytes((np.clip(out, -1, 1) * 32767).astype("<i2").tobytes())


async def filtered(denoiser: DeepFilterDenoiser, mode: str, pcm: bytes) -> tuple[bytes, float]:
    """The audio as a session with `mode` hears it, and the filter's CPU seconds for it."""
    if mode == "off":
        return pcm, 0.0
    noise = denoiser.open(mode)  # type: ignore[arg-type]
    await noise.process(b"\x00\x00")  # the model loads (once per session): not counted
    cpu = 0.0
    parts = []
    for at in range(0, len(pcm), FRAME):
        began = time.process_time()
        parts.append(await noise.process(pcm[at : at + FRAME]))
        cpu += time.process_time() - began
    parts.append(await noise.flush())
    noise.close()
    return b"".join(parts)[2:], cpu  # the 2 bytes of warm-up silence lead


async def run(count: int) -> None:
    tested, talkers = pick(count)
    transcriber = speech_models.transcriber(Settings())
    denoiser = DeepFilterDenoiser(threads=1)
    seconds = sum(len(c.pcm) for c in tested) / 2 / RATE
    print(f"{len(tested)} clips, {seconds:.0f} s of speech; babble of {len(talkers)} talkers")
    conditions: list[tuple[str, str, float]] = [("clean", "", 0.0)]
    conditions += [(kind, f"{snr:g} dB", snr) for kind in ("babble", "fan") for snr in (10, 5)]
    refs = [c.text for c in tested]
    print("| noise | SNR | WER off | WER near_field | WER far_field |")
    print("|---|---|---|---|---|")
    cpu_total, audio_total = 0.0, 0.0
    for kind, label, snr in conditions:
        row = []
        for mode in MODES:
            hyps = []
            for index, clip in enumerate(tested):
                length = LEAD + len(clip.pcm) // 2 + TAIL
                noise = None
                if kind == "babble":
                    noise = babble(talkers, length)
                elif kind == "fan":
                    noise = fan(length, seed=index)
                pcm, cpu = await filtered(denoiser, mode, mixed(clip, noise, snr))
                if mode != "off":
                    cpu_total += cpu
                    audio_total += len(pcm) / 2 / RATE
                job = TranscriptionJob(clip=AudioClip(pcm, RATE), language="en", kind="utterance")
                hyps.append((await transcriber.transcribe(job)).text)
            row.append(wer(refs, hyps))
        print(f"| {kind} | {label or '-'} | " + " | ".join(f"{w:.3f}" for w in row) + " |")
    print(f"noise filter CPU: {cpu_total / audio_total:.3f} s per s of audio (one thread)")
    denoiser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=24)
    asyncio.run(run(parser.parse_args().clips))


if __name__ == "__main__":
    main()
