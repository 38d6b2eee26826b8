"""Export and manual checks: the export re-loads as a plan, carries the report, hides secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from omwizard.engine.export import (
    MANUAL_CHECKS,
    ExportError,
    manual_instructions,
    record_answer,
    write_export,
)
from omwizard.engine.state import StateStore
from omwizard.facts.preflight import OmInstall
from omwizard.plan.model import load_plan, plan_from_dict, plan_to_dict

SECRET = "s3cret-Pw_9!"
ADMIN = "adm1n-Pw_7?"


def plan_dict() -> dict:
    nodes = [
        {"name": f"om{i}", "host": f"10.1.1.{i}", "address": f"10.1.1.{i}",
         "server_url": f"https://om{i}.example.org/openmeetings", "roles": ["om"]}
        for i in (1, 2)
    ]
    nodes.append({"name": "db", "host": "10.1.1.9", "roles": ["database"]})
    return {
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
        "nodes": nodes,
        "database": {"type": "mariadb", "host": "10.1.1.9", "name": "openmeetings",
                     "user": "om", "password": "${OMW_DB_PASSWORD}",
                     "admin_user": "root", "admin_password": "${OMW_DB_ADMIN}"},
        "storage": {"kind": "existing"},
    }


ENV = {"OMW_DB_PASSWORD": SECRET, "OMW_DB_ADMIN": ADMIN}


@pytest.fixture
def plan():
    return plan_from_dict(plan_dict(), env=ENV)


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state")
    store.set_result("preflight/om-installed/om1", {
        "section": "preflight", "step": "om-installed", "node": "om1", "status": "ok",
        "detail": "OpenMeetings 9.1.0", "changes": [], "at": 1764000000.0,
        "data": OmInstall((9, 1, 0)).to_json()})  # as the engine saves it
    store.set_result("nodes/hazelcast-xml/om1", {
        "section": "nodes", "step": "hazelcast-xml", "node": "om1", "status": "changed",
        "detail": "instance-name om1", "changes": [], "evidence": [f"password={SECRET}"]})
    store.set_result("verify/health/om2", {
        "section": "verify", "step": "health", "node": "om2", "status": "failed",
        "detail": "unhealthy", "remedy": "check the database", "changes": []})
    rec = store.journal_begin({"section": "nodes", "step": "hazelcast-xml", "node": "om1",
                               "kind": "file", "target": "/opt/om/hazelcast.xml",
                               "undo": "restore /opt/om/hazelcast.xml from its backup"})
    store.journal_end(rec, "done")
    rec = store.journal_begin({"section": "database", "step": "remote-user", "node": "db",
                               "kind": "command", "target": f"mysql -p{ADMIN}",
                               "undo": "DROP USER"})
    store.journal_end(rec, "done")
    return store


def test_manual_instructions_use_real_names(plan) -> None:
    checks = manual_instructions(plan)
    assert [c["id"] for c in checks] == list(MANUAL_CHECKS) == ["same-room", "different-rooms"]
    text = yaml.safe_dump(checks)
    assert "https://om1.example.org/openmeetings" in text and "om2" in text
    assert "Administration > Connections" in text and "Server Name" in text
    assert "db" not in [w.strip(",.()") for w in " ".join(checks[1]["expect"]).split()]


def test_record_answer(state: StateStore) -> None:
    answer = record_answer(state, "same-room", "pass", "both in room 5")
    stored = state.answers()["same-room"]
    assert stored["verdict"] == "pass" and stored["note"] == "both in room 5"
    assert stored["at"] == answer["at"] and stored["at"].endswith(("Z", "+00:00"))
    with pytest.raises(KeyError) as info:
        record_answer(state, "nope", "pass", "")
    assert info.value.args[0] == "unknown manual check nope; choose same-room or different-rooms"
    with pytest.raises(ValueError):
        record_answer(state, "same-room", "maybe", "")


def test_export_round_trip_and_no_secrets(plan, state: StateStore, tmp_path: Path) -> None:
    record_answer(state, "different-rooms", "fail", "both on om1")
    out = write_export(plan, state, tmp_path / "export.yaml")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert SECRET not in text and ADMIN not in text
    again = load_plan(out, env=ENV)
    assert plan_to_dict(again) == plan_to_dict(plan)
    report = yaml.safe_load(text)["report"]
    assert report["om_versions"] == {"om1": "9.1.0"}
    entry = report["sections"]["nodes"]["hazelcast-xml"]["om1"]
    assert entry["status"] == "changed"
    assert entry["changes"][0]["undo"].startswith("restore /opt/om/hazelcast.xml")
    assert report["sections"]["verify"]["health"]["om2"]["remedy"] == "check the database"
    assert report["sections"]["database"]["remote-user"]["db"]["status"] == "not checked"
    assert report["manual_checks"]["different-rooms"]["verdict"] == "fail"
    assert report["manual_checks"]["same-room"]["verdict"] == "not answered"
    assert not list(tmp_path.glob(".export.yaml.*"))  # no temp file left


def test_export_overwrites_atomically(plan, state: StateStore, tmp_path: Path) -> None:
    target = tmp_path / "export.yaml"
    target.write_text("old")
    target.chmod(0o644)
    write_export(plan, state, target)
    assert target.read_text().startswith("# omwizard export")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_export_into_a_folder_and_a_missing_folder(plan, state: StateStore, tmp_path: Path) -> None:
    """Both faces: a folder gets <cluster>-omwizard.yaml; a missing folder is a clear error."""
    out = write_export(plan, state, tmp_path)
    assert out == (tmp_path / f"{plan.cluster.name}-omwizard.yaml").resolve()
    assert out.is_file()
    with pytest.raises(ExportError, match="does not exist; create it"):
        write_export(plan, state, tmp_path / "nowhere" / "x.yaml")
    assert not (tmp_path / "nowhere").exists()
