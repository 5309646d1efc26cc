"""Recorded human speech for accuracy figures, installed from package registries.

557 clips, ~25 minutes: Asterisk's English phone prompts (Allison Smith, CC-BY-SA-3.0, from
Debian), LibriVox and card-name recordings from pocketsphinx's sdist (PyPI), ALSA's channel
names (Debian) and JFK's inaugural excerpt (whisper.cpp's sample, inside npm's nodejs-whisper).
`install.sh` fetches and converts them into HUMAN_SPEECH_DIR (default
~/.cache/voicepipe/human-speech); nothing of it is kept in the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import jiwer

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(
    os.environ.get("HUMAN_SPEECH_DIR", Path.home() / ".cache" / "voicepipe" / "human-speech")
)


@dataclass(frozen=True)
class Clip:
    name: str
    pcm: bytes  # 16 kHz mono s16le
    text: str

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 32_000


def install(target: Path = DEFAULT_DIR) -> Path:
    """The folder with manifest.jsonl, fetched and built on first use."""
    if not (target / "manifest.jsonl").exists():
        env = os.environ | {"PYTHON": sys.executable}
        subprocess.run(["bash", str(HERE / "install.sh"), str(target)], check=True, env=env)
    return target


def clips(
    target: Path = DEFAULT_DIR, *, shortest: float = 0.0, longest: float = 30.0
) -> list[Clip]:
    folder = install(target)
    found = []
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if not shortest <= row["duration_s"] <= longest:
            continue
        with wave.open(str(folder / row["file"])) as audio:
            pcm = audio.readframes(audio.getnframes())
        found.append(Clip(Path(row["file"]).stem, pcm, row["text"]))
    return found


ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spoken(number: int) -> str:
    """0 ≤ number < 1,000,000 in words: '2' and 'two' must score alike."""
    if number < 20:
        return ONES[number]
    if number < 100:
        return TENS[number // 10] + ("" if number % 10 == 0 else " " + ONES[number % 10])
    if number < 1000:
        rest = number % 100
        return ONES[number // 100] + " hundred" + ("" if rest == 0 else " " + spoken(rest))
    rest = number % 1000
    return spoken(number // 1000) + " thousand" + ("" if rest == 0 else " " + spoken(rest))


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ").replace("%", " percent")
    text = re.sub(r"\d+", lambda m: f" {spoken(int(m.group()) % 1_000_000)} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate over the whole set (errors ÷ reference words), after normalising."""
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) or "<nothing>" for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))
