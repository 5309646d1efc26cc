"""`voicepipe say`, `transcribe` and `stats`: in-process through the use cases, or --url."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from domain.errors import VoicePipeError
from domain.subtitles import to_srt, to_vtt
from entrypoints import wiring
from entrypoints.settings import Settings

FORMATS = ("text", "json", "verbose_json", "srt", "vtt")


def say(settings: Settings, text: str, output: str | None, fmt: str | None,
        voice: str | None, url: str | None) -> int:  # fmt: skip
    """Speak `text` into a file (format from its extension unless given) or to stdout."""
    audio_format = fmt or (Path(output).suffix.lstrip(".").lower() if output else "wav") or "wav"
    if url:
        body = {"text": text, "format": audio_format, "voice": voice}
        response = httpx.post(
            f"{url.rstrip('/')}/api/tts", json=body, timeout=300, headers=_auth_headers()
        )
        if response.status_code != 200:
            return _remote_error(response)
        import pybase64

        data = pybase64.b64decode(response.json()["audio_base64"])
    else:
        from application.access import ANONYMOUS

        container = _container(settings)
        speak = container.speaking.speak(
            ANONYMOUS, text, voice=voice, audio_format=audio_format, pipeline_id=_id(),
            transport="cli",
        )  # fmt: skip
        try:
            result = asyncio.run(speak)
        except VoicePipeError as error:
            print(f"voicepipe: {error.code}: {error.message}", file=sys.stderr)
            return 1
        data = result.audio.data
    if output:
        Path(output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def transcribe(settings: Settings, files: list[str], fmt: str, language: str | None,
               url: str | None) -> int:  # fmt: skip
    """Transcribe each file to stdout, with a progress bar on stderr over all of them."""
    from tqdm import tqdm

    paths = [Path(f) for f in files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"voicepipe: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    container = None if url else _container(settings)
    durations = [wiring.recording_seconds(p) for p in paths]
    status = 0
    with tqdm(total=round(sum(durations), 1), unit="s", file=sys.stderr, mininterval=0.5,
              desc="transcribing", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio "
              "[{elapsed}<{remaining}]") as bar, _ticking(bar):  # fmt: skip
        for path, duration in zip(paths, durations, strict=True):
            done = bar.n
            try:
                body = (
                    _remote(url, path, fmt, language)
                    if url
                    else _local(
                        container, path, fmt, language, lambda s, b=done: _advance(bar, b + s)
                    )
                )
            except VoicePipeError as error:
                print(f"voicepipe: {path}: {error.code}: {error.message}", file=sys.stderr)
                status = 1
            else:
                if len(paths) > 1:
                    print(f"==> {path} <==")
                print(body)
            _advance(bar, done + duration)
        _advance(bar, bar.total)  # durations from headers are estimates: end at 100%
    return status


def stats(settings: Settings, url: str | None) -> int:
    if url:
        response = httpx.get(f"{url.rstrip('/')}/stats", timeout=30, headers=_auth_headers())
        if response.status_code != 200:
            return _remote_error(response)
        print(json.dumps(response.json(), indent=2))
        return 0
    # In-process the stats are those of the event log this process can read: with REDIS_URL
    # set, the shared stream of every instance; otherwise nothing has happened yet.
    container = _container(settings)

    async def fold() -> dict[str, Any]:
        await container.start()
        try:
            snapshot: dict[str, Any] = (await container.projector.catch_up()).snapshot()
            return snapshot
        finally:
            await container.stop()

    print(json.dumps(asyncio.run(fold()), indent=2))
    return 0


_lock = threading.Lock()


@contextlib.contextmanager
def _ticking(bar: Any, every: float = 0.5) -> Iterator[None]:
    """Redraw the bar (elapsed time, rate) between segments: the model yields them in bursts."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            with _lock:
                bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _advance(bar: Any, position: float) -> None:
    """Move to `position` seconds, never past the end: header durations are estimates."""
    with _lock:  # the ticking thread redraws the bar too
        target = min(round(position, 1), bar.total) if bar.total else round(position, 1)
        bar.update(max(0.0, target - bar.n))


def _local(container: Any, path: Path, fmt: str, language: str | None, advance: Any) -> str:
    from application.access import ANONYMOUS
    from domain.speech import Segment

    audio = path.read_bytes()

    async def run() -> Any:
        found = container.transcribing.segments(
            ANONYMOUS, audio, language, pipeline_id=_id(), transport="cli"
        )
        async for item in found:
            if not isinstance(item, Segment):
                return item
            advance(item.end)

    return _render(asyncio.run(run()).transcript, fmt)


def _remote(url: str, path: Path, fmt: str, language: str | None) -> str:
    data = {
        "model": "whisper-1",
        "response_format": fmt,
        **({"language": language} if language else {}),
    }
    files = {"file": (path.name, path.read_bytes())}
    endpoint = f"{url.rstrip('/')}/v1/audio/transcriptions"
    response = httpx.post(endpoint, files=files, data=data, timeout=3600, headers=_auth_headers())
    if response.status_code != 200:
        error = response.json().get("error", {})
        raise VoicePipeError(str(error.get("message", response.text)))
    return response.text.rstrip("\n") if fmt in ("text", "srt", "vtt") else response.text


def _render(transcript: Any, fmt: str) -> str:
    if fmt == "text":
        return str(transcript.text)
    if fmt == "srt":
        return to_srt(transcript.segments)
    if fmt == "vtt":
        return to_vtt(transcript.segments)
    if fmt == "json":
        return json.dumps({"text": transcript.text})
    return msgspec.json.encode(transcript).decode()


def _container(settings: Settings) -> Any:
    """The models in this process, for its one user: nothing here is limited."""
    from entrypoints.bootstrap import bootstrap

    return bootstrap(msgspec.structs.replace(settings, anonymous_limits="off"))


def _remote_error(response: httpx.Response) -> int:
    print(f"voicepipe: server answered {response.status_code}: {response.text}", file=sys.stderr)
    return 1


def _id() -> str:
    return uuid.uuid4().hex


def _auth_headers() -> dict[str, str]:
    """--url against a service with API_KEYS: the key comes from $VOICEPIPE_API_KEY."""
    key = os.environ.get("VOICEPIPE_API_KEY", "").strip()
    return {"authorization": f"Bearer {key}"} if key else {}
