"""An apply runs each step as soon as the steps before it allow (issue 21, engine/schedule.py),
and reports in step order. Steps that declare nothing run as windows of proofs closed by one
change, checked at once.

The waits are a pure function, tested on data and on the real catalogue. The engine's
scheduling is tested with this machine's shell as the nodes (tests/unit/engine/
test_apply_batch.py's ShellPool: the change really runs, through its batch): the window's
checks overlap, the change starts after all of them and the next window after its re-check,
and what is reported (results, their order, the events of each step, the resume point,
an unreachable node said once) is what one step after another (apply_step) reports.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omwizard.engine.catalog import SECTIONS, steps_for
from omwizard.engine.events import ChangeMade, Event, StepFinished, StepStarted
from omwizard.engine.runner import Engine
from omwizard.engine.schedule import Resource, waits
from omwizard.engine.state import StateStore
from omwizard.engine.step import CHECKING, Finding, Result, Step, StepContext
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError
from tests.lab.test_apply_windows import one_after_another
from tests.unit.engine.test_apply_batch import ShellPool, ShellRemote, local_dirs
from tests.unit.engine.test_step_data import make_plan
from tests.unit.engine.timed import LOG, Timed, when

__all__ = ["local_dirs"]  # its autouse fixture: backups and progress files under tmp_path


# -- the waits, on data ---------------------------------------------------------------------------

NONE = frozenset[Resource]()


def plan_of(*steps: tuple[str, frozenset[Resource] | None, frozenset[Resource] | None]
            ) -> list[tuple[set[str], set[str]]]:
    """Steps as (name, reads, writes), upper-case name = has an apply: for each, the names
    its check and its change wait for."""
    got = waits(steps, reads=lambda s: s[1], writes=lambda s: s[2],
                changes=lambda s: s[0][0].isupper())
    return [({steps[j][0] for j in w.check}, {steps[j][0] for j in w.change}) for w in got]


def test_undeclared_steps_wait_as_windows_did() -> None:
    """Nothing declared: a proof waits for every change before it, a change for every step
    before it: the windows of proofs closed by one change (abC | dE)."""
    steps = [(n, None, None) for n in "abCdE"]
    assert plan_of(*steps) == [
        (set(), set()), (set(), set()), (set(), {"a", "b"}),
        ({"C"}, {"C"}), ({"C"}, {"a", "b", "C", "d"})]


def test_declared_steps_wait_only_for_what_they_share() -> None:
    T, F, R_, D = (frozenset({r}) for r in (Resource.TIMEZONE, Resource.FIREWALL,
                                            Resource.ROUTE, Resource.DB_SERVER))
    steps = [("Tz", T, T), ("ports", F, None), ("Fw", F, F), ("Route", R_, R_),
             ("ping", F | R_, None), ("User", D, D), ("login", D | F, None)]
    got = dict(zip([s[0] for s in steps], plan_of(*steps), strict=True))
    assert got["ports"] == (set(), set())  # the probe does not wait for the time zone
    assert got["Fw"] == (set(), {"ports"})  # no change under a probe that reads it
    assert got["Route"] == (set(), set())  # the route and the firewall at once
    assert got["ping"] == ({"Fw", "Route"}, {"Fw", "Route"})
    assert got["User"] == (set(), set())  # the database beside the network
    assert got["login"] == ({"Fw", "User"}, {"Fw", "User"})
    # a proof's declared writes count for nothing: it changes nothing
    assert plan_of(("a", T, T), ("B", T, T)) == [(set(), set()), (set(), {"a"})]
    assert plan_of(("a", NONE, None), ("B", T, T)) == [(set(), set()), (set(), set())]


def test_the_pages_waits() -> None:
    """On the real catalogue: every step of the page declares what it reads, except verify's
    (they read everything: they wait for every change), and every change what it changes;
    the overlaps issue 21 counts on are there, and the orders the page needs are kept."""
    steps = [s for section in SECTIONS for s in steps_for(section)]
    ids = [s.id for s in steps]
    assert [s.id for s in steps if s.reads is None] == [i for i in ids if i.startswith("verify.")]
    assert [s.id for s in steps if s.has_apply and s.writes is None] == []
    # a step's re-check reads what its change made (its change forgets what it reads)
    assert [s.id for s in steps if s.has_apply and s.writes is not None and s.reads is not None
            and not s.writes <= s.reads] == []
    got = waits(steps, reads=lambda s: s.reads, writes=lambda s: s.writes,
                changes=lambda s: s.has_apply)
    at = {i: ({ids[j] for j in w.check}, {ids[j] for j in w.change})
          for i, w in zip(ids, got, strict=True)}
    assert at["preflight.ports"] == (set(), set())
    assert "preflight.ports" in at["network.firewall"][1]
    assert at["network.multicast-ping"][0] == {"network.firewall", "network.multicast-route"}
    assert at["network.route-persistent"][1] == set()  # beside the multicast proof
    assert at["database.remote-user"] == (set(), set())
    assert at["database.db-login"][0] >= {"database.remote-user", "network.firewall",
                                          "database.persistence-connection",
                                          "database.remote-commit-provider"}
    assert at["database.remote-commit-provider"][1] >= {"database.persistence-connection"}
    assert "database.openjpa-serialization" in at["storage.data-dir"][1]  # both JAVA_OPTS
    assert at["storage.shared"][0] >= {"storage.data-dir", "storage.nfs-server",
                                       "storage.nfs-client"}
    assert "storage.data-dir" not in at["nodes.hazelcast-xml"][1]
    restart = ids.index("verify.restart")
    changes = {s.id for s in steps[:restart] if s.has_apply}
    assert at["verify.restart"][0] == changes  # checked once every change before it is made
    assert at["verify.restart"][1] == changes | {  # and restarts once these are over
        "preflight.ports", "database.openjpa-serialization", "storage.data-dir"}
    assert "storage.shared" not in at["verify.restart"][1]  # a probe of something else
    for later in ids[ids.index("verify.restart") + 1:]:
        assert "verify.restart" in at[later][0]


# -- the engine, with this machine's shell as the nodes ------------------------------------------

class Flag(Step):
    """A change: needs-change until the node's flag file says `set`; its apply sets it."""

    section = "preflight"

    def __init__(self, name: str, root: Path) -> None:
        super().__init__(name, name)
        self.root = root

    def path(self, node: Node) -> str:
        return shlex.quote(str(self.root / f"{self.name}-{node.name}"))

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        LOG.append((self.name, "check", time.monotonic()))
        seen = (await ctx.run(node, f"cat {self.path(node)} 2>/dev/null || echo none")).stdout
        LOG.append((self.name, "checked", time.monotonic()))
        if seen.strip() == "set":
            return Finding.ok("set")
        return Finding.needs(f"{self.name} is {seen.strip()}", "set it")

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        LOG.append((self.name, "apply", time.monotonic()))
        await ctx.change_command(node, ["sh", "-c", f"echo set > {self.path(node)}"], None)


class DownRemote(ShellRemote):
    """A node whose connect fails, and stays failed (as Remote: no retry)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.connects = 0
        self.name = name
        self.failure: RemoteError | None = None

    async def connect(self) -> None:
        if self.failure is None:  # as Remote: a failed node stays failed, not tried again
            self.connects += 1
            self.failure = RemoteError(self.name, f"cannot connect to {self.name}",
                                       "fix the network")
        raise self.failure

    async def run(self, argv: list[str] | str, **_: Any) -> Any:
        await self.connect()

    async def sudo_mode(self) -> str:
        await self.connect()
        return "none"


class Pool(ShellPool):
    def __init__(self, down: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.down = down

    def get(self, node: Node) -> ShellRemote:
        if node.name in self.down:
            return self.remotes.setdefault(node.name, DownRemote(node.name))
        return super().get(node)

    def failure(self, node: Node) -> RemoteError | None:  # type: ignore[override]
        remote = self.remotes.get(node.name)
        return remote.failure if isinstance(remote, DownRemote) else None


def the_steps(root: Path) -> list[Step]:
    """Windows [a, b, Flag c] and [d, e]: b runs after a (declared)."""
    return [Timed("a", 0.2), Timed("b", 0.05, after=("preflight.a",)), Timed("x", 0.05),
            Flag("c", root), Timed("d", 0.1), Timed("e", 0.1)]


def run(tmp_path: Path, name: str, *, windowed: bool, down: tuple[str, ...] = (),
        dry_run: bool = False, make: Callable[[Path], list[Step]] = the_steps,
        ) -> tuple[list[Result], list[tuple[str, ...]], Pool]:
    """An apply of the_steps on a fresh flag folder: through Engine.apply (windowed) or
    as one step after another (apply_step, the way apply ran before). Also returns what
    was seen: every event and resume point, in order."""
    root = tmp_path / name
    root.mkdir()
    store = StateStore(root / "state")
    seen: list[tuple[str, ...]] = []
    touch = store.touch

    def touched(**meta: Any) -> None:
        seen.append(("touch", str(meta.get("step"))))
        touch(**meta)

    store.touch = touched  # type: ignore[method-assign]
    pool = Pool(down)
    engine = Engine(make_plan(root / "om"), pool=pool, state=store,  # type: ignore[arg-type]
                    dry_run=dry_run)
    steps = make(root)
    engine.steps = lambda section=None: list(steps)  # type: ignore[method-assign]

    def event(e: Event) -> None:
        if isinstance(e, StepStarted):
            seen.append(("started", e.step, e.node, e.phase))
        elif isinstance(e, ChangeMade):
            seen.append(("change", e.step, e.node))
        elif isinstance(e, StepFinished):
            r = e.result
            seen.append(("finished", r.step, r.node, r.status, r.detail))

    engine.bus.subscribe(event)

    LOG.clear()
    results = asyncio.run(engine.apply() if windowed else one_after_another(engine))
    return results, seen, pool


def said(results: list[Result]) -> list[tuple[str, str, str, str]]:
    return [(r.step, r.node, r.status, r.detail) for r in results]


def per_step(seen: list[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    """Each step's events, in the order they came (the steps' interleaving left out)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for item in seen:
        if item[0] != "touch":
            out.setdefault(item[1], []).append(item)
    return out


def reports(seen: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The resume points and the results, in the order they came."""
    return [s for s in seen if s[0] in ("touch", "finished")]


def test_a_window_is_checked_at_once_and_its_change_comes_after_every_check(
        tmp_path: Path) -> None:
    results, _, _ = run(tmp_path, "w", windowed=True)
    # a, x and c's check started together; b waited for a, as it declares
    assert when("x", "start") < when("a", "end")
    assert when("c", "check") < when("a", "end")
    assert when("b", "start") >= when("a", "end", last=True)
    # the change only after every check of its window, the next window after its re-check
    window_over = max(when(s, "end", last=True) for s in ("a", "b", "x"))
    assert when("c", "apply") >= max(window_over, when("c", "checked"))
    recheck_over = when("c", "checked", last=True)
    assert when("d", "start") >= recheck_over and when("e", "start") >= recheck_over
    assert when("e", "start") < when("d", "end")  # d and e at once
    assert {(r.step, r.status) for r in results if r.step == "c"} == {("c", "changed")}


def test_what_is_reported_is_what_one_step_after_another_reports(tmp_path: Path) -> None:
    before, seen_before, _ = run(tmp_path, "seq", windowed=False)
    now, seen_now, _ = run(tmp_path, "win", windowed=True)
    assert said(now) == said(before)
    assert [r.step for r in now] == [s for s in "abxcde" for _ in range(3)]
    assert reports(seen_now) == reports(seen_before)  # results and resume points in order
    assert per_step(seen_now) == per_step(seen_before)  # each step's events as before


def test_a_dry_run_reports_as_before(tmp_path: Path) -> None:
    before, seen_before, _ = run(tmp_path, "seq", windowed=False, dry_run=True)
    now, seen_now, _ = run(tmp_path, "win", windowed=True, dry_run=True)
    assert said(now) == said(before)
    assert {r.status for r in now if r.step == "c"} == {"would-change"}
    assert per_step(seen_now) == per_step(seen_before)


def test_an_unreachable_node_is_said_once_as_before(tmp_path: Path) -> None:
    before, _, _ = run(tmp_path, "seq", windowed=False, down=("om2",))
    now, _, pool = run(tmp_path, "win", windowed=True, down=("om2",))
    assert said(now) == said(before)
    om2 = [r for r in now if r.node == "om2"]
    assert [r.status for r in om2] == ["failed"] * 6
    assert om2[0].detail == "cannot connect to om2"  # the first step says it
    assert all("see preflight.a" in r.detail for r in om2[1:])  # the later ones refer to it
    assert [r.status for r in now if r.node != "om2" and r.step != "c"] == ["ok"] * 10
    assert pool.remotes["om2"].connects == 1  # type: ignore[attr-defined]


class Marked(Timed):
    """A proof that says whether it is checked in a check run (CHECKING up) or live."""

    def says(self, ctx: StepContext, node: Node) -> str:
        run = "a check run" if self.id in ctx.shared.get(CHECKING, {}) else "live"
        return f"{self.name} on {node.name}: {run}"


def test_only_a_check_puts_up_checking(tmp_path: Path) -> None:
    """An apply's window is checked at once as a check is, but reads live: verify.members
    takes a check run's declared reads only where CHECKING is up, and after a restart in an
    apply they would be stale. So a window never puts it up; a check does, and takes it down."""
    steps: list[Step] = [Marked("a", 0.01), Marked("b", 0.01), Flag("c", tmp_path)]
    engine = Engine(make_plan(tmp_path / "om"), pool=Pool(),  # type: ignore[arg-type]
                    state=StateStore(tmp_path / "state"))
    engine.steps = lambda section=None: list(steps)  # type: ignore[method-assign]

    applied = asyncio.run(engine.apply())
    checked = asyncio.run(engine.check())

    def proofs(results: list[Result]) -> set[str]:
        return {r.detail for r in results if r.step in ("a", "b")}

    nodes = {r.node for r in applied}
    assert nodes, applied
    assert proofs(applied) == {f"{s} on {n}: live" for s in "ab" for n in nodes}
    assert proofs(checked) == {f"{s} on {n}: a check run" for s in "ab" for n in nodes}
    assert CHECKING not in engine.shared  # taken down: a later apply of this engine reads live


# -- declared steps: each as soon as the steps before it allow ------------------------------------

class FirewallProof(Timed):
    reads = frozenset({Resource.FIREWALL})


class ZoneProof(Timed):
    reads = frozenset({Resource.TIMEZONE})


class ZoneFlag(Flag):
    reads = writes = frozenset({Resource.TIMEZONE})


class FirewallFlag(Flag):
    reads = writes = frozenset({Resource.FIREWALL})


def declared_steps(root: Path) -> list[Step]:
    """p proves the firewall (slowly); c changes the time zone, which p does not read; d
    changes the firewall, which p reads; q proves the time zone, which c changes."""
    return [FirewallProof("p", 0.4), ZoneFlag("c", root), FirewallFlag("d", root),
            ZoneProof("q", 0.05)]


def test_declared_steps_run_as_soon_as_the_steps_before_them_allow(tmp_path: Path) -> None:
    before, seen_before, _ = run(tmp_path, "seq", windowed=False, make=declared_steps)
    now, seen_now, _ = run(tmp_path, "dag", windowed=True, make=declared_steps)
    assert when("c", "apply") < when("p", "end")  # the time zone changed under p's proof
    assert when("d", "apply") >= when("p", "end", last=True)  # the firewall only after it
    assert when("q", "start") >= when("c", "checked", last=True)  # q sees c's change
    assert when("q", "start") < when("p", "end", last=True)  # and does not wait for p
    assert said(now) == said(before)  # reported as one step after another reports it
    assert {(r.step, r.status) for r in now if r.step in "cd"} == {("c", "changed"),
                                                                  ("d", "changed")}
    assert reports(seen_now) == reports(seen_before)
    assert per_step(seen_now) == per_step(seen_before)
