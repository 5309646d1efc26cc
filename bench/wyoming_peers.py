"""Wyoming side by side: this service's Wyoming server against the PyPI servers Home Assistant
users run for the same job, with the same models, on the same machine.

    .venv/bin/python -m bench.wyoming_peers [--runs 20] [--rounds 6] [--paced RUNS]
                                            [--peers-venv DIR]

- voicepipe: `voicepipe serve` with WYOMING_URI (embedded defaults: the bundled tiny.en and
  en_US-joe-medium), one process for STT and TTS;
- peers: wyoming-faster-whisper 3.8.1 (STT) and wyoming-piper 2.5.2 (TTS), installed by this
  script into a venv of their own outside the repo (reused when already there), pointed at the
  very same model files on disk: nothing is downloaded. Both STT servers get int8, beam 5 and
  one CPU thread per core.

Speech in: Piper speech (16 kHz s16le, ~4.3-5.2 s sentences) sent as `transcribe`,
`audio-start`, 100 ms `audio-chunk`s as fast as the socket takes them, `audio-stop`; timed
from `audio-stop` sent to `transcript` received. Speech out: `synthesize` with one sentence;
timed from the send to the first `audio-chunk`, and to `audio-stop`. Every figure interleaves
the two servers run by run (who goes first alternates), so machine drift hits both alike.

Ours takes the shell's environment like any `voicepipe serve`, so a setting can be tried
against the same peers: `STT_PARTIAL_MS=100000` (no partial drafts) shows what drafts cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize

from adapters.faster_whisper_transcriber import bundled_model
from adapters.piper_synthesizer import bundled_voice, voice_name
from bench.harness import free_port, median, running_service
from tests.integration.speech import speech_16k_pcm, wer

PEER_PACKAGES = {"wyoming-faster-whisper": "3.8.1", "wyoming-piper": "2.5.2"}
DEFAULT_VENV = Path(os.environ.get("WYOMING_PEERS_VENV", "/tmp/voicepipe-wyoming-peers"))
THREADS = os.cpu_count() or 1
BEAM_SIZE = 5
RATE = 16_000
CHUNK_BYTES = RATE * 2 // 10  # 100 ms
CLIENTS = 4
TIMEOUT_S = 120.0

CLIPS = [
    "Turn on the kitchen lights and set the living room temperature to twenty one degrees "
    "before dinner.",
    "Please remind me to call the dentist tomorrow morning before I leave the house for work.",
    "What is the weather going to be like in Amsterdam on Saturday afternoon and on Sunday "
    "morning?",
    "Add milk, eggs, bread, butter and two bags of coffee to my shopping list for the weekend.",
    "Close the garage door and lock the front door when everybody has left the house this morning.",
    "Play some quiet jazz music in the bedroom and lower the volume slowly after ten minutes.",
    "How long will it take to drive from the office to the airport this evening in heavy traffic?",
    "Set a timer for twenty five minutes and tell me when the pasta and the sauce are ready.",
]
REPEATED = "The front door is locked and the alarm is set for the night."
# Distinct one-sentence texts of similar length: three lists of coprime lengths, so every part
# changes from one sentence to the next and none repeats below 7 * 11 * 13 sentences.
WHO = (
    "My neighbour",
    "The new teacher",
    "Our youngest son",
    "The delivery driver",
    "Your older sister",
    "The office manager",
    "A friendly stranger",
)
DID = (
    "left a blue umbrella",
    "parked the old van",
    "forgot the spare keys",
    "hid the birthday cake",
    "found a lost wallet",
    "painted the garden fence",
    "dropped a box of apples",
    "fixed the broken bicycle",
    "planted three small trees",
    "lost the concert tickets",
    "cleaned the dusty windows",
)
WHERE = (
    "near the station",
    "behind the library",
    "at the corner shop",
    "beside the river",
    "outside the bakery",
    "in the hotel lobby",
    "next to the post office",
    "by the football pitch",
    "under the railway bridge",
    "in the school car park",
    "at the top of the hill",
    "beyond the market square",
    "on the village green",
)


def sentence(n: int) -> str:
    return f"{WHO[n % len(WHO)]} {DID[n % len(DID)]} {WHERE[n % len(WHERE)]} this morning."


# The peers, in a venv of their own


def peer_python(venv: Path) -> Path:
    """The peers' interpreter, installing them first unless the venv already has them."""
    python = venv / "bin" / "python"
    if python.exists() and _has_peers(python):
        return python
    pins = [f"{name}=={version}" for name, version in PEER_PACKAGES.items()]
    print(f"installing {' '.join(pins)} into {venv}", file=sys.stderr)
    uv = shutil.which("uv")
    if uv is not None:
        if not python.exists():
            subprocess.run([uv, "venv", "--python", "3.11", str(venv)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        subprocess.run([uv, "pip", "install", *pins], check=True, env=env)
    else:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    if not _has_peers(python):
        raise RuntimeError(f"{venv} does not have {pins} after installing them")
    return python


def _has_peers(python: Path) -> bool:
    names = ", ".join(repr(name) for name in PEER_PACKAGES)
    probe = f"from importlib.metadata import version; print(*(version(n) for n in ({names},)))"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return found.returncode == 0 and found.stdout.split() == list(PEER_PACKAGES.values())


@contextlib.contextmanager
def peer(name: str, command: list[str], port: int, log: IO[bytes]) -> Iterator[int]:
    """A peer server on loopback, ready once it answers `describe`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # belt and braces: it must never download
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not asyncio.run(_answers(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log.name}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _answers(port: int) -> bool:
    try:
        async with asyncio.timeout(5), AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            event = await client.read_event()
            return event is not None and event.type == "info"
    except (OSError, TimeoutError):
        return False


# One request each


async def until(client: AsyncTcpClient, kind: str) -> Event:
    while (event := await client.read_event()) is not None:
        if event.type == "error":
            raise RuntimeError(f"error event: {event.data}")
        if event.type == kind:
            return event
    raise RuntimeError(f"connection closed before {kind}")


SATELLITE_SILENCE_S = 0.7  # Home Assistant's default end-of-speech silence


@dataclass
class Heard:
    seconds: float  # audio-stop sent -> transcript received
    text: str


async def transcribe(port: int, pcm: bytes, paced: bool = False) -> Heard:
    """`paced`: the chunks go out in real time, as a satellite's microphone sends them, with
    the SATELLITE_SILENCE_S of silence its own VAD waits for before it sends audio-stop."""
    if paced:
        pcm += b"\x00\x00" * int(RATE * SATELLITE_SILENCE_S)
    async with asyncio.timeout(TIMEOUT_S), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        start = time.perf_counter()
        for index, at in enumerate(range(0, len(pcm), CHUNK_BYTES)):
            if paced and (delay := start + index / 10 - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            chunk = AudioChunk(rate=RATE, width=2, channels=1, audio=pcm[at : at + CHUNK_BYTES])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        sent = time.perf_counter()
        transcript = Transcript.from_event(await until(client, "transcript"))
        return Heard(time.perf_counter() - sent, transcript.text)


@dataclass
class Spoken:
    first_chunk: float  # synthesize sent -> first audio-chunk received
    stop: float  # synthesize sent -> audio-stop received
    audio_seconds: float


async def synthesize(port: int, text: str) -> Spoken:
    async with asyncio.timeout(TIMEOUT_S), AsyncTcpClient("127.0.0.1", port) as client:
        sent = time.perf_counter()
        await client.write_event(Synthesize(text=text).event())
        first = await until(client, "audio-chunk")
        first_chunk = time.perf_counter() - sent
        chunk = AudioChunk.from_event(first)
        rate, audio = chunk.rate * chunk.width * chunk.channels, len(chunk.audio)
        while (event := await client.read_event()) is not None and event.type != "audio-stop":
            if event.type == "error":
                raise RuntimeError(f"error event: {event.data}")
            if event.type == "audio-chunk":
                audio += len(AudioChunk.from_event(event).audio)
        if event is None:
            raise RuntimeError("connection closed before audio-stop")
        return Spoken(first_chunk, time.perf_counter() - sent, audio / rate)


# Figures


@dataclass
class Side:
    stt: int  # port
    tts: int
    heard: list[Heard] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    stt_one: list[float] = field(default_factory=list)
    stt_four: list[float] = field(default_factory=list)
    stt_paced: list[float] = field(default_factory=list)
    tts_one: list[Spoken] = field(default_factory=list)
    tts_four: list[Spoken] = field(default_factory=list)
    repeated: list[Spoken] = field(default_factory=list)


def p95(values: list[float]) -> float:
    """Nearest rank: the smallest value with at least 95% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


async def interleaved(
    rounds: int, ours: Side, peer: Side, run: Callable[[Side, int], Awaitable[None]]
) -> None:
    for n in range(rounds):
        for side in (ours, peer) if n % 2 == 0 else (peer, ours):
            await run(side, n)


async def measure(ours: Side, peer: Side, runs: int, rounds: int, paced: int) -> None:
    clips = [speech_16k_pcm(text) for text in CLIPS]
    seconds = [len(pcm) / 2 / RATE for pcm in clips]
    print(f"clips: {len(clips)}, {min(seconds):.1f}-{max(seconds):.1f} s", file=sys.stderr)
    for side in (ours, peer):  # warm-up: the peer loads its voice on the first request
        await transcribe(side.stt, clips[0])
        await synthesize(side.tts, "Warming up the voice.")
        await synthesize(side.tts, REPEATED)  # ours caches it here: the repeats are hits

    async def stt_one(side: Side, n: int) -> None:
        heard = await transcribe(side.stt, clips[n % len(clips)])
        side.stt_one.append(heard.seconds)
        side.heard.append(heard)
        side.references.append(CLIPS[n % len(clips)])

    async def stt_paced(side: Side, n: int) -> None:
        heard = await transcribe(side.stt, clips[n % len(clips)], paced=True)
        side.stt_paced.append(heard.seconds)
        side.heard.append(heard)
        side.references.append(CLIPS[n % len(clips)])

    async def stt_four(side: Side, n: int) -> None:
        picks = [(n * CLIENTS + k) % len(clips) for k in range(CLIENTS)]
        heard = await asyncio.gather(*(transcribe(side.stt, clips[i]) for i in picks))
        side.stt_four += [h.seconds for h in heard]
        side.heard += heard
        side.references += [CLIPS[i] for i in picks]

    async def tts_one(side: Side, n: int) -> None:
        side.tts_one.append(await synthesize(side.tts, sentence(n)))

    async def tts_four(side: Side, n: int) -> None:
        texts = [sentence(runs + n * CLIENTS + k) for k in range(CLIENTS)]
        side.tts_four += await asyncio.gather(*(synthesize(side.tts, t) for t in texts))

    async def repeated(side: Side, n: int) -> None:
        side.repeated.append(await synthesize(side.tts, REPEATED))

    figures = [
        ("time to transcript, 1 client", runs, stt_one),
        (f"time to transcript, {CLIENTS} clients", rounds, stt_four),
        ("time to first audio chunk, 1 client", runs, tts_one),
        (f"time to first audio chunk, {CLIENTS} clients", rounds, tts_four),
        ("repeated phrase", runs, repeated),
    ]
    if paced:
        figures.insert(1, ("time to transcript, 1 client, paced", paced, stt_paced))
    for name, count, run in figures:
        started = time.monotonic()
        await interleaved(count, ours, peer, run)
        print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr)


def ms(value: float) -> str:
    return f"{1000 * value:.0f} ms"


def rows(ours: Side, peer: Side) -> list[tuple[str, str, str, str]]:
    def one(figure: str, a: list[float], b: list[float], strict: bool = False) -> tuple[str, ...]:
        x, y = median(a), median(b)
        return (figure, ms(x), ms(y), _verdict(x < y if strict else x <= y, x, y))

    def four(figure: str, a: list[float], b: list[float]) -> tuple[str, ...]:
        x, y = (median(a), p95(a)), (median(b), p95(b))
        fast = x[0] <= y[0] and x[1] <= y[1]
        return (
            figure,
            f"{ms(x[0])} / {ms(x[1])}",
            f"{ms(y[0])} / {ms(y[1])}",
            _verdict(fast, x[0], y[0]),
        )

    def wers(side: Side) -> float:
        scores = [wer(r, h.text) for r, h in zip(side.references, side.heard, strict=True)]
        return sum(scores) / len(scores)

    n, r, p = len(ours.stt_one), len(ours.stt_four), len(ours.stt_paced)
    first = [s.first_chunk for s in ours.tts_one], [s.first_chunk for s in peer.tts_one]
    stop = [s.stop for s in ours.tts_one], [s.stop for s in peer.tts_one]
    four_first = [s.first_chunk for s in ours.tts_four], [s.first_chunk for s in peer.tts_four]
    again_first = [s.first_chunk for s in ours.repeated], [s.first_chunk for s in peer.repeated]
    again_stop = [s.stop for s in ours.repeated], [s.stop for s in peer.repeated]
    paced = ours.stt_paced, peer.stt_paced
    ours_wer, peer_wer = wers(ours), wers(peer)
    table = [
        one(f"STT: audio-stop → transcript, 1 client (median of {n})", ours.stt_one, peer.stt_one),
        four(
            f"STT: audio-stop → transcript, {CLIENTS} clients (median / p95 of {r})",
            ours.stt_four,
            peer.stt_four,
        ),
        *(
            [one(f"STT, audio paced in real time, 1 client (median of {p})", *paced)]
            if ours.stt_paced
            else []
        ),
        one(f"TTS: synthesize → first audio-chunk, 1 client, distinct (median of {n})", *first),
        one(f"TTS: synthesize → audio-stop, 1 client, distinct (median of {n})", *stop),
        four(
            f"TTS: synthesize → first audio-chunk, {CLIENTS} clients, distinct "
            f"(median / p95 of {r})",
            *four_first,
        ),
        one(f"TTS repeated phrase: → first audio-chunk (median of {n})", *again_first, True),
        one(f"TTS repeated phrase: → audio-stop (median of {n})", *again_stop, True),
        (
            f"STT WER, mean over the {len(ours.heard)} transcripts above",
            f"{ours_wer:.3f}",
            f"{peer_wer:.3f}",
            "as accurate" if ours_wer <= peer_wer else "**no: less accurate**",
        ),
    ]
    return [(a, b, c, d) for a, b, c, d in table]


def _verdict(fast: bool, ours: float, peer: float) -> str:
    ratio = peer / ours if ours > 0 else float("inf")
    return f"yes ({ratio:.2f}×)" if fast else f"**no** ({ratio:.2f}×)"


def markdown(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("figure", "voicepipe", "peer", "ours at least as fast?")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    lines += [" | ".join(row) for row in rows]
    return "\n".join(f"| {line} |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs of each one-client figure")
    parser.add_argument("--rounds", type=int, default=6, help=f"rounds of {CLIENTS} clients")
    parser.add_argument("--peers-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument(
        "--paced",
        type=int,
        default=0,
        metavar="RUNS",
        help="also time speech sent in real time, RUNS runs a side (~10 s each)",
    )
    args = parser.parse_args()
    python = peer_python(args.peers_venv)
    model, voice = bundled_model(), bundled_voice()
    ours_stt = ours_tts = free_port()
    with tempfile.TemporaryDirectory(prefix="wyoming-peers-") as scratch:
        data = Path(scratch)
        (data / "whisper").mkdir()
        (data / "piper").mkdir()
        for path in (voice, Path(f"{voice}.json")):  # the voice's files, by name, no download
            (data / "piper" / path.name).symlink_to(path)
        whisper = [
            str(python), "-m", "wyoming_faster_whisper",
            "--uri", f"tcp://127.0.0.1:{(stt := free_port())}",
            "--model", str(model),  # a directory: loaded as is
            "--data-dir", str(data / "whisper"),
            "--local-files-only",
            "--compute-type", "int8",
            "--beam-size", str(BEAM_SIZE),
            "--cpu-threads", str(THREADS),
        ]  # fmt: skip
        piper = [
            str(python), "-m", "wyoming_piper",
            "--uri", f"tcp://127.0.0.1:{(tts := free_port())}",
            "--voice", voice_name(voice),
            "--data-dir", str(data / "piper"),
        ]  # fmt: skip
        env = {
            "WYOMING_URI": f"tcp://127.0.0.1:{ours_stt}",
            "WHISPER_COMPUTE_TYPE": "int8",
            "WHISPER_THREADS": str(THREADS),
            "WHISPER_BEAM_SIZE": str(BEAM_SIZE),
            "STT_STREAM_BEAM_SIZE": str(BEAM_SIZE),
            # The bundled models and an in-memory cache, empty at start, whatever the shell says.
            "WHISPER_MODEL": "",
            "WHISPER_MODELS": "",
            "TTS_PROVIDERS": "piper",
            "PIPER_VOICE": "",
            "REDIS_URL": "",
        }
        with (
            open(data / "peers.log", "wb") as log,
            running_service(**env),
            peer("wyoming-faster-whisper", whisper, stt, log),
            peer("wyoming-piper", piper, tts, log),
        ):
            ours, other = Side(ours_stt, ours_tts), Side(stt, tts)
            asyncio.run(measure(ours, other, args.runs, args.rounds, args.paced))
    print(
        f"\nmodels: {model} (int8, beam {BEAM_SIZE}, {THREADS} threads) and {voice.name}; "
        f"peers: {', '.join(f'{n} {v}' for n, v in PEER_PACKAGES.items())}\n"
    )
    print(markdown(rows(ours, other)))
    audio = (
        median([s.audio_seconds for s in ours.tts_one]),
        median([s.audio_seconds for s in other.tts_one]),
    )
    print(f"\naudio per sentence, median: voicepipe {audio[0]:.2f} s, peer {audio[1]:.2f} s")


if __name__ == "__main__":
    main()
