"""Memory of one hostile text: a single 4,900-character word, at speed 1 and 0.25.

"one inference" is what the Piper adapter did before the text was bounded (the whole text in
one `PiperVoice.synthesize`); "adapter" is PiperSynthesizer now (bounded pieces, one after
another). Each case runs in a fresh process, so one case's memory does not carry into the next.

Run: .venv/bin/python -m bench.piper_bounds
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time

import psutil

WORD = ("antidisestablishmentarianism" * 200)[:4900]
SPEEDS = (1.0, 0.25)
PATHS = ("one inference", "adapter")


def measure(path: str, speed: float) -> dict[str, float]:
    """In this process: load the voice, then speak WORD once; memory in MB, time in seconds."""
    from piper import SynthesisConfig

    from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice, load_voice

    process = psutil.Process()
    if path == "one inference":
        voice = load_voice(bundled_voice())
        list(voice.synthesize("Ready."))
        loaded = process.memory_info().rss
        start = time.perf_counter()
        config = SynthesisConfig(length_scale=1.0 / speed)
        pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(WORD, config))
        rate = voice.config.sample_rate
    else:
        piper = PiperSynthesizer([bundled_voice()])
        loaded = process.memory_info().rss
        start = time.perf_counter()
        clip = asyncio.run(piper.synthesize(WORD, piper.default_voice, speed))
        pcm, rate = clip.pcm, clip.sample_rate
    seconds = time.perf_counter() - start
    return {
        "loaded_mb": loaded / 2**20,
        "after_mb": process.memory_info().rss / 2**20,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "audio_s": len(pcm) / 2 / rate,
        "synth_s": seconds,
    }


def main() -> None:
    print(f"one {len(WORD):,}-character word; RSS of a fresh process per case\n")
    header = ("path", "speed", "RSS loaded", "RSS after", "growth", "peak RSS", "audio", "took")
    rows = [header]
    for speed in SPEEDS:
        for path in PATHS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.piper_bounds", "--case", path, str(speed)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            m = json.loads(out.splitlines()[-1])
            rows.append(
                (
                    path,
                    f"{speed:g}",
                    f"{m['loaded_mb']:.0f} MB",
                    f"{m['after_mb']:.0f} MB",
                    f"+{m['after_mb'] - m['loaded_mb']:.0f} MB",
                    f"{m['peak_mb']:.0f} MB",
                    f"{m['audio_s']:.0f} s",
                    f"{m['synth_s']:.1f} s",
                )
            )
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    print("\n".join(f"| {line} |" for line in lines))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        print(json.dumps(measure(sys.argv[2], float(sys.argv[3]))))
    else:
        main()
