"""Wyoming's framing over TCP: a JSON header line, an optional JSON data block, an optional
payload. Every read is bounded before it is made (the library's own reader trusts the
lengths a client announces)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import msgspec
from wyoming.event import Event, async_write_event

from domain.errors import InvalidRequest

MAX_HEADER_BYTES = 64 * 1024  # one JSON line (the reader's limit)
MAX_DATA_BYTES = 64 * 1024  # the optional JSON data block
LINGER_SECONDS, LINGER_BYTES = 1.0, 1024 * 1024  # read and dropped after a fatal error


class Frame(msgspec.Struct, frozen=True):
    """One event as read: `problem` says why its data cannot be used (the frame was read
    whole, so the stream is still in step)."""

    type: str
    data: dict[str, Any]
    payload: bytes | None = None
    problem: str | None = None


class WyomingChannel:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_payload: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.max_payload = max_payload

    async def receive(self) -> Frame | None:
        """None at the end of the stream; InvalidRequest when the stream is out of step (a
        header that is too long, not JSON, or announces too much)."""
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as error:
            raise InvalidRequest("an event header line is over 64 KiB") from error
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                return None
            raise InvalidRequest("the stream ended inside an event header") from error
        except ConnectionError:
            return None
        header = _json(line)
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise InvalidRequest("an event header is a JSON object with a string `type`")
        data_length = _length(header.get("data_length"), MAX_DATA_BYTES, "data")
        payload_length = _length(header.get("payload_length"), self.max_payload, "payload")
        try:
            block = await self.reader.readexactly(data_length) if data_length else b""
            payload = await self.reader.readexactly(payload_length) if payload_length else None
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        data, problem = header.get("data") or {}, None
        if block:
            try:
                extra = _json(block)
            except InvalidRequest as error:
                extra, problem = {}, error.message.replace("header", "data block")
            data = {**data, **extra} if isinstance(extra, dict) and isinstance(data, dict) else None
        if not isinstance(data, dict):
            data, problem = {}, problem or "event data is a JSON object"
        return Frame(header["type"], data, payload, problem)

    async def send(self, event: Event) -> None:
        try:
            await async_write_event(event, self.writer)
        except (ConnectionError, RuntimeError, OSError) as gone:
            raise ConnectionError("the client has left") from gone

    async def close(self, code: int, reason: str) -> None:
        """After an error that ends the stream, half-close and drop what the peer still sends
        (bounded): closing on unread input makes the kernel reset the connection, and the
        peer would lose the error."""
        with contextlib.suppress(Exception):
            if code != 1000 and self.writer.can_write_eof():
                self.writer.write_eof()
                async with asyncio.timeout(LINGER_SECONDS):
                    dropped = 0
                    while dropped < LINGER_BYTES and (chunk := await self.reader.read(65_536)):
                        dropped += len(chunk)
        with contextlib.suppress(Exception):
            self.writer.close()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # also invalid UTF-8
        raise InvalidRequest("an event header is not JSON (UTF-8, not nested too deeply)") from None


def _length(value: Any, limit: int, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{what}_length must be a non-negative integer")
    if value > limit:
        raise InvalidRequest(f"an event's {what} is limited to {limit} bytes")
    return value
