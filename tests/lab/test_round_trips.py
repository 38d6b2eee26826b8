"""Reads batched (issue 21), on the lab: a full check reads every node's declared facts and
files in one round trip per sudo mode, in the first step that declares any; the later steps
that read only what they declared send no command of their own; an apply reads again what a
change may have altered (the `stable` rule) and is right afterwards.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from omwizard.engine.events import CommandRun, Event
from omwizard.engine.session import Session
from omwizard.facts.storage import om_user_shell
from omwizard.lab import Lab
from omwizard.lab.services import start_mariadb
from omwizard.plan.model import load_plan

pytestmark = pytest.mark.lab

# steps whose check reads nothing but its declared facts and files (on the lab's nodes)
DECLARED_ONLY = (
    "preflight.timezone", "network.interface-multicast", "network.multicast-route",
    "database.db-type", "database.persistence-connection", "database.remote-commit-provider",
    "database.serialization", "storage.data-dir", "nodes.unique-names", "nodes.hazelcast-xml",
    "verify.restart", "database.remote-user",
)
# ... and on a working cluster also these (verify.members' first read is declared; it reads
# live only while a cluster settles)
DECLARED_ONLY_WORKING = ("storage.data-dir", "verify.members")


async def checked(plan_path: Path, *, apply: bool = False, state: Path | None = None):
    plan = load_plan(plan_path)
    session = Session.open(plan, state) if state else Session(plan)
    commands: list[CommandRun] = []

    def seen(event: Event) -> None:
        if isinstance(event, CommandRun):
            commands.append(event)

    session.bus.subscribe(seen)
    engine = session.engine()
    async with session:
        results = await (engine.apply() if apply else engine.check())
        channels = {n: r.channels for n, r in session.pool.remotes.items()}
    return plan, engine, results, commands, channels


def test_a_check_reads_each_nodes_facts_and_files_in_one_round_trip(
    lab_plan: Path, fresh_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMW_DB_PASSWORD", os.environ.get("OMW_DB_PASSWORD", "lab-unused-1"))
    plan, engine, results, commands, _ = asyncio.run(checked(lab_plan))
    ctx = engine.context()
    for node in plan.nodes:
        steps = [s for s in engine.steps() if s.applies(ctx, node) is None]
        declared = [s for s in steps if s.facts or s.files]
        first = declared[0].id
        facts = {f.name: f.command(plan, node) for s in declared for f in s.facts}
        paths = {p for s in declared for f in s.files for p in f.paths(plan, node)}
        # every declared fact of the whole run is known, read in the first step that declares
        assert set(facts) <= set(engine.shared["_facts"][node.name]), node.name
        assert paths <= set(engine.shared["_files"][node.name]), node.name
        mine = [c for c in commands if c.node == node.name]
        # no later step reads one of its declared facts itself (verify.members re-reads the
        # OM process live, with its log, in its own settle loop: that is not a declared fact)
        reading = {c.step for c in mine for s in declared for f in s.facts
                   if c.step == s.id and f.command(plan, node) in c.command}
        assert reading == {first}, (node.name, reading)
        assert any(cmd in c.command for c in mine if c.step == first for cmd in facts.values())
        assert len([c for c in mine if c.step == first]) <= 2  # one per sudo mode
        quiet = [s.id for s in steps if s.id in DECLARED_ONLY and s.id != first]
        talkative = {c.step for c in mine if c.step in quiet}
        assert not talkative, (node.name, talkative)
    assert {r.status for r in results} - {"ok", "needs-change", "failed", "skipped"} == set()


def test_an_apply_reads_again_after_a_change_and_ends_right(
    lab_plan: Path, fresh_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route is added in network.multicast-route: route-persistent (after it) must see the
    route's node as it is after that change, and a second check finds nothing to do there."""
    monkeypatch.setenv("OMW_DB_PASSWORD", os.environ.get("OMW_DB_PASSWORD", "lab-unused-1"))
    assert fresh_lab.db is not None
    start_mariadb(fresh_lab.db)
    state = tmp_path / "state"
    _, _, results, commands, _ = asyncio.run(checked(lab_plan, apply=True, state=state))
    by_key = {f"{r.section}.{r.step}/{r.node}": r for r in results}
    # remote-user: its probe is a declared fact (read in the run's first gather, read back by
    # the batch that creates the user and moves bind-address), the config file it edits too:
    # the step's one round trip is that batch: every command it shows is one of its changes
    user = by_key["database.remote-user/db"]
    assert user.status == "changed", user
    made = sorted(c["target"] for c in user.changes if c["kind"] == "command")
    assert sorted(c.command for c in commands if c.step == "database.remote-user") == made
    assert len(made) >= 5  # the database, a user per OM node, the bind-address restart
    for node in ("n1", "n2", "n3"):
        login = by_key[f"database.db-login/{node}"]
        assert login.status == "ok", login
    for node in ("n1", "n2", "n3"):
        assert by_key[f"network.multicast-route/{node}"].status == "changed"
        assert by_key[f"network.multicast-ping/{node}"].status == "ok"
        assert by_key[f"preflight.timezone/{node}"].status in ("ok", "changed")
    plan, _, again, commands, _ = asyncio.run(checked(lab_plan))
    # a check of the working cluster: nothing waits for the run's gather to send a command
    # of its own; the shared-files proof (a live probe) resolves the OM user in its own
    # command, so it needs no read before it (it runs while the gather does)
    for node in plan.om_nodes:
        mine = [c for c in commands if c.node == node.name]
        assert not {c.step for c in mine if c.step in DECLARED_ONLY_WORKING}, node.name
        proof = [c.command for c in mine if c.step == "storage.shared"]
        assert len(proof) == 1, (node.name, proof)
        if node.name == plan.om_nodes[0].name:  # the writer
            assert om_user_shell(plan.cluster.om_home) in proof[0]
    for r in again:
        if r.section == "network" and r.node != "db":
            assert r.status in ("ok", "needs-change"), r  # route-persistent may still want one
            if r.step != "route-persistent":
                assert r.status == "ok", r
