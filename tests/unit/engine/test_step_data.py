"""Typed step data, declared facts and the declarative step base, on the real engine.

Nodes are played by a local shell (LocalPool): the real steps' scripts run here against a
fake OpenMeetings tree, so what is proven is the engine's and the steps' own code. Every test
that matters runs twice, once with every finding's words replaced by nonsense
(tests/nonsense.py): the typed data, the export's versions, the apply hand-offs and the
resume must not change.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omwizard.engine.catalog import steps_for
from omwizard.engine.events import EventBus, StepFinished
from omwizard.engine.export import build_report
from omwizard.engine.runner import Engine
from omwizard.engine.state import StateStore
from omwizard.engine.step import (
    NOT_OM,
    Fact,
    Finding,
    Result,
    Step,
    StepContext,
    StepData,
)
from omwizard.facts import database, javaopts, network, nodes, storage, verify
from omwizard.facts.preflight import OM_INSTALL, OmInstall, SshAccess, TimezoneState
from omwizard.plan.model import Node, Plan, plan_from_dict
from omwizard.remote.results import RunResult
from tests import nonsense

# -- a local shell as the nodes -------------------------------------------------------------


class LocalRemote:
    """A node that is this machine's shell: commands really run (sh -c), one log per node."""

    def __init__(self, sudo: str) -> None:
        self.sudo = sudo
        self.commands: list[str] = []

    async def connect(self) -> None:
        return None

    async def sudo_mode(self) -> str:
        return self.sudo

    async def run(self, argv: list[str] | str, *, sudo: bool = False, input: str | None = None,
                  timeout: float = 60, on_line: Any = None) -> RunResult:
        command = argv if isinstance(argv, str) else shlex.join(argv)
        self.commands.append(command)
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", command, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input.encode() if input else None)
        return RunResult(command, proc.returncode, out.decode(), err.decode())


class LocalPool:
    def __init__(self, sudo: dict[str, str] | None = None) -> None:
        self.sudo = sudo or {}
        self.remotes: dict[str, LocalRemote] = {}

    def get(self, node: Node) -> LocalRemote:
        if node.name not in self.remotes:
            self.remotes[node.name] = LocalRemote(self.sudo.get(node.name, "none"))
        return self.remotes[node.name]

    def failure(self, node: Node) -> None:
        return None  # a local shell is always reached


def fake_om(home: Path, version: str = "9.1.0") -> None:
    classes = home / "webapps/openmeetings/WEB-INF/classes"
    classes.mkdir(parents=True)
    (classes / "hazelcast.xml").write_text("<hazelcast/>\n")
    lib = home / "webapps/openmeetings/WEB-INF/lib"
    lib.mkdir(parents=True)
    for jar in (f"openmeetings-web-{version}.jar", "commons-lang3-3.17.0.jar"):
        (lib / jar).write_text("")


def make_plan(home: Path) -> Plan:
    return plan_from_dict({
        "omwizard": 1,
        "cluster": {"name": "t", "timezone": "Europe/Berlin", "om_home": str(home)},
        "ssh": {"user": "deploy", "known_hosts": "/nonexistent"},
        "nodes": [
            {"name": "om1", "host": "192.0.2.11", "address": "192.0.2.11",
             "roles": ["om", "storage"]},
            {"name": "om2", "host": "192.0.2.12", "address": "192.0.2.12", "roles": ["om"]},
            {"name": "db", "host": "192.0.2.20", "address": "192.0.2.20",
             "roles": ["database"]},
        ],
        "database": {"type": "mariadb", "host": "192.0.2.20", "name": "om", "user": "om",
                     "password": "pw-for-tests"},
    }, env={})


@pytest.fixture(params=["words", "nonsense"])
def words(request: pytest.FixtureRequest) -> Any:
    """Each test runs with the steps' own words, then with nonsense in their place."""
    if request.param == "nonsense":
        nonsense.install()
        yield True
        nonsense.uninstall()
    else:
        yield False


def typed_outcome(results: list[Result]) -> list[tuple[str, str, StepData | None, list]]:
    """What code may rely on: status, typed data and changes; never the words."""
    return [(r.key, r.status, r.data, [(c["kind"], c["target"]) for c in r.changes])
            for r in results]


# -- StepData ---------------------------------------------------------------------------------

SAMPLES: list[StepData] = [
    SshAccess("deploy", "password", "h1", 2222),
    OmInstall((9, 1, 0)),
    OmInstall(None, present=False),
    TimezoneState("timedatectl", "Europe/Berlin"),
    TimezoneState("unknown", None),
    network.NodeInterface("eth0"),
    network.RouteState("eth0", True),
    network.PingRound("n1"),
    network.RouteConfig("eth0", "netplan", "/etc/netplan/60-x.yaml", None, "ethernets", "eth0"),
    storage.DataDirState(True, False, False, "", "om", "om"),
    storage.NfsServerState(storage.PackageState("apt", "nfs-kernel-server", False), True,
                           True, False),
    storage.NfsClientState(storage.PackageState("dnf", "nfs-utils", True), False, True, False),
    verify.MembersView(3, ("10.0.0.1", "10.0.0.2"), missing=("n3",)),
    verify.Health({"inited": True, "installed": True, "dbOk": False}, "9.1.0"),
    verify.RestartState("/opt/om/logs/openmeetings.log", 1234, True),
    javaopts.JavaOptsState("systemd unit /etc/systemd/system/openmeetings.service",
                           ("-DDATA_DIR=/opt/omdata",)),
    database.LoginVerdict("refused"),
    nodes.InstanceName(None),
    nodes.HazelcastState(("instance-name is dev",), ()),
]


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: f"{d.kind}")
def test_step_data_round_trips_through_json(data: StepData) -> None:
    saved = json.loads(json.dumps(data.to_json()))
    assert saved["kind"] == data.kind
    assert StepData.from_json(saved) == data


def test_step_data_kinds_are_unique_and_unknown_kinds_are_none() -> None:
    with pytest.raises(TypeError):
        @dataclass(frozen=True)
        class Again(StepData):  # noqa: F841 - the class statement itself must fail
            kind = "ssh-access"
            x: int
    assert StepData.from_json({"kind": "no-such-kind", "x": 1}) is None
    assert StepData.from_json(None) is None


def test_result_json_carries_the_data_and_comes_back_typed() -> None:
    result = Result("preflight", "ssh", "n1", "ok", "words", data=SAMPLES[0])
    doc = result.as_json()
    assert doc["data"] == {"kind": "ssh-access", "user": "deploy", "sudo": "password",
                           "host": "h1", "port": 2222}
    again = Result.from_json(json.loads(json.dumps({**doc, "at": result.at})))
    assert again == result
    assert "data" not in Result("a", "b", "n", "ok", "").as_json()


# -- the engine keeps the data: connection test, state, export ---------------------------------


def test_preflight_data_reaches_state_events_and_export(words: bool, tmp_path: Path) -> None:
    home = tmp_path / "om"
    fake_om(home)
    plan = make_plan(home)
    state = StateStore(tmp_path / "state")
    bus = EventBus()
    seen: list[Result] = []
    bus.subscribe(lambda e: seen.append(e.result) if isinstance(e, StepFinished) else None)
    engine = Engine(plan, pool=LocalPool({"om1": "password", "db": "nopasswd"}), state=state,
                    bus=bus, sections=["preflight"], steps=["ssh", "om-installed"])
    results = asyncio.run(engine.check())
    assert typed_outcome(results) == [
        ("preflight/ssh/om1", "ok", SshAccess("deploy", "password", "192.0.2.11", 22), []),
        ("preflight/ssh/om2", "ok", SshAccess("deploy", "none", "192.0.2.12", 22), []),
        ("preflight/ssh/db", "ok", SshAccess("deploy", "nopasswd", "192.0.2.20", 22), []),
        ("preflight/om-installed/om1", "ok", OmInstall((9, 1, 0)), []),
        ("preflight/om-installed/om2", "ok", OmInstall((9, 1, 0)), []),
        ("preflight/om-installed/db", "skipped", None, []),
    ]
    assert seen == results  # the event carries the typed Result itself
    assert all(r.detail.startswith(nonsense.MARK) for r in results) == words
    saved = {k: Result.from_json(v) for k, v in state.results().items()}
    assert {k: r.data for k, r in saved.items()} == {r.key: r.data for r in results}
    assert build_report(plan, state)["om_versions"] == {"om1": "9.1.0", "om2": "9.1.0"}


# -- apply hand-offs and resume ------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted(StepData):
    kind = "test-wanted"
    target: str
    mode: int


class HandOffStep(Step):
    """needs-change until a marker file exists; its apply makes it from the typed data only."""

    section = "preflight"
    name = "hand-off"
    has_apply = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.received: list[Wanted] = []

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        target = str(self.folder / node.name)
        if Path(target).exists():
            return Finding.ok("there")
        return Finding.needs("missing", "make it", data=Wanted(target, 0o600))

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        wanted = finding.typed(Wanted)
        self.received.append(wanted)
        await ctx.change_command(node, ["sh", "-c", f"umask 077; : > {wanted.target}"],
                                 ["rm", "-f", wanted.target])


def test_apply_gets_the_typed_data_and_resume_settles_open_records(
        words: bool, tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "om")
    state = StateStore(tmp_path / "state")
    step = HandOffStep(tmp_path)
    engine = Engine(plan, pool=LocalPool(), state=state)
    engine.steps = lambda section=None: [step]  # type: ignore[method-assign]
    results = asyncio.run(engine.apply())
    assert [(r.key, r.status) for r in results] == [
        ("preflight/hand-off/om1", "changed"), ("preflight/hand-off/om2", "changed"),
        ("preflight/hand-off/db", "changed")]
    # an apply may run twice per node (engine/batch.py: planned, then replayed), each time
    # with the typed data
    assert list(dict.fromkeys(step.received)) == [Wanted(str(tmp_path / n), 0o600)
                                                  for n in ("om1", "om2", "db")]
    # an interrupted change: begun, never ended; its check (ok now) settles it as done
    rec = state.journal_begin({"section": "preflight", "step": "hand-off", "node": "om1",
                               "kind": "command", "target": "x", "undo": "y"})
    engine._step = lambda section, name: step  # type: ignore[method-assign]
    assert asyncio.run(engine.recover_interrupted()) == []
    assert [r["phase"] for r in state.journal() if r["id"] == rec] == ["done"]


# -- declared facts ------------------------------------------------------------------------------

COUNT = Fact("test_count", lambda _p, _n: "echo 1; echo 2", lambda out: len(out.split()))
WORD = Fact("test_word", lambda _p, n: f"echo {n.name}", str.strip, stable=True)


class FactStep(Step):
    section = "preflight"
    name = "facts"
    facts = (COUNT, WORD)

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        self.seen.append((await ctx.fact(node, COUNT), await ctx.fact(node, WORD)))
        return Finding.ok("read")


def test_declared_facts_come_in_one_round_trip_once_per_run(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "om")
    pool = LocalPool()
    first, second = FactStep(), FactStep()
    engine = Engine(plan, pool=pool)
    engine.steps = lambda section=None: [first, second]  # type: ignore[method-assign]
    asyncio.run(engine.check())
    assert first.seen == second.seen == [(2, "om1"), (2, "om2"), (2, "db")]
    assert {n: len(r.commands) for n, r in pool.remotes.items()} == {"om1": 1, "om2": 1, "db": 1}

    async def after_a_change() -> tuple[int, str]:
        ctx = engine.context().bind(first)
        node = plan.node("om1")
        await ctx.change_command(node, ["true"], None)
        return await ctx.fact(node, COUNT), await ctx.fact(node, WORD)

    assert asyncio.run(after_a_change()) == (2, "om1")
    again = pool.remotes["om1"].commands[2:]
    assert again == ["echo 1; echo 2"]  # the changeable fact is read again, the stable not


def test_a_step_alone_still_gets_the_facts_another_step_used_to_share(tmp_path: Path) -> None:
    """verify alone (no preflight before it in the run) reads OM's version itself."""
    home = tmp_path / "om"
    fake_om(home, "4.0.11")
    plan = make_plan(home)

    async def read() -> OmInstall:
        engine = Engine(plan, pool=LocalPool(), sections=["verify"])
        return await engine.context().fact(plan.node("om1"), OM_INSTALL)

    assert asyncio.run(read()) == OmInstall((4, 0, 11))
    restart = next(s for s in steps_for("verify") if s.name == "restart")
    assert OM_INSTALL in restart.facts


# -- the declarative base ------------------------------------------------------------------------


def test_where_a_step_runs_is_declared(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "om")
    ctx = StepContext(plan, LocalPool(), None, EventBus())  # type: ignore[arg-type]
    om1, db = plan.node("om1"), plan.node("db")

    class OmOnly(Step):
        only_om = True

    class Ruled(Step):
        only_om = True
        om_reason = "not a member"
        skip_when = (lambda _p, n: "first rule" if n.name == "om1" else None,
                     lambda _p, _n: "second rule")

    assert (OmOnly().applies(ctx, om1), OmOnly().applies(ctx, db)) == (None, NOT_OM)
    assert (Ruled().applies(ctx, om1), Ruled().applies(ctx, db)) == ("first rule", "not a member")
    by_id = {s.id: s for section in ("preflight", "network", "database", "storage", "nodes",
                                     "verify") for s in steps_for(section)}
    for step_id in ("preflight.om-installed", "nodes.hazelcast-xml", "verify.members",
                    "database.db-login", "storage.data-dir"):
        assert by_id[step_id].applies(ctx, db) == NOT_OM, step_id
    assert by_id["network.multicast-route"].applies(ctx, db).endswith("not a Hazelcast member")


def test_a_cluster_wide_step_checks_one_node_through_check_all(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "om")

    class Together(Step):
        cluster_wide = True

        async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
            return {n.name: Finding.ok(f"{len(nodes)} together") for n in nodes}

    ctx = StepContext(plan, LocalPool(), None, EventBus())  # type: ignore[arg-type]
    found = asyncio.run(Together().check(ctx, plan.node("om1")))
    assert found.status == "ok" and found.detail == "1 together"
