"""Use case: every long-lived connection, whatever its protocol (the WebSocket APIs, Wyoming's
TCP), lives one life here. A protocol only translates: its `Dialect` decodes a frame to a
command, handles it, and renders events and errors as frames.

Rules:
- Admission: the credential names a principal; one cap counts every protocol's connections
  on this instance, then the key's own cap (shared across instances); the key's slot is kept
  alive while the connection lives and expires if the instance dies.
- Every frame is counted before it is parsed (a bound on frames a second); every command that
  is not audio is one request for the key and is paced per connection (audio is paced in
  seconds by its listening session). Frames over the protocol's size bound are refused by the
  channel before they are read.
- A bad command gets the protocol's error frame and the connection goes on; a command whose
  handler raises `Closed` ends it with its last words.
- A connection that sends nothing for `idle_seconds` while nothing goes out is closed, with an
  `idle_timeout` error first. A client that reads nothing for `send_seconds` is dropped.
- At shutdown every connection says its last words (`Dialect.drain`) within the drain time,
  then closes with 1001; new connections are refused while the server drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from application.access import ANONYMOUS, CONNECTION_TTL, Access, Credential, Principal, RateLimited
from application.ports import Channel, Clock
from domain.errors import VoicePipeError
from domain.token_bucket import TokenBucket

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - frames in
Received = TypeVar("Received", contravariant=True)
F = TypeVar("F")  # frames out
C = TypeVar("C")  # commands


class ConnectionLimits(msgspec.Struct, frozen=True):
    max_connections: int = 1000  # every protocol's together, on this instance
    idle_seconds: float = 300.0
    send_seconds: float = 10.0
    messages_per_second: float = 50.0  # commands that are not audio
    message_burst: float = 200.0
    frames_per_second: float = 250.0  # every frame, audio too (10 ms audio is 100 a second)
    frame_burst: float = 1000.0


class TooManyConnections(VoicePipeError):
    code = "too_many_connections"
    status = 503
    retry_after = 5


class ShuttingDown(VoicePipeError):
    code = "shutting_down"
    status = 503
    retry_after = 1


class IdleTimeout(VoicePipeError):
    code = "idle_timeout"


class InternalError(VoicePipeError):
    code = "internal_error"
    status = 500


class Closed(Exception):
    """Raised by a handler to end its connection: `error` (if any) is said first."""

    def __init__(self, code: int = 1000, error: VoicePipeError | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


class Dialect(Protocol[Received, F, C]):
    """One protocol on one connection: how its frames read and write, and what it does."""

    name: str  # for logs: v1, realtime, deepgram, wyoming
    secrets: bool  # a Realtime client secret may open it

    @property
    def busy(self) -> bool:
        """Output is in flight: the client is listening, not idle."""
        ...

    def decode(self, frame: Received) -> C:
        """A frame as a typed command; raises VoicePipeError (a coded error) when it is not."""
        ...

    def render_error(self, error: VoicePipeError, command: C | None) -> F: ...

    def paced(self, command: C) -> bool:
        """Audio its listening session paces in seconds: not counted as a message."""
        ...

    async def open(self, connection: Connection[F]) -> None:
        """Admitted: say hello; a VoicePipeError refuses the connection (close 1008)."""
        ...

    async def handle(self, command: C) -> None: ...

    async def drain(self, seconds: float) -> None:
        """The server is shutting down: finish what is in flight (within `seconds`) and say
        the protocol's last words."""
        ...

    async def close(self) -> None:
        """The connection is over: stop its work (queued model work is dropped)."""
        ...


class Connection(Generic[F]):
    """An admitted connection: its principal, and one way out (serialized, time-bounded)."""

    def __init__(
        self,
        connection_id: str,
        principal: Principal,
        channel: Channel[Any, F],
        dialect: Dialect[Any, F, Any],
        limits: ConnectionLimits,
        clock: Clock,
    ) -> None:
        self.id = connection_id
        self.principal = principal
        self.channel = channel
        self.dialect = dialect
        self.limits = limits
        self.closing = False  # the server is draining: no new work
        self._lock = asyncio.Lock()
        now = clock.monotonic()
        self._frames = TokenBucket(limits.frames_per_second, limits.frame_burst, now)
        self._messages = TokenBucket(limits.messages_per_second, limits.message_burst, now)
        self._clock = clock

    async def send(self, frame: F) -> None:
        """Raises TimeoutError when the client reads nothing for `send_seconds`."""
        async with self._lock:
            async with asyncio.timeout(self.limits.send_seconds):
                await self.channel.send(frame)

    def count_frame(self) -> None:
        if not self._frames.take(1, self._clock.monotonic()):
            per_second = self.limits.frames_per_second
            raise RateLimited(f"too many frames; at most {per_second:g} a second")

    def count_message(self) -> None:
        if not self._messages.take(1, self._clock.monotonic()):
            per_second = self.limits.messages_per_second
            raise RateLimited(f"too many messages; at most {per_second:g} a second")


class Connections:
    """Every open connection of this instance, whatever its protocol."""

    def __init__(self, access: Access, clock: Clock, limits: ConnectionLimits) -> None:
        self.access = access
        self.clock = clock
        self.limits = limits
        self.live: set[Connection[Any]] = set()
        self.closing = False

    def __len__(self) -> int:
        return len(self.live)

    async def serve(
        self,
        channel: Channel[I, F],
        dialect: Dialect[I, F, C],
        credential: Credential | None,
        *,
        connection_id: str | None = None,
        refusal: VoicePipeError | None = None,
    ) -> None:
        """Admit, converse until either side ends, then clean up. `credential` None: the
        protocol has no authentication (its clients are the anonymous principal); `refusal`:
        what the transport already refused (a foreign Origin)."""
        connection_id = connection_id or uuid.uuid4().hex[:12]
        connection = await self._admit(channel, dialect, credential, connection_id, refusal)
        if connection is None:
            return
        keepalive = asyncio.get_running_loop().create_task(self._hold(connection))
        try:
            await dialect.open(connection)
            await self._converse(connection, dialect)
        except Closed as closed:
            await self._end(connection, dialect, closed)
        except VoicePipeError as error:  # refused by the protocol's own settings
            await self._end(connection, dialect, Closed(1008, error))
        except (ConnectionError, TimeoutError):
            pass  # the client left, or reads nothing
        finally:
            self.live.discard(connection)
            keepalive.cancel()
            try:
                await dialect.close()
            finally:
                await self.access.disconnect(connection.principal, connection.id)

    async def drain(self, seconds: float) -> None:
        """Refuse new connections; let each open one finish and say its last words."""
        self.closing = True
        await asyncio.gather(*(self._drain(c, seconds) for c in list(self.live)))

    async def _admit(
        self,
        channel: Channel[I, F],
        dialect: Dialect[I, F, C],
        credential: Credential | None,
        connection_id: str,
        refusal: VoicePipeError | None,
    ) -> Connection[F] | None:
        try:
            if refusal is not None:
                raise refusal
            if self.closing:
                raise ShuttingDown("the server is shutting down; reconnect shortly")
            principal = (
                ANONYMOUS
                if credential is None
                else await self.access.identify(credential, realtime=dialect.secrets)
            )
            if len(self.live) >= self.limits.max_connections:
                raise TooManyConnections("the server has too many open connections; retry shortly")
            connection = Connection(
                connection_id, principal, channel, dialect, self.limits, self.clock
            )
            self.live.add(connection)  # taken before the next await: no check-then-add race
            try:
                await self.access.connect(principal, connection_id)
            except BaseException:
                self.live.discard(connection)
                raise
        except VoicePipeError as error:
            log.info("connection refused: %s (%s)", error.code, dialect.name)
            with contextlib.suppress(Exception):
                await channel.send(dialect.render_error(error, None))
            await channel.close(1008, _reason(error))
            return None
        return connection

    async def _converse(self, connection: Connection[F], dialect: Dialect[I, F, C]) -> None:
        receiving: asyncio.Task[I | None] | None = None
        try:
            while True:
                # One read at a time, never cancelled by the idle wait: a cancelled read could
                # lose part of a frame.
                receiving = receiving or asyncio.get_running_loop().create_task(
                    connection.channel.receive()
                )
                done, _ = await asyncio.wait({receiving}, timeout=self.limits.idle_seconds)
                if not done:
                    if dialect.busy:
                        continue
                    idle = self.limits.idle_seconds
                    raise Closed(1000, IdleTimeout(f"nothing received for {idle:g} s; closing"))
                frame = receiving.result()  # a VoicePipeError here: the stream is out of step
                receiving = None
                if frame is None:
                    return
                await self._take(connection, dialect, frame)
        except VoicePipeError as error:
            raise Closed(1008, error) from None
        finally:
            if receiving is not None:
                receiving.cancel()

    async def _take(self, connection: Connection[F], dialect: Dialect[I, F, C], frame: I) -> None:
        command: C | None = None
        try:
            connection.count_frame()
            try:
                command = dialect.decode(frame)
            except VoicePipeError:
                connection.count_message()  # a frame that is no command is a message
                raise
            if not dialect.paced(command):
                connection.count_message()
                await self.access.admit_request(connection.principal)
            await dialect.handle(command)
        except (Closed, ConnectionError, TimeoutError):
            raise
        except VoicePipeError as error:
            await connection.send(dialect.render_error(error, command))
        except Exception:
            log.exception("unhandled error in a %s command", dialect.name)
            internal = InternalError("internal error; the connection goes on")
            await connection.send(dialect.render_error(internal, command))

    async def _end(
        self, connection: Connection[F], dialect: Dialect[Any, F, Any], closed: Closed
    ) -> None:
        if closed.error is not None:
            with contextlib.suppress(Exception):
                await connection.send(dialect.render_error(closed.error, None))
        reason = _reason(closed.error) if closed.error is not None else ""
        await connection.channel.close(closed.code, reason)

    async def _drain(self, connection: Connection[Any], seconds: float) -> None:
        connection.closing = True
        try:
            async with asyncio.timeout(seconds):
                await connection.dialect.drain(seconds)
        except (TimeoutError, ConnectionError, VoicePipeError):
            pass
        except Exception:
            log.exception("draining a %s connection failed", connection.dialect.name)
        finally:
            await connection.channel.close(1001, "server shutting down")

    async def _hold(self, connection: Connection[Any]) -> None:
        """Refresh the key's slot for this connection (slots of a crashed server expire)."""
        while True:
            await asyncio.sleep(CONNECTION_TTL / 2)
            with contextlib.suppress(VoicePipeError):
                await self.access.connect(connection.principal, connection.id)


def _reason(error: VoicePipeError) -> str:
    """A close reason: the error's code, and the field at fault when it names one."""
    param = getattr(error, "param", None)
    return f"{error.code}: {param}" if isinstance(param, str) else error.code
