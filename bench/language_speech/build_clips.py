"""Asterisk's prompts in other languages, with upstream's transcript of each, as 16 kHz WAV.

usage: build_clips.py SRC_DIR OUT_DIR LANGUAGE...  (SRC_DIR holds the unpacked packages)
"""

from __future__ import annotations

import gzip
import json
import sys
import wave
from pathlib import Path

import av
import numpy as np

HOW = "apt-get download asterisk-core-sounds-{0} asterisk-core-sounds-{0}-g722 && dpkg -x"
MIN_WORDS = 3  # single words (digits, letters) say little about a language


def decode(path: Path) -> np.ndarray:
    with av.open(str(path), format="g722") as source:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in source.decode(audio=0)
            for out in resampler.resample(frame)
        ]
        parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(parts).astype("<i2")


def prompts(src: Path, language: str) -> list[tuple[str, str, Path]]:
    """(key, text, recording) of every spoken prompt with a transcript."""
    package = f"asterisk-core-sounds-{language}"
    doc = src / package / f"usr/share/doc/{package}/core-sounds-{language}.txt.gz"
    (sounds,) = (src / f"{package}-g722/usr/share/asterisk/sounds").iterdir()
    found = []
    with gzip.open(doc, "rt", encoding="utf-8", errors="replace") as listing:
        for line in listing:
            key, _, text = (part.strip() for part in line.strip().partition(":"))
            if line.startswith(";") or len(text.split()) < MIN_WORDS:
                continue
            # Not speech ([tones], <beep>, (notes)), keypad symbols, or digits (read how?).
            if any(c in text for c in "[]<>()*#0123456789") or key.startswith("silence/"):
                continue
            path = sounds / f"{key}.g722"
            if path.is_file():
                found.append((key, text, path))
    return found


def main() -> None:
    src, out, languages = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for language in languages:
        for key, text, path in prompts(src, language):
            pcm = decode(path)
            name = f"clips/{language}_{key.replace('/', '_')}.wav"
            with wave.open(str(out / name), "wb") as audio:
                audio.setnchannels(1)
                audio.setsampwidth(2)
                audio.setframerate(16_000)
                audio.writeframes(pcm.tobytes())
            rows.append({
                "file": name, "language": language, "text": text,
                "source": f"Debian asterisk-core-sounds-{language}-g722 1.6.1: {key}",
                "license": "CC-BY-SA-3.0", "install": HOW.format(language),
                "duration_s": round(len(pcm) / 16_000, 3),
            })  # fmt: skip
    lines = (json.dumps(row, ensure_ascii=False) for row in rows)
    (out / "manifest.jsonl").write_text("".join(f"{line}\n" for line in lines))
    for language in languages:
        mine = [row for row in rows if row["language"] == language]
        seconds = sum(float(str(row["duration_s"])) for row in mine)
        print(f"{language}: {len(mine)} clips, {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
