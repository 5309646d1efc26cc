"""`voicepipe bench`, run as a user would: every figure present and a plausible number.

No speed is asserted: the figures are the machine's, whatever they are.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "TTS real-time factor",
    "STT real-time factor",
    "first audio chunk",
    "end of speech -> final",
    "cached TTS",
    "real-time streams held",
)
TINY = ("--quick", "--stream-seconds", "3", "--max-streams", "1", "--load-seconds", "1")


def voicepipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_bench_starts_its_own_service_and_prints_every_figure() -> None:
    result = voicepipe("bench", *TINY, "--json")
    assert result.returncode == 0, result.stderr
    table = result.stderr.split("voicepipe bench:", 1)[1]  # progress lines come first
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[2:]] == list(FIGURES)
    figures = json.loads(result.stdout)
    assert [row["figure"] for row in figures["rows"]] == list(FIGURES)
    assert figures["service"]["started_by_bench"] is True
    assert positive(figures["tts_real_time_factor"]["median"])
    assert positive(figures["stt_real_time_factor"]["median"])
    assert positive(figures["first_audio_chunk_ms"]["median"])
    assert positive(figures["end_of_speech_to_final_ms"]["median"])
    assert positive(figures["end_of_speech_to_final_ms"]["server_median"])
    assert positive(figures["cached_tts"]["requests_per_second"])
    assert positive(figures["cached_tts"]["p99_ms"])
    held = figures["streams_held"]
    assert held["streams"] in (0, 1) and held["steps"][0]["streams"] == 1
    assert positive(held["steps"][0]["p95_ms"])


def test_bench_says_plainly_when_the_url_does_not_answer() -> None:
    result = voicepipe("bench", *TINY, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("voicepipe: bench: ")
    assert "Traceback" not in result.stderr
