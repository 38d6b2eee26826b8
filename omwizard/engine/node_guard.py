"""A node's cached reads and its changes kept apart while an apply runs steps at once.

The run caches what it read of each node (facts, files) and drops or refreshes it when a
change is made there. When steps run at once (engine/schedule.py), a read in flight while a
change is made could land in the cache after the change dropped it and be taken as the node
after the change. So reads that fill the cache share a node, and a change (a command, a
file write, a batch with its read back) has it alone: readers wait for the change, the change
for the readers in flight. A change's own reads (a batch replayed, an edit started again)
are part of it: the task that holds a node's change takes it again without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar

_CHANGING: ContextVar[frozenset[str]] = ContextVar("omw_changing", default=frozenset())


class NodeGuard:
    """Shared for reads that fill the run's caches, alone for a change (module docstring).
    Its state changes only between awaits (one event loop), and is given back without an
    await, so a task cancelled anywhere leaves it as it should be."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._readers = 0
        self._changing = False
        self._waiting: list[asyncio.Future[None]] = []

    def _mine(self) -> bool:
        return self.node in _CHANGING.get()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            await turn

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for turn in waiting:
            if not turn.done():
                turn.set_result(None)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        if self._mine():
            yield
            return
        await self._until(lambda: not self._changing)
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            self._wake()

    @contextlib.asynccontextmanager
    async def changing(self) -> AsyncIterator[None]:
        if self._mine():
            yield
            return
        await self._until(lambda: not self._changing and not self._readers)
        self._changing = True
        token = _CHANGING.set(_CHANGING.get() | {self.node})
        try:
            yield
        finally:
            _CHANGING.reset(token)
            self._changing = False
            self._wake()
