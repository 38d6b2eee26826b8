"""UI test helpers: a state home in a temp dir, a host-neutral plan, the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omwizard.engine.state import StateStore
from omwizard.plan.model import dump_plan, plan_from_dict

SNAPSHOT_ENV = {"OMW_DB_PASSWORD": "pw"}


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home / "omwizard"


def neutral_plan_dict() -> dict[str, Any]:
    """A valid plan for example hosts (nothing is contacted)."""
    return {
        "omwizard": 1,
        "cluster": {"name": "demo", "timezone": "Europe/Berlin", "om_home": "/opt/om"},
        "ssh": {"user": "root", "port": 22, "known_hosts": "/nonexistent/known_hosts",
                "host_keys": "strict", "sudo": "auto", "connect_timeout": 1},
        "nodes": [
            {"name": "om1", "host": "192.0.2.11", "address": "192.0.2.11", "interface": "eth0",
             "server_url": "https://om1.example.org/openmeetings", "roles": ["om", "storage"]},
            {"name": "om2", "host": "192.0.2.12", "address": "192.0.2.12", "interface": "eth0",
             "server_url": "https://om2.example.org/openmeetings", "roles": ["om"]},
            {"name": "db", "host": "192.0.2.20", "address": "192.0.2.20", "roles": ["database"]},
        ],
        "database": {"type": "mariadb", "host": "192.0.2.20", "port": 3306,
                     "name": "openmeetings", "user": "om", "password": "${OMW_DB_PASSWORD}",
                     "manage": True},
        "network": {"join": "multicast"},
        "storage": {"kind": "nfs", "path": "/opt/omdata"},
    }


@pytest.fixture
def neutral_plan(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(neutral_plan_dict(), sort_keys=False))
    return path


def demo_state(base: Path) -> None:
    plan = plan_from_dict(neutral_plan_dict(), env=SNAPSHOT_ENV)
    store = StateStore(base / "demo")
    store.save_plan(dump_plan(plan))
    rows = [("ssh", "om1", "ok", "logged in as root"), ("ssh", "om2", "ok", "logged in as root"),
            ("ssh", "db", "failed", "cannot connect to 192.0.2.20:22: timeout"),
            ("om-installed", "om1", "ok", "OpenMeetings 9.1.0"),
            ("om-installed", "om2", "needs-change", "OpenMeetings 9.1.0"),
            ("om-installed", "db", "skipped", "not an OpenMeetings node (role om)")]
    for step, node, status, detail in rows:
        store.set_result(f"preflight/{step}/{node}", {
            "section": "preflight", "step": step, "node": node, "status": status,
            "detail": detail, "changes": [], "ts": "2025-01-01T00:00:00Z"})
    store.touch(section="preflight", step="om-installed")
    meta = store.meta()
    meta["last_activity"] = "2025-01-01T00:00:00Z"
    store._write_json("meta.json", "meta", meta)  # a fixed time for the picture


@pytest.fixture
def fixed_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", "/nonexistent-omwizard-snapshots")
    base = tmp_path / "omwizard"
    demo_state(base)
    return base


# a check's mixed outcome, cycled over every step and node of every section: each status the
# grid can hold from a saved session (a dry run's would-change is never saved)
MIXED = ("ok", "needs-change", "failed", "skipped", "changed", "ok", "rolled-back", "ok")
DETAIL = {"ok": "as the documentation says", "needs-change": "differs: a applies the fix",
          "failed": "cannot read the file: permission denied", "skipped": "not an OM node",
          "changed": "changed by omwizard", "rolled-back": "undone by omwizard"}


def results_state(base: Path) -> StateStore:
    """demo's session with a result for every step on every node of every section, the
    statuses mixed, and one manual check answered: the screens as they look after checks."""
    from omwizard.engine.catalog import SECTIONS, steps_for

    demo_state(base)
    store = StateStore(base / "demo")
    nodes = [n["name"] for n in neutral_plan_dict()["nodes"]]
    i = 0
    for section in SECTIONS:
        for step in steps_for(section):
            for node in nodes:
                status = MIXED[i % len(MIXED)]
                i += 1
                store.set_result(f"{section}/{step.name}/{node}", {
                    "section": section, "step": step.name, "node": node, "status": status,
                    "detail": DETAIL[status], "changes": [], "ts": "2025-01-01T00:00:00Z",
                    "at": "2025-01-01T00:00:00Z"})
    store.set_answer("same-room", {"verdict": "pass", "note": "both saw each other's video",
                                   "at": "2025-01-01T00:00:00Z", "ts": "2025-01-01T00:00:00Z"})
    return store


@pytest.fixture
def results_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A saved session with results everywhere; HOME is its parent (paths show as ~/...)."""
    monkeypatch.setenv("XDG_STATE_HOME", "/nonexistent-omwizard-snapshots")
    monkeypatch.setenv("HOME", str(tmp_path))
    base = tmp_path / "omwizard"
    results_state(base)
    return base
