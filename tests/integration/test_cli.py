"""The `voicepipe` command line, run as a user would: in-process and against a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import srt

from tests.integration.conftest import RunningServer
from tests.integration.speech import SENTENCES, heard

ROOT = Path(__file__).resolve().parents[2]


def voicepipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args], cwd=ROOT, capture_output=True, timeout=300
    )


def test_say_then_transcribe_in_process(tmp_path: Path) -> None:
    first, second = tmp_path / "one.mp3", tmp_path / "two.wav"
    assert voicepipe("say", SENTENCES[0], "-o", str(first)).returncode == 0
    spoken = voicepipe("say", SENTENCES[1], "--format", "wav")  # to stdout
    assert spoken.returncode == 0 and spoken.stdout[:4] == b"RIFF"
    second.write_bytes(spoken.stdout)
    result = voicepipe("transcribe", str(first), str(second), "--format", "srt")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    parts = out.split(f"==> {second} <==")
    assert f"==> {first} <==" in parts[0]
    subtitles = [list(srt.parse(p.split("<==", 1)[-1])) for p in parts]
    # Piper's voice varies run to run: "lazy" was once "lizzy" (`heard` allows for that).
    assert heard(SENTENCES[0], " ".join(s.content for s in subtitles[0]))
    assert heard(SENTENCES[1], " ".join(s.content for s in subtitles[1]))
    assert "transcribing: 100%" in result.stderr.decode()  # the progress bar, on stderr


def test_cli_against_a_running_server(server: RunningServer, tmp_path: Path) -> None:
    audio = tmp_path / "remote.opus"
    said = voicepipe("say", SENTENCES[2], "-o", str(audio), "--url", server.url)
    assert said.returncode == 0, said.stderr
    transcribed = voicepipe("transcribe", str(audio), "--url", server.url)
    assert transcribed.returncode == 0, transcribed.stderr
    assert heard(SENTENCES[2], transcribed.stdout.decode()), transcribed.stdout
    stats = voicepipe("stats", "--url", server.url)
    assert json.loads(stats.stdout)["requests"]["tts"]["completed"] >= 1


def test_cli_errors_are_plain(tmp_path: Path) -> None:
    missing = voicepipe("transcribe", str(tmp_path / "nope.wav"))
    assert missing.returncode == 2 and b"no such file" in missing.stderr
    empty = voicepipe("say", "   ", "-o", str(tmp_path / "x.wav"))
    assert empty.returncode == 1 and b"empty_text" in empty.stderr
