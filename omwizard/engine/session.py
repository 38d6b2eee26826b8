"""One session: the single place a face (CLI, TUI, rehearse, benchmarks) gets its engine from.

A session owns what every run on one plan shares and must build the same way: the redactor
(the plan's secrets, and a sudo password once it is typed), the session state (locked against a
second wizard on the cluster), the event bus, the SSH pool and the contract's JSON document.
Closing it closes the pool (bounded, so a hung node cannot keep the program from exiting) and
unlocks the state.

The pool is created on first use and only then is asyncssh imported: the TUI's first screen
(and `omwizard validate`) must load without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omwizard.engine.events import EventBus
from omwizard.engine.redact import plan_secrets, redactor_for
from omwizard.engine.runner import Engine, summarize
from omwizard.engine.state import StateLocked, StateStore, default_state_dir
from omwizard.engine.step import Result
from omwizard.plan.model import Node, Plan

if TYPE_CHECKING:
    from omwizard.remote.ssh import AskPassword, ConfirmHostKey, RemotePool


CLOSE_TIMEOUT = 5.0  # seconds to close every SSH connection on the way out

PoolFactory = Callable[..., "RemotePool"]


def open_state(plan: Plan, state_dir: Path | str | None = None, *, lock: bool = True) -> StateStore:
    """The plan's session state (default `$XDG_STATE_HOME/omwizard/<cluster>`), locked.

    Raises StateLocked naming the plan's cluster (not the state folder, which --state may name
    otherwise) and the holder's pid and host.
    """
    directory = (
        Path(state_dir).expanduser() if state_dir else default_state_dir(plan.cluster.name)
    )
    store = StateStore(directory)
    if lock:
        try:
            store.lock()
        except StateLocked as exc:
            path = exc.path or directory
            raise StateLocked(plan.cluster.name, exc.pid, exc.host, path) from None
    return store


def document(command: str, cluster: str, results: Iterable[Result]) -> dict[str, Any]:
    """The contract's JSON document (`--json`): command, cluster, results and their summary."""
    results = list(results)
    return {
        "omwizard": 1,
        "command": command,
        "cluster": cluster,
        "results": [r.as_json() for r in results],
        "summary": summarize(results),
    }


class Session:
    """Plan, redactor, state, event bus and (lazily) SSH pool of one run; see the module doc.

    state is used as given (Session.open locks it; None runs without one); close() unlocks it.
    confirm_host_key(node, host, port, fingerprint) and ask_password(node, prompt) may be sync
    or async; a password the operator gives is added to the redactor before the pool uses it.
    pool_factory (tests, benchmarks) builds the pool instead of RemotePool, with the same
    keyword arguments.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        state: StateStore | None = None,
        confirm_host_key: ConfirmHostKey | None = None,
        ask_password: AskPassword | None = None,
        bus: EventBus | None = None,
        pool_factory: PoolFactory | None = None,
    ) -> None:
        self.plan = plan
        self.state = state
        self.bus = bus if bus is not None else EventBus()
        self.redact = redactor_for(plan)
        self._confirm_host_key = confirm_host_key
        self._ask_password = ask_password
        self._pool_factory = pool_factory
        self._pool: RemotePool | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def open(
        cls, plan: Plan, state_dir: Path | str | None = None, *, lock: bool = True, **hooks: Any
    ) -> Session:
        """A session on the plan's state (default folder unless state_dir); raises StateLocked."""
        return cls(plan, state=open_state(plan, state_dir, lock=lock), **hooks)

    # -- the pool -------------------------------------------------------------------------------

    @property
    def pool(self) -> RemotePool:
        """The SSH pool, created (and asyncssh imported) on first use."""
        if self._pool is None:
            factory = self._pool_factory
            if factory is None:
                from omwizard.remote.ssh import RemotePool

                factory = RemotePool
            asker = self._asker if self._ask_password is not None else None
            self._pool = factory(confirm_host_key=self._confirm_host_key, ask_password=asker)
        return self._pool

    async def _asker(self, node: Node, prompt: str) -> str | None:
        """The face's ask_password, with the answer made known to the redactor first."""
        assert self._ask_password is not None
        value = self._ask_password(node, prompt)
        if isinstance(value, Awaitable):
            value = await value
        self.redact.add(value)
        return value

    def reset_pool(self) -> None:
        """Drop the pool (the nodes changed); its connections close in the background."""
        old, self._pool = self._pool, None
        if old is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the pool's connections went with the loop that made them
            return
        task = loop.create_task(_close_pool(old))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def set_plan(self, plan: Plan) -> None:
        """Work on an edited plan: learn its secrets; a new pool when the nodes changed."""
        nodes_changed = plan.nodes != self.plan.nodes
        self.plan = plan
        for secret in plan_secrets(plan):
            self.redact.add(secret)
        if nodes_changed:
            self.reset_pool()

    # -- running --------------------------------------------------------------------------------

    def engine(
        self,
        sections: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
        steps: Iterable[str] | None = None,
    ) -> Engine:
        """An engine over the selected sections, nodes and steps (None = all) of the plan."""
        return Engine(
            self.plan,
            pool=self.pool,
            state=self.state,
            bus=self.bus,
            sections=sections,
            nodes=nodes,
            dry_run=dry_run,
            force=force,
            redact=self.redact,
            steps=steps,
        )

    def document(self, command: str, results: Iterable[Result]) -> dict[str, Any]:
        """The contract's JSON document for this plan's cluster."""
        return document(command, self.plan.cluster.name, results)

    # -- closing --------------------------------------------------------------------------------

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close the pool (within timeout) and unlock the state; safe to call more than once."""
        pool, self._pool = self._pool, None
        try:
            pending = [*self._closing, *([_close_pool(pool, timeout)] if pool else [])]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            if self.state is not None:
                self.state.unlock()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _close_pool(pool: RemotePool, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close a pool's connections, giving up after timeout (a node that does not answer)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(pool.close(), timeout)
