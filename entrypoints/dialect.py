"""What every protocol's dialect shares: its container, its connection once admitted, and
handlers registered per command type (`@HANDLERS.on(SomeCommand)` on a method)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar

from application.connections import Connection
from entrypoints.bootstrap import Container

Out = TypeVar("Out")
Handler = Callable[[Any, Any], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Awaitable[None]])


class Handlers:
    def __init__(self) -> None:
        self._by_type: dict[type, Handler] = {}

    def on(self, *types: type) -> Callable[[H], H]:
        def register(handler: H) -> H:
            for kind in types:
                self._by_type[kind] = handler
            return handler

        return register

    async def dispatch(self, owner: object, command: object) -> None:
        await self._by_type[type(command)](owner, command)


class BaseDialect(Generic[Out]):
    """Defaults for the connection core's Dialect: nothing paced, never busy, nothing to
    drain or close; commands go to the class's HANDLERS."""

    name = ""
    secrets = False
    HANDLERS: ClassVar[Handlers]

    def __init__(self, container: Container) -> None:
        self.container = container
        self.connection: Connection[Out] | None = None

    @property
    def busy(self) -> bool:
        return False

    def paced(self, command: object) -> bool:
        return False

    async def open(self, connection: Connection[Out]) -> None:
        self.connection = connection

    async def handle(self, command: object) -> None:
        await self.HANDLERS.dispatch(self, command)

    async def send(self, frame: Out) -> None:
        assert self.connection is not None
        await self.connection.send(frame)

    async def drain(self, seconds: float) -> None:
        return None

    async def close(self) -> None:
        return None
