"""One connection's streams of speech out, by id: each opened by its whole text or by its
first piece, finished or cancelled by id, spoken one at a time (a protocol's audio frames
carry no stream id), each item handed to the protocol to render. Every protocol that streams
speech on a long-lived connection (v1 `/ws/voice`, Wyoming's synthesize-start) keeps its
streams here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from application.access import ANONYMOUS, Principal
from application.speaking import Speaking, SpeakingSession
from application.stream_speech import StreamItem
from domain.errors import InvalidRequest, VoicePipeError

MAX_OPEN = 16  # streams open on one connection: each holds text and a task until it ends
Say = Callable[[StreamItem], Awaitable[None]]
Fail = Callable[[str, VoicePipeError], Awaitable[None]]


class SpeechStreams:
    """`fail(stream_id, error)`: a stream's speech failed (the stream has ended)."""

    def __init__(self, speaking: Speaking, transport: str, fail: Fail) -> None:
        self.speaking = speaking
        self.transport = transport
        self.fail = fail
        self.principal: Principal = ANONYMOUS  # the connection's, once admitted
        self.open: dict[str, SpeakingSession] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._unclosed: set[SpeakingSession] = set()
        self._marks: set[asyncio.Task[None]] = set()  # what `then` will say
        self._one_at_a_time = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return bool(self.tasks or self.open or self._marks)

    async def start(
        self,
        stream_id: str,
        say: Say,
        *,
        pipeline_id: str,
        text: str | None = None,
        piece: str | None = None,
        voice: str | None = None,
        use_cache: bool = True,
        speed: float = 1.0,
    ) -> None:
        """A stream of `text` (checked and reserved now), or of pieces: `piece` the first,
        `write` the next ones. Nothing is charged for a stream refused."""
        self._check_free(stream_id)
        session = await self.speaking.open(
            self.principal,
            pipeline_id=pipeline_id,
            transport=self.transport,
            voice=voice,
            use_cache=use_cache,
            speed=speed,
            text=text,
        )
        await self._launch(stream_id, session, say, piece)

    async def write(
        self,
        stream_id: str,
        text: str,
        say: Say,
        *,
        pipeline_id: str,
        voice: str | None = None,
        use_cache: bool = True,
    ) -> None:
        """More text for `stream_id`, opened by its first piece."""
        session = self.open.get(stream_id)
        if session is None:
            await self.start(stream_id, say, pipeline_id=pipeline_id, piece=text, voice=voice,
                             use_cache=use_cache)  # fmt: skip
        else:
            await session.add_text(text)

    def finish(self, stream_id: str) -> None:
        self._session(stream_id).finish()

    def cancel(self, stream_id: str) -> None:
        self._session(stream_id).cancel()

    async def done(self, stream_id: str) -> None:
        """Wait until `stream_id` has said all it will."""
        task = self.tasks.get(stream_id)
        if task is not None:
            await asyncio.shield(task)

    def then(self, say: Callable[[], Awaitable[None]]) -> None:
        """`say` once every stream opened before it has said all it will, before any opened
        after it (a protocol's answer to a flush or a clear)."""
        task = asyncio.get_running_loop().create_task(self._mark(say))
        self._marks.add(task)
        task.add_done_callback(self._marks.discard)

    async def _mark(self, say: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._one_at_a_time:  # streams take it in the order they were opened
                await say()
        except (ConnectionError, TimeoutError):
            pass  # the client left

    async def drain(self, seconds: float) -> None:
        """Every stream finishes within `seconds`, else ends cancelled (still with its end)."""
        for session in self.open.values():
            session.finish()
        tasks = [*self.tasks.values(), *self._marks]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=max(0.0, seconds))
            if late:
                for session in self.open.values():
                    session.cancel()
                await asyncio.wait(late, timeout=1.0)

    async def close(self) -> None:
        """The client left: stop every stream, now."""
        tasks = [*self.tasks.values(), *self._marks]
        for session in self.open.values():
            session.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.open.clear()
        self.tasks.clear()
        for session in list(self._unclosed):  # a task cancelled before it ran
            await self._close(session)

    async def _launch(
        self, stream_id: str, session: SpeakingSession, say: Say, text: str | None = None
    ) -> None:
        try:
            if text is not None:
                await session.add_text(text)
            self._check_free(stream_id)  # another may have opened it meanwhile
        except BaseException:
            session.cancel()
            await session.close()
            raise
        self.open[stream_id] = session
        self._unclosed.add(session)
        task = asyncio.get_running_loop().create_task(self._run(stream_id, session, say))
        self.tasks[stream_id] = task

    async def _run(self, stream_id: str, session: SpeakingSession, say: Say) -> None:
        """Say every item (one stream at a time); a speech error goes to `fail`."""
        try:
            async with self._one_at_a_time:
                async for item in session.items():
                    await say(item)
        except VoicePipeError as error:
            await self.fail(stream_id, error)
        except (ConnectionError, TimeoutError):
            session.cancel()  # the client left: nothing more to say
        except asyncio.CancelledError:
            session.cancel()
            raise
        finally:
            if self.open.get(stream_id) is session:
                del self.open[stream_id]
                self.tasks.pop(stream_id, None)
            await self._close(session)

    async def _close(self, session: SpeakingSession) -> None:
        """Settles the characters to what was spoken, once."""
        if session in self._unclosed:
            self._unclosed.discard(session)
            await session.close()

    def _session(self, stream_id: str) -> SpeakingSession:
        session = self.open.get(stream_id)
        if session is None:
            raise InvalidRequest(f"no stream with id {stream_id!r} is open")
        return session

    def _check_free(self, stream_id: str) -> None:
        if stream_id in self.open:
            raise InvalidRequest(f"a stream with id {stream_id!r} is already open")
        if len(self.open) >= MAX_OPEN:
            raise InvalidRequest(
                f"at most {MAX_OPEN} speech streams may be open at once; flush or cancel one"
            )
