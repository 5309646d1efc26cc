"""The `voicepipe` command line."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time

import structlog

from entrypoints import cli_commands
from entrypoints.benchmark.command import add_arguments as bench_arguments
from entrypoints.cli_commands import FORMATS
from entrypoints.settings import Settings, SettingsError

log = structlog.get_logger("voicepipe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voicepipe", description="Realtime Voice Pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP and WebSocket service")
    serve.add_argument("--host", help="listen address (default: $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: $PORT or 8000)")
    say = commands.add_parser("say", help="speak a text into an audio file (or stdout)")
    say.add_argument("text")
    say.add_argument("-o", "--output", help="file to write; the format follows its extension")
    say.add_argument("--format", help="wav, mp3, opus, aac, flac or pcm")
    say.add_argument("--voice")
    transcribe = commands.add_parser("transcribe", help="transcribe audio files to stdout")
    transcribe.add_argument("files", nargs="+")
    transcribe.add_argument("--format", default="text", choices=FORMATS)
    transcribe.add_argument("--language")
    stats = commands.add_parser("stats", help="print the statistics")
    bench = commands.add_parser("bench", help="measure this machine: the figures to size it")
    bench_arguments(bench)
    for command in (say, transcribe, stats):
        command.add_argument("--url", help="use a running service instead of in-process models")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"voicepipe: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve_command(settings, host=args.host, port=args.port)
    from entrypoints.logging_setup import configure_logging

    # A command's output is its result (maybe audio on stdout): logs go to stderr, quietly.
    configure_logging(json_logs=False, level="error")
    if args.command == "say":
        return cli_commands.say(settings, args.text, args.output, args.format, args.voice, args.url)
    if args.command == "transcribe":
        return cli_commands.transcribe(settings, args.files, args.format, args.language, args.url)
    if args.command == "bench":
        from entrypoints.benchmark.command import run as bench_run

        return bench_run(args)
    return cli_commands.stats(settings, args.url)


def serve_command(settings: Settings, *, host: str | None, port: int | None) -> int:
    import msgspec

    from entrypoints.app import DrainingServer, create_app, server_config
    from entrypoints.bootstrap import bootstrap
    from entrypoints.logging_setup import configure_logging

    settings = msgspec.structs.replace(
        settings, host=host or settings.host, port=port or settings.port
    )
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    started = time.monotonic()
    if not settings.api_keys:
        log.warning("no API_KEYS configured: the service is open to anyone who can reach it")
    else:
        log.info("API keys required", keys=len(settings.api_keys))
    if settings.retain_content:
        log.warning("RETAIN_CONTENT is on: texts and transcripts are written to the log")
    try:
        container = bootstrap(settings)
    except SettingsError as error:
        log.error("cannot start", reason=str(error))
        return 2
    if settings.wyoming_uri:
        from entrypoints.wyoming.service import WyomingService

        WyomingService(container).attach()
    app = create_app(container)
    # Models and libraries are loaded for good: keep the cyclic GC from re-scanning them on
    # every full collection (a multi-millisecond pause of the event loop under load).
    gc.collect()
    gc.freeze()
    log.info(
        "ready",
        url=f"http://{settings.host}:{settings.port}",
        start_seconds=round(time.monotonic() - started, 2),
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal.
    with contextlib.suppress(KeyboardInterrupt):
        DrainingServer(server_config(app, settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
