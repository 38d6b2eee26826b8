"""Steps that run at once in an apply (issue 21) share each node's cached reads: a change
forgets only the reads it can alter (StepContext._alters, from the steps' declared reads and
writes), and a node's guard keeps reads that fill the caches apart from its changes
(engine/node_guard.py). Both tested on data, without a node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from omwizard.engine.events import EventBus
from omwizard.engine.node_guard import NodeGuard
from omwizard.engine.schedule import Resource
from omwizard.engine.step import READ_BY, RunResult, Step, StepContext, _Known, read_by
from omwizard.facts.base import Fact
from tests.unit.engine.test_step_data import make_plan

R = Resource


class Changer(Step):
    section = "preflight"
    reads = frozenset({R.FIREWALL})
    writes = frozenset({R.FIREWALL})

    async def apply(self, ctx: StepContext, node: Any, finding: Any) -> None:
        raise AssertionError("not called")


class Everything(Changer):
    reads = None
    writes = None


def known(value: str, stable: bool = False) -> _Known:
    return _Known(value, RunResult("true", 0, value, ""), stable)


def context(tmp_path: Path, step: Step) -> tuple[StepContext, Any]:
    plan = make_plan(tmp_path / "om")
    ctx = StepContext(plan, pool=None, state=None, bus=EventBus())  # type: ignore[arg-type]
    ctx.shared[READ_BY] = {("fact", "rules"): frozenset({R.FIREWALL}),
                           ("fact", "zone"): frozenset({R.TIMEZONE}),
                           ("fact", "both"): frozenset({R.TIMEZONE, R.FIREWALL}),
                           ("file", "/etc/timezone"): frozenset({R.TIMEZONE}),
                           ("file", "/etc/nft.conf"): frozenset({R.FIREWALL})}
    node = plan.nodes[0]
    bound = ctx.bind(step)
    facts = bound._fact_cache(node)
    facts.update(rules=known("r"), zone=known("z"), both=known("b"), other=known("o"),
                 fixed=known("f", stable=True))
    bound._file_cache(node).update({"/etc/timezone": "UTC\n", "/etc/nft.conf": "x",
                                    "/etc/hosts": "h"})
    return bound, node


def test_a_change_forgets_only_what_its_writes_can_alter(tmp_path: Path) -> None:
    ctx, node = context(tmp_path, Changer("fw"))
    ctx.forget_files(node)
    # kept: the time zone's reads; forgotten: the firewall's, a read of both, a read no
    # step declares (its meaning unknown); a stable fact always stays
    assert set(ctx._fact_cache(node)) == {"zone", "fixed"}
    assert set(ctx._file_cache(node)) == {"/etc/timezone"}


def test_a_step_without_declared_writes_forgets_everything_it_can(tmp_path: Path) -> None:
    ctx, node = context(tmp_path, Everything("all"))
    ctx.forget_files(node)
    assert set(ctx._fact_cache(node)) == {"fixed"}
    assert ctx._file_cache(node) == {}


def test_a_batch_reads_back_only_what_its_change_made_stale(tmp_path: Path) -> None:
    ctx, node = context(tmp_path, Changer("fw"))
    facts = [Fact(name, lambda plan, node: "true", lambda out: out)
             for name in ("rules", "zone", "both", "other")]
    refresh = ctx.stale_after_change(node, facts, ["/etc/timezone", "/etc/nft.conf"],
                                     as_login=False)
    assert refresh is not None
    assert [f.name for f in refresh.facts] == ["rules", "both", "other"]
    assert refresh.paths == ("/etc/nft.conf",)


def test_read_by_unites_what_the_declaring_steps_read(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "om")
    rules = Fact("rules", lambda plan, node: "true", lambda out: out)

    class A(Step):
        reads = frozenset({R.FIREWALL})
        facts = (rules,)

    class B(Step):
        reads = frozenset({R.LINKS})
        facts = (rules,)

    class C(Step):
        facts = (rules,)

    assert read_by([A(), B()], plan) == {("fact", "rules"): frozenset({R.FIREWALL, R.LINKS})}
    assert read_by([A(), C()], plan)[("fact", "rules")] == frozenset(Resource)


# -- the guard ----------------------------------------------------------------------------------

async def _steps(guard: NodeGuard, log: list[str]) -> None:
    async def read(name: str, secs: float) -> None:
        async with guard.reading():
            log.append(f"{name} reads")
            await asyncio.sleep(secs)
            log.append(f"{name} read")

    async def change(name: str, secs: float) -> None:
        async with guard.changing():
            log.append(f"{name} changes")
            async with guard.reading():  # its own reads: no wait for itself
                await asyncio.sleep(secs)
            async with guard.changing():
                pass
            log.append(f"{name} changed")

    first = asyncio.ensure_future(read("r1", 0.05))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(change("c1", 0.05))  # waits for r1
    await asyncio.sleep(0.01)
    third = asyncio.ensure_future(read("r2", 0.01))  # beside r1: a read waits for no read
    await asyncio.sleep(0.06)  # r1 over, c1 changing
    fourth = asyncio.ensure_future(read("r3", 0.01))  # waits for c1
    await asyncio.gather(first, second, third, fourth)


def test_reads_share_a_node_and_a_change_has_it_alone() -> None:
    log: list[str] = []
    asyncio.run(_steps(NodeGuard("n1"), log))
    assert log == ["r1 reads", "r2 reads", "r2 read", "r1 read", "c1 changes", "c1 changed",
                   "r3 reads", "r3 read"]


def test_a_task_cancelled_while_it_waits_or_holds_leaves_the_guard_usable() -> None:
    async def go() -> list[str]:
        guard = NodeGuard("n1")
        log: list[str] = []

        async def hold() -> None:
            async with guard.changing():
                await asyncio.sleep(10)

        holder = asyncio.ensure_future(hold())
        await asyncio.sleep(0.01)

        async def wait_read() -> None:
            async with guard.reading():
                log.append("never")

        waiter = asyncio.ensure_future(wait_read())
        await asyncio.sleep(0.01)
        waiter.cancel()
        holder.cancel()
        await asyncio.gather(holder, waiter, return_exceptions=True)
        async with asyncio.timeout(1):
            async with guard.changing():
                log.append("changed")
            async with guard.reading():
                log.append("read")
        return log

    assert asyncio.run(go()) == ["changed", "read"]
