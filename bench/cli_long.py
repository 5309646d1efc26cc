"""Issue 6 figure: `voicepipe transcribe` on a 10-minute file, against the bare model, and how
often its progress bar moves.

Run: .venv/bin/python -m bench.cli_long
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bench.foundation import bare_whisper
from bench.harness import ROOT, table
from tests.integration.speech import speech_16k_pcm

SENTENCES = [
    "The meeting started a little late because the projector would not turn on.",
    "After that, the team went through the plans for the next quarter, one by one.",
    "Everyone agreed that the new office should have more room for quiet work.",
    "There was a long discussion about the budget and about hiring two more people.",
    "In the end, the manager thanked everybody and asked for written notes by Friday.",
]
MINUTES = 10


def long_wav(path: Path) -> float:
    pieces = [speech_16k_pcm(s) + b"\x00\x00" * 8000 for s in SENTENCES]
    block = b"".join(pieces)
    repeats = int(MINUTES * 60 * 32_000 / len(block)) + 1
    pcm = (block * repeats)[: MINUTES * 60 * 32_000]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return len(pcm) / 32_000


def cli_run(path: Path) -> tuple[float, list[float]]:
    """Wall time of the CLI, and the times at which its progress bar was redrawn."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "transcribe", str(path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    redraws: list[float] = []
    while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
        redraws.extend([time.perf_counter()] * chunk.count(b"\r"))
    process.wait()
    return time.perf_counter() - started, redraws


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.wav"
        seconds = long_wav(path)
        with wave.open(str(path)) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        transcribe = bare_whisper()
        started = time.perf_counter()
        transcribe(audio)
        bare = time.perf_counter() - started
        wall, redraws = cli_run(path)
    gaps = np.diff(redraws) if len(redraws) > 1 else np.array([wall])
    ratio = (wall / seconds) / (bare / seconds)
    rows = [
        (
            f"CLI RTF / bare model RTF, {seconds / 60:.0f} min file",
            f"{ratio:.3f} ({wall / seconds:.4f} / {bare / seconds:.4f})",
            "<= 1.1",
            str(ratio <= 1.1),
        ),
        (
            "progress bar: longest gap between redraws",
            f"{gaps.max():.2f} s ({len(redraws)} redraws)",
            "<= 1 s",
            str(gaps.max() <= 1.0),
        ),
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
