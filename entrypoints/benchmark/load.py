"""A keep-alive HTTP/1.1 load: many connections, each sending one request as soon as the
last is answered. Plain asyncio streams, so the client takes little of the CPU it measures."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    """What `connections` clients got in `seconds`: one latency per answered request."""

    connections: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)  # status (0: connection) -> count
    response_bytes: int = 0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds


async def keep_alive_load(
    url: str, path: str, body: bytes, headers: dict[str, str], connections: int, seconds: float
) -> LoadResult:
    """POST `body` (JSON) to `path` over `connections` keep-alive connections for `seconds`."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    result = LoadResult(connections, seconds)
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(_client(host, port, tls, request, deadline, result) for _ in range(connections))
    )
    return result


async def _client(
    host: str, port: int, tls: ssl.SSLContext | None, request: bytes, deadline: float,
    result: LoadResult,
) -> None:  # fmt: skip
    writer = None
    try:
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            started = time.perf_counter()
            writer.write(request)
            status, size, keep = await _response(reader)
            if status == 200:
                result.latencies_ms.append(1000 * (time.perf_counter() - started))
                result.response_bytes = size
            else:
                result.failures[status] = result.failures.get(status, 0) + 1
            if not keep:
                writer.close()
                writer = None
    except (OSError, asyncio.IncompleteReadError):
        result.failures[0] = result.failures.get(0, 0) + 1
    finally:
        if writer is not None:
            writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """(status, body bytes, connection kept) of one response, its body read and dropped."""
    status = int((await reader.readuntil(b"\r\n")).split()[1])
    length, chunked, keep = 0, False, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep = False
    if not chunked:
        await reader.readexactly(length)
        return status, length, keep
    size = 0
    while chunk := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        await reader.readexactly(chunk + 2)
        size += chunk
    await reader.readuntil(b"\r\n")  # no trailers
    return status, size, keep
