"""nodes + verify on the lab, through the CLI: real hazelcast.xml edits, real Hazelcast members.

The lab's startup.sh/shutdown.sh run a real Hazelcast member (omwizard.lab.hazelcast, a
stand-in for OpenMeetings' cluster layer) with the node's own hazelcast.xml; the verify
section reads its log exactly as it reads OpenMeetings'.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.engine.events import CommandRun
from omwizard.engine.session import Session
from omwizard.engine.step import Result
from omwizard.lab import hazelcast as hz
from omwizard.lab import services
from omwizard.om.layout import OmLayout
from omwizard.plan.model import load_plan

pytestmark = pytest.mark.lab

PASSWORD = "Lab-pw_4711"
HZ_XML = OmLayout("/opt/om").hazelcast_xml


def omw(*args: str, state: Path | None, timeout: float = 600) -> tuple[int, dict | None, str]:
    """Run the CLI as an operator would; (exit status, JSON document or None, stderr)."""
    env = {**os.environ, "OMW_DB_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "omwizard", *args]
    if state is not None:
        argv += ["--state", str(state)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    doc = json.loads(proc.stdout) if "--json" in args and proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr


def by(doc: dict, step: str) -> dict[str, dict]:
    section, _, name = step.partition(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def hz_bytes(lab) -> dict[str, bytes]:
    return {name: (node.root / "opt" / HZ_XML.removeprefix("/opt/")).read_bytes()
            for name, node in lab.nodes.items()}


@pytest.fixture
def om_lab(lab, lab_manager):
    """The lab with the Hazelcast stand-in installed in every node, reset to pristine."""
    lab_manager.get()
    services.ensure_lab_services(lab)
    lab.reset()
    yield lab
    lab.reset()  # stops the members (their processes live in the nodes' namespaces)


def test_cluster_forms_survives_reapply_and_rolls_back(om_lab, tmp_path: Path) -> None:
    lab = om_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    original = hz_bytes(lab)

    rc, doc, err = omw("apply", str(plan), "--section", "network", "--section", "nodes",
                       "--yes", "--json", state=state)
    assert rc == 0, err
    hx = by(doc, "nodes.hazelcast-xml")
    assert {hx[n]["status"] for n in lab.nodes} == {"changed"}, hx
    assert by(doc, "nodes.unique-names")["n1"]["status"] == "ok"
    assert by(doc, "nodes.hazelcast-xml")["db"]["status"] == "skipped"
    changed = hz_bytes(lab)
    assert all(b"<instance-name>" + n.encode() + b"</instance-name>" in changed[n] for n in changed)

    # apply verify: restart one node at a time (the re-run steps of other sections may fail
    # here: no database runs in this test; only restart and members are judged)
    rc, doc, err = omw("apply", str(plan), "--section", "verify", "--yes", "--json", state=state)
    restart = by(doc, "verify.restart")
    assert {restart[n]["status"] for n in lab.nodes} == {"changed"}, restart
    members = by(doc, "verify.members")
    for name in lab.nodes:
        assert members[name]["status"] == "ok", members[name]
        for node in lab.nodes.values():
            assert node.address in members[name]["detail"]
    pids = {name: hz.member_pid(node) for name, node in lab.nodes.items()}

    # a second apply does not restart: OM already runs the current configuration
    rc, doc, err = omw("apply", str(plan), "--section", "verify", "--yes", "--json", state=state)
    assert {r["status"] for n, r in by(doc, "verify.restart").items() if n in lab.nodes} == {"ok"}
    assert {name: hz.member_pid(node) for name, node in lab.nodes.items()} == pids

    # one member stops: check names it, with the remedy
    hz.stop_member(lab.nodes["n3"])
    rc, doc, err = omw("check", str(plan), "--section", "verify", "--json", state=state)
    assert rc == 1
    members = by(doc, "verify.members")
    for name in ("n1", "n2"):
        assert members[name]["status"] == "failed"
        assert "missing: n3 (198.18.0.13)" in members[name]["detail"], members[name]
        assert "network.multicast-route" in members[name]["remedy"]
    assert members["n3"]["status"] == "failed" and "n3" in members["n3"]["remedy"]
    assert by(doc, "verify.restart")["n3"]["status"] == "needs-change"

    # the export of this run re-loads as a plan
    out = tmp_path / "export.yaml"
    rc, _, err = omw("export", str(plan), "-o", str(out), state=state)
    assert rc == 0, err
    text = out.read_text()
    assert PASSWORD not in text and "report:" in text
    rc, _, err = omw("validate", str(out), state=None)
    assert rc == 0, err

    # rollback of nodes restores every hazelcast.xml byte for byte
    for node in lab.nodes.values():
        hz.stop_member(node)
    rc, doc, err = omw("rollback", str(plan), "--section", "nodes", "--yes", "--json", state=state)
    assert rc == 0, err
    assert hz_bytes(lab) == original


def test_original_files_stay_alone(om_lab, tmp_path: Path) -> None:
    lab = om_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    for node in lab.nodes.values():
        hz.start_member(node)
    for node in lab.nodes.values():
        hz.wait_for_log(node, hz.STANDALONE_LOG)
    rc, doc, err = omw("check", str(plan), "--section", "verify", "--json", state=tmp_path / "s")
    assert rc == 1
    members = by(doc, "verify.members")
    for name in lab.nodes:
        assert members[name]["status"] == "failed"
        assert "No join method is enabled" in members[name]["detail"]
        assert "nodes" in members[name]["remedy"]
    # running, and started after the files were last written: no restart needed
    assert {by(doc, "verify.restart")[n]["status"] for n in lab.nodes} == {"ok"}


def test_health_through_the_forward(om_lab, tmp_path: Path) -> None:
    lab = om_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    services.start_health_responder(lab.nodes["n1"], 5080, healthy=True, version="9.1.0")
    services.start_health_responder(lab.nodes["n2"], 5080, healthy=False)
    rc, doc, err = omw("check", str(plan), "--section", "verify", "--json", state=tmp_path / "s")
    health = by(doc, "verify.health")
    assert health["n1"]["status"] == "ok", health["n1"]
    assert "OpenMeetings 9.1.0" in health["n1"]["detail"]
    assert health["n2"]["status"] == "failed"
    assert '"dbOk":false' in health["n2"]["detail"] and "database" in health["n2"]["remedy"]
    assert health["n3"]["status"] == "failed"  # nothing listens: seen through the forward
    assert "no HTTP answer" in health["n3"]["detail"]


def test_each_restart_says_its_node_is_back_without_a_read(om_lab, tmp_path: Path) -> None:
    """A rolling restart over a slow link (issue 21): each node's restart prints its start's
    members lines, so a node back in the cluster at once needs no read before the next
    node's restart (none at all between the first restart and the last); the step's
    re-check reads every node afterwards, and each node ends changed and a member."""
    lab = om_lab
    plan = load_plan(lab.write_plan(tmp_path / "plan.yaml"))
    session = Session.open(plan, tmp_path / "state")
    commands: list[CommandRun] = []
    session.bus.subscribe(lambda e: commands.append(e) if isinstance(e, CommandRun) else None)

    async def apply() -> list[Result]:
        async with session:
            return await session.engine(["network", "nodes", "verify"]).apply()

    results = {(r.step, r.node): r for r in asyncio.run(apply())}
    assert {results["restart", n].status for n in lab.nodes} == {"changed"}, results
    assert {results["members", n].status for n in lab.nodes} == {"ok"}, results
    begun = [i for i, c in enumerate(commands) if c.step == "verify.restart"
             and c.command.startswith("sh -c 'off=")]  # restart_argv, one a node
    assert len(begun) == len(lab.nodes), [c.command[:80] for c in commands]
    between = [(c.step, c.node, c.command[:60]) for c in commands[begun[0]:begun[-1]]
               if not c.command.startswith("sh -c 'off=")]
    assert not between, between
    after = {c.node for c in commands[begun[-1] + 1:] if c.step == "verify.restart"}
    assert after == set(lab.nodes), after  # the re-check's read of each node


def test_reruns_resolve_to_their_sections() -> None:
    """verify's re-runs must find their steps; a missing one is an error, never a skip."""
    from omwizard.engine.catalog import steps_for

    for step in steps_for("verify"):
        if hasattr(step, "target"):
            step.delegate()  # LookupError names the missing step
