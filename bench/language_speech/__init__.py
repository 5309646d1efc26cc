"""Recorded human speech in other languages, installed from Debian (issue 27).

Asterisk's core prompts in Spanish (es_MX, Allison Smith), Canadian French (June) and Russian,
G.722 recordings with upstream's transcript of each, CC-BY-SA-3.0. `install.sh` fetches and
converts them into LANGUAGE_SPEECH_DIR (default ~/.cache/voicepipe/language-speech); nothing
of it is kept in the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
import wave
from pathlib import Path

import jiwer

from bench.human_speech import Clip

HERE = Path(__file__).resolve().parent
LANGUAGES = ("es", "fr", "ru")
DEFAULT_DIR = Path(
    os.environ.get("LANGUAGE_SPEECH_DIR", Path.home() / ".cache" / "voicepipe" / "language-speech")
)


def install(target: Path = DEFAULT_DIR) -> Path:
    """The folder with manifest.jsonl, fetched and built on first use."""
    if not (target / "manifest.jsonl").exists():
        env = os.environ | {"PYTHON": sys.executable, "LANGUAGES": " ".join(LANGUAGES)}
        subprocess.run(["bash", str(HERE / "install.sh"), str(target)], check=True, env=env)
    return target


def clips(language: str, target: Path = DEFAULT_DIR, *, longest: float = 30.0) -> list[Clip]:
    folder = install(target)
    found = []
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["language"] != language or row["duration_s"] > longest:
            continue
        with wave.open(str(folder / row["file"])) as audio:
            pcm = audio.readframes(audio.getnframes())
        found.append(Clip(Path(row["file"]).stem, pcm, row["text"]))
    return found


def normalize(text: str) -> str:
    """Lower case, no accents (the Spanish listing writes `numero`), no punctuation."""
    text = unicodedata.normalize("NFKD", text.lower().replace("ё", "е"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w']+", " ", text).replace("_", " ").split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate over the whole set (errors ÷ reference words), after normalising."""
    pairs = [
        (normalize(r), normalize(h) or "<nothing>")
        for r, h in zip(references, hypotheses, strict=True)
    ]
    pairs = [(r, h) for r, h in pairs if r]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))
