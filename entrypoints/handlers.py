"""Handlers registered per command type, as a protocol's dialect dispatches them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Owner = TypeVar("Owner")
Handler = Callable[[Any, Any], Awaitable[None]]


class Handlers(Generic[Owner]):
    """`@HANDLERS.on(SomeCommand)` on a dialect's method; `dispatch` calls the one for a
    command's type."""

    def __init__(self) -> None:
        self._by_type: dict[type, Handler] = {}

    def on(self, *types: type) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for kind in types:
                self._by_type[kind] = handler
            return handler

        return register

    async def dispatch(self, owner: Owner, command: object) -> None:
        await self._by_type[type(command)](owner, command)
