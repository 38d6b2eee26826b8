"""A step's changes on a node in one round trip (issue 21, engine/batch.py), on the lab:
journaled one record per change, each ended from its own outcome; a failure inside the batch
fails the step, the changes after it never run (aborted, "not run"), and a later apply
completes; a kill inside the batch leaves the batch's records open, and the next apply
decides each from the progress file the batch kept on the node, then rollback restores every
byte. The batch is storage.data-dir on n2: mkdir of the drop-in folder, the drop-in, chown.
And a changing step's re-check costs no round trip of its own: the batch reads the node back
after its changes, and the re-check (right whether the change worked or not) and the next
step's check find what they read cached.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from omwizard.engine.events import StepStarted
from omwizard.engine.session import Session
from omwizard.engine.state import StateStore
from omwizard.engine.step import Result
from omwizard.lab import Lab, faults
from omwizard.plan.model import load_plan
from omwizard.remote.ssh import Remote

pytestmark = pytest.mark.lab

FOLDER = "/etc/systemd/system/openmeetings.service.d"
DROPIN = f"{FOLDER}/omwizard.conf"
ONLY = ("--section", "storage")
SNAPSHOT = ("find /etc/systemd/system -xdev 2>/dev/null | LC_ALL=C sort | while read -r f; do "
            'if [ -f "$f" ]; then echo "$f $(sha256sum < "$f" | cut -c1-64)"; '
            'else echo "$f"; fi; done')


def omw(*args: str, state: Path, fault: str | None = None) -> tuple[int, dict | None, str]:
    env = {**os.environ, "OMW_DB_PASSWORD": "lab-secret"}
    env.pop("OMW_FAULT", None)
    if fault:
        env["OMW_FAULT"] = fault
    proc = subprocess.run([sys.executable, "-m", "omwizard", *args, "--json", "--state",
                           str(state)], capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return proc.returncode, doc, proc.stderr


def data_dir(doc: dict) -> dict:
    return next(r for r in doc["results"] if r["step"] == "data-dir" and r["node"] == "n2")


def batch_records(state: Path, node: str | None = "n2") -> list[dict]:
    return [r for r in StateStore(state).journal()
            if r["step"] == "data-dir" and node in (None, r["node"]) and r.get("progress")]


def test_a_failure_inside_a_batch_stops_it_and_a_later_apply_completes(
        fresh_lab: Lab, tmp_path: Path) -> None:
    n2 = fresh_lab.node("n2")
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    # the folder is there (with the operator's own drop-in: rollback's rmdir keeps it)
    n2.run(f"mkdir -p {FOLDER} && printf '[Service]\\n' > {FOLDER}/00-local.conf", check=True)
    pristine = n2.run(SNAPSHOT, check=True).stdout
    faults.readonly(n2, FOLDER)  # the drop-in cannot be written: the batch's middle change
    try:
        rc, doc, err = omw("apply", str(plan), *ONLY, "--yes", state=state)
        assert rc == 1, err
        assert doc is not None, err
        result = data_dir(doc)
        assert result["status"] == "failed", result
        assert "Read-only file system" in result["detail"] and result["remedy"], result
        records = batch_records(state)
        at = next(i for i, r in enumerate(records) if r["target"] == DROPIN)
        assert records[at]["phase"] == "failed", records
        assert all(r["phase"] == "done" for r in records[:at]), records
        after = records[at + 1:]
        assert after and all(r["phase"] == "aborted" and "not run" in r["note"]
                             for r in after), records
        assert len({r["progress"] for r in records}) == 1  # one batch, one round trip
        progress = n2.run(["cat", records[0]["progress"]], check=True).stdout
        assert all(f"{r['id']} " not in progress for r in after)  # they never started
        assert StateStore(state).open_records() == []
        assert n2.run(SNAPSHOT, check=True).stdout == pristine  # no temp file, no drop-in
    finally:
        faults.writable(n2, FOLDER)
    rc, doc, err = omw("apply", str(plan), *ONLY, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert data_dir(doc)["status"] == "changed"
    assert "/opt/omdata" in n2.run(["cat", DROPIN], check=True).stdout
    rc, doc, err = omw("rollback", str(plan), *ONLY, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert n2.run(SNAPSHOT, check=True).stdout == pristine


def test_a_kill_inside_a_batch_is_settled_from_the_nodes_progress_file(
        fresh_lab: Lab, tmp_path: Path) -> None:
    n2 = fresh_lab.node("n2")
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    pristine = n2.run(SNAPSHOT, check=True).stdout
    rc, _doc, err = omw("apply", str(plan), *ONLY, "--yes", state=state, fault="after-write:1")
    assert rc == -signal.SIGKILL, err
    open_ = StateStore(state).open_records()
    batch = batch_records(state, None)  # every node's: they run at once, one is killed
    assert len(batch_records(state)) >= 2 and open_, open_
    assert {r["id"] for r in open_} <= {r["id"] for r in batch}, open_
    rc, doc, err = omw("apply", str(plan), *ONLY, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert StateStore(state).open_records() == []
    settled = {r["id"]: r for r in StateStore(state).journal()}
    first = [settled[r["id"]] for r in batch]
    # the killed batch ran whole; another node's may have been cut when the wizard died
    # (each record then ends as its node's progress file says, or by the step's check)
    assert {r["phase"] for r in first} <= {"done", "aborted"}, first
    assert any(r.get("note") == "found done on resume" and r["kind"] == "command"
               for r in first), first  # decided by the progress file, not by a re-check
    rc, doc, err = omw("check", str(plan), *ONLY, state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    rc, doc, err = omw("rollback", str(plan), *ONLY, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert n2.run(SNAPSHOT, check=True).stdout == pristine


# -- a changing step's re-check costs no round trip of its own (engine/batch.py, step 4) ------

ROUTE_STEPS = ("multicast-route", "hazelcast-xml")  # one command; one file edit
MC_ADD = "route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0"


def test_a_changing_steps_recheck_sends_no_command_of_its_own(
        fresh_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """network.multicast-route then nodes.hazelcast-xml on a fresh lab (they touch nothing of
    each other's, so the apply runs them at once), each node's remote calls noted in order,
    with the steps' phases. The run's first reads come before any change (one round trip per
    sudo mode); after them, each node is sent the two batches and nothing else: each batch
    reads back what its change made stale, so neither re-check, nor a check after a change,
    sends a command of its own. The route's verdict is
    the node's real state: n1's change worked; n2's ran (exit 0) but put the route on `lo`
    (the command altered on its way): failed, "still not right", from the reads; on n3 the
    route was there when the batch ran (`File exists`, already so): ok."""
    monkeypatch.setenv("OMW_DB_PASSWORD", os.environ.get("OMW_DB_PASSWORD", "lab-unused-1"))
    plan = load_plan(fresh_lab.write_plan(tmp_path / "plan.yaml"))
    calls: dict[str, list[str]] = {}

    def noted(name: str) -> Any:
        real = getattr(Remote, name)

        async def call(self: Remote, *args: Any, **kw: Any) -> Any:
            calls.setdefault(self.node.name, []).append(f"{name} {str(args[0])[:60]}")
            if name == "run_changes" and MC_ADD.split(" dev")[0] in args[0]:
                if self.node.name == "n2":  # the change runs, and does not do what it should
                    args = (args[0].replace(" dev eth0", " dev lo"), *args[1:])
                elif self.node.name == "n3":  # someone added it since the check
                    fresh_lab.node("n3").run(MC_ADD, check=True)
            return await real(self, *args, **kw)

        return call

    for name in ("run", "run_changes", "read_file", "write_file"):
        monkeypatch.setattr(Remote, name, noted(name))

    async def apply() -> list[Result]:
        session = Session.open(plan, tmp_path / "state")
        session.bus.subscribe(lambda e: calls.setdefault(e.node, []).append(
            f"# {e.step} {e.phase}") if isinstance(e, StepStarted) else None)
        async with session:
            return await session.engine(["network", "nodes"], steps=ROUTE_STEPS).apply()

    try:
        results = asyncio.run(apply())
    finally:
        fresh_lab.node("n2").run("ip route del 224.0.0.0/4 dev lo 2>/dev/null; true")
    got = {(r.step, r.node): r for r in results}
    for node in ("n1", "n2", "n3"):
        mine = calls[node]
        sent = [c for c in mine if not c.startswith("# ")]
        first = next(i for i, c in enumerate(sent) if c.startswith("run_changes"))
        assert 1 <= first <= 2 and all(c.startswith("run ") for c in sent[:first]), mine
        assert [c.split()[0] for c in sent[first:]] == ["run_changes", "run_changes"], mine
        for step in ROUTE_STEPS:  # checked, applied, re-checked: the re-check sent nothing
            assert [c for c in mine if c.startswith(f"# {step} ")] == [
                f"# {step} check", f"# {step} apply", f"# {step} check"], mine
            assert mine.index(f"# {step} apply") < len(mine) - 1 - mine[::-1].index(
                f"# {step} check")
        assert got[("hazelcast-xml", node)].status == "changed"
    assert got[("multicast-route", "n1")].status == "changed"
    lo = got[("multicast-route", "n2")]
    assert lo.status == "failed" and "still not right" in lo.detail, lo
    assert any("224.0.0.0/4 dev lo" in e for e in lo.evidence), lo.evidence
    assert got[("multicast-route", "n3")].status == "ok"
    assert not got[("multicast-route", "n3")].changes  # nothing of ours to undo
    phases = {(r["node"], r["phase"], r.get("note")) for r in StateStore(tmp_path / "state")
              .journal() if r["step"] == "multicast-route"}
    assert ("n3", "aborted", "already in place") in phases, phases


