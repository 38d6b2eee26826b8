"""A check runs its steps at once (issue 21): the declared order between steps (`after`,
`ctx.checked`), results and StepFinished in step order, an unreachable node said once, reads in
flight shared instead of repeated, and one sudo probe per node however many ask at once.

The nodes are a fake pool (commands are recorded and answered here, each after a short sleep
so that runs overlap): what is proven is the engine's scheduling, not any remote command.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from omwizard.engine.events import StepFinished
from omwizard.engine.runner import Engine
from omwizard.engine.step import Fact, Finding, Step, StepContext
from omwizard.facts.base import Files
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError, RunResult
from omwizard.remote.ssh import SUDO_PROBE_EXIT, SUDO_PROBE_MARK, Remote, _Output
from tests.unit.engine import timed
from tests.unit.engine.test_step_data import make_plan
from tests.unit.engine.timed import LOG, when

DELAY = 0.02


class FakeRemote:
    def __init__(self, name: str, down: bool) -> None:
        self.name = name
        self.down = down
        self.commands: list[str] = []
        self.connects = 0
        self.failure: RemoteError | None = None

    async def connect(self) -> None:
        if self.failure is not None:  # as Remote: a failed node stays failed, not retried
            raise self.failure
        self.connects += 1
        if self.down:
            self.failure = RemoteError(self.name, f"cannot connect to {self.name}", "fix it")
            raise self.failure

    async def run(self, argv: list[str] | str, **_: Any) -> RunResult:
        await self.connect()
        command = argv if isinstance(argv, str) else " ".join(argv)
        self.commands.append(command)
        await asyncio.sleep(DELAY)
        return RunResult(command, 0, "7\n", "")


class FakePool:
    def __init__(self, down: tuple[str, ...] = ()) -> None:
        self.down = down
        self.remotes: dict[str, FakeRemote] = {}

    def get(self, node: Node) -> FakeRemote:
        if node.name not in self.remotes:
            self.remotes[node.name] = FakeRemote(node.name, node.name in self.down)
        return self.remotes[node.name]

    def failure(self, node: Node) -> RemoteError | None:
        remote = self.remotes.get(node.name)
        return remote.failure if remote else None


def plan() -> Any:
    """om1, om2 and db (the fake pool never contacts them)."""
    return make_plan(Path("/opt/om"))


class Timed(timed.Timed):
    """Runs a command and sleeps `secs`, noting its start and end; says what ran before."""

    def says(self, ctx: StepContext, node: Node) -> str:
        seen = sorted(ctx.shared.get("ran", ()))
        ctx.shared.setdefault("ran", set()).add(self.name)
        return f"{self.name} saw {seen}"


def engine(steps: list[Step], pool: FakePool | None = None) -> Engine:
    eng = Engine(plan(), pool=pool or FakePool())  # type: ignore[arg-type]
    eng.steps = lambda section=None: steps  # type: ignore[method-assign]
    return eng


def test_steps_run_at_once_but_after_waits_and_results_keep_step_order() -> None:
    LOG.clear()
    slow, free = Timed("slow", 0.2), Timed("free", 0.01)
    reader = Timed("reader", 0.01, after=("preflight.slow",))
    eng = engine([slow, reader, free])
    finished: list[str] = []
    eng.bus.subscribe(lambda e: finished.append(f"{e.result.step}/{e.result.node}")
                      if isinstance(e, StepFinished) else None)
    results = asyncio.run(eng.check())
    # free did not wait for slow (it is not declared); reader did, and saw what slow left
    assert when("free", "end") < when("slow", "end")
    assert when("reader", "start") >= when("slow", "end")
    assert all("'slow'" in r.detail for r in results if r.step == "reader")
    # results and their reports in step order, nodes in plan order, whatever finished first
    order = [f"{r.step}/{r.node}" for r in results]
    assert order == finished == [f"{s}/{n}" for s in ("slow", "reader", "free")
                                 for n in ("om1", "om2", "db")]


class WaitsAtTheEnd(Step):
    """Does its own work first, then reads what `slow` left (ctx.checked)."""

    section = "preflight"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        LOG.append((self.name, "start", time.monotonic()))
        await ctx.checked("preflight.slow")
        return Finding.ok(f"saw {sorted(ctx.shared.get('ran', ()))}")


def test_checked_waits_mid_check_for_another_step() -> None:
    LOG.clear()
    slow, late = Timed("slow", 0.15), WaitsAtTheEnd("late", "late")
    results = asyncio.run(engine([slow, late]).check())
    assert when("late", "start") < when("slow", "end")  # started at once
    assert all("slow" in r.detail for r in results if r.step == "late")  # read after it


def test_checked_returns_at_once_outside_a_run_of_steps() -> None:
    eng = engine([])
    ctx = eng.context()
    asyncio.run(asyncio.wait_for(ctx.checked("preflight.anything"), 1))


def test_an_unreachable_node_is_connected_once_and_said_once() -> None:
    pool = FakePool(down=("om2",))
    eng = engine([Timed("a", 0), Timed("b", 0), Timed("c", 0)], pool)
    results = asyncio.run(eng.check())
    om2 = [r for r in results if r.node == "om2"]
    assert [r.status for r in om2] == ["failed"] * 3
    assert om2[0].detail == "cannot connect to om2"  # the first step says it
    assert all("see preflight.a" in r.detail for r in om2[1:])  # the later ones refer to it
    assert [r.status for r in results if r.node != "om2"] == ["ok"] * 6
    assert pool.remotes["om2"].connects == 1


COUNT = Fact("t_count", lambda _p, _n: "echo count", str.strip)
WORD = Fact("t_word", lambda _p, _n: "echo word", str.strip)
CONF = Files("t_conf", lambda _p, _n: ["/etc/t.conf"])


def test_concurrent_reads_of_one_fact_or_file_are_one_command() -> None:
    eng = engine([])
    node = eng.plan.nodes[0]

    async def many() -> None:
        ctx = eng.context()
        await asyncio.gather(ctx.fact(node, COUNT), ctx.fact(node, COUNT),
                             ctx.gather(node, [COUNT, WORD]), ctx.fact(node, WORD))
        await asyncio.gather(ctx.read_texts(node, ["/etc/t.conf"]),
                             ctx.read_text(node, "/etc/t.conf"))

    asyncio.run(many())
    commands = eng.pool.get(node).commands  # type: ignore[attr-defined]
    assert len([c for c in commands if "echo count" in c]) == 1
    assert len([c for c in commands if "echo word" in c]) == 1
    assert len([c for c in commands if "/etc/t.conf" in c]) == 1


def test_a_failed_read_in_flight_is_read_again_by_who_waited() -> None:
    eng = engine([])
    node = eng.plan.nodes[0]
    remote: FakeRemote = eng.pool.get(node)  # type: ignore[assignment]
    calls = {"n": 0}
    plain = remote.run

    async def flaky(argv: list[str] | str, **kw: Any) -> RunResult:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(DELAY)
            return RunResult(str(argv), None, "", "connection lost")  # cut short
        return await plain(argv, **kw)

    remote.run = flaky  # type: ignore[method-assign]

    async def both() -> list[Any]:
        ctx = eng.context()
        return await asyncio.gather(ctx.fact(node, COUNT), ctx.fact(node, COUNT),
                                    return_exceptions=True)

    first, second = asyncio.run(both())
    assert isinstance(first, RemoteError)  # the reader whose command was cut short says so
    assert second == "7"  # who waited for it read it itself
    assert calls["n"] == 2


class Reruns(Step):
    """Takes what `slow` found in this run instead of proving it again."""

    section = "verify"

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        found = await ctx.found_in_run("preflight.slow", nodes)
        assert found is not None
        return found


def test_a_step_takes_what_another_found_in_the_same_run() -> None:
    LOG.clear()
    results = asyncio.run(engine([Timed("slow", 0.05), Reruns("again", "again")]).check())
    by = {(r.step, r.node): r.detail for r in results}
    assert by[("again", "om1")] == by[("slow", "om1")]
    assert len([1 for s, w, _ in LOG if s == "slow" and w == "start"]) == 3  # once per node


# -- one sudo probe per node -------------------------------------------------------------------


def sudo_node() -> Node:
    """A node whose SSH user (deploy) reaches root through sudo."""
    return make_plan(Path("/opt/om")).nodes[0]


def scripted(remote: Remote, password_needed: bool) -> list[tuple[str, Any]]:
    """Remote._exec answered here as sudo would: (wire, stdin) of every channel opened."""
    wires: list[tuple[str, Any]] = []

    async def _exec(wire: str, stdin: Any, timeout: float, on_line: Any, *,
                    binary: bool = False, shown: str | None = None) -> _Output:
        wires.append((wire, stdin))
        await asyncio.sleep(DELAY)
        if wire == "sudo -n true" or wire.startswith("m=$(sudo -n true"):
            if password_needed:
                said = "sudo: a password is required"
                if wire == "sudo -n true":
                    return _Output(wire, 1, "", said)
                return _Output(wire, SUDO_PROBE_EXIT, "", f"{SUDO_PROBE_MARK}{said}\n")
            return _Output(wire, 0, "ran\n", "")
        if wire.startswith("sudo -S -p ''"):
            return _Output(wire, 0, "ran\n", "")
        return _Output(wire, 0, "plain\n", "")

    remote._exec = _exec  # type: ignore[method-assign]
    return wires


def test_concurrent_sudo_mode_calls_share_one_probe() -> None:
    remote = Remote(sudo_node())
    wires = scripted(remote, password_needed=False)

    async def many() -> list[str]:
        return list(await asyncio.gather(*(remote.sudo_mode() for _ in range(5))))

    assert asyncio.run(many()) == ["nopasswd"] * 5
    assert [w for w, _ in wires] == ["sudo -n true"]


def two_sudo_commands(password_needed: bool
                      ) -> tuple[Remote, list[RunResult], list[tuple[str, Any]], list[str]]:
    """Two sudo commands at once on a fresh node (one with input): the node, what they got,
    the channels opened (wire, stdin), and the prompts the password was asked with."""
    asked: list[str] = []
    remote = Remote(sudo_node(), ask_password=lambda n, p: asked.append(p) or "pw")
    wires = scripted(remote, password_needed=password_needed)

    async def run() -> list[RunResult]:
        return list(await asyncio.gather(remote.run("id -u", sudo=True),
                                         remote.run("cat", sudo=True, input="data")))

    return remote, asyncio.run(run()), wires, asked


def test_a_nopasswd_node_pays_no_probe_and_gets_no_password() -> None:
    remote, got, wires, asked = two_sudo_commands(password_needed=False)
    assert [r.stdout for r in got] == ["ran\n", "ran\n"]
    assert len(wires) == 2  # each command its own channel, no probe of its own
    assert all(w.startswith("m=$(sudo -n true") for w, _ in wires)
    assert [s for _, s in wires] == [None, "data"]  # never a password
    assert asked == [] and asyncio.run(remote.sudo_mode()) == "nopasswd"


def test_a_password_node_is_asked_once_and_the_commands_run_again_with_it() -> None:
    _, got, wires, asked = two_sudo_commands(password_needed=True)
    assert [r.stdout for r in got] == ["ran\n", "ran\n"]
    assert len(asked) == 1
    again = [(w, s) for w, s in wires if w.startswith("sudo -S -p '' -- ")]
    assert sorted(s for _, s in again) == ["pw\n", "pw\ndata"]  # the password on stdin only
    assert all("pw" not in w for w, _ in wires)


def test_a_refused_session_on_a_live_connection_is_tried_again() -> None:
    """A server with MaxSessions below ours says "open failed": not a lost connection."""
    import asyncssh

    class Conn:
        def __init__(self) -> None:
            self.tries = 0

        def is_closed(self) -> bool:
            return False

        async def create_process(self, wire: str, **_: Any) -> str:
            self.tries += 1
            if self.tries < 3:
                raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                                "open failed")
            return f"process {wire}"

    conn = Conn()
    got = asyncio.run(Remote(sudo_node())._open_session(conn, "true", False))  # type: ignore[arg-type]
    assert got == "process true" and conn.tries == 3
