"""Rollback's two resume-and-hook paths, with this machine's files as the node's:
- a file already as it was before the change (a rollback killed after the restore, before the
  journal said so) is marked undone, not reported as changed by someone else;
- a record naming a step's undo (remove-node's dropped MySQL account) without the database
  password at rollback time runs nothing and says the record's words (the real re-creation,
  with the password, is proven on the lab: tests/lab/test_membership_db.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from omwizard.engine.runner import Engine
from omwizard.engine.state import StateStore
from omwizard.facts.membership import DroppedAccount
from omwizard.plan.model import plan_from_dict
from omwizard.remote.results import sha256
from tests.unit.engine.test_step_data import LocalPool, LocalRemote, make_plan


class FileRemote(LocalRemote):
    async def read_file(self, path: str) -> bytes | None:
        p = Path(path)
        return p.read_bytes() if p.exists() else None

    async def write_file(self, path: str, data: bytes, **_: Any) -> bool:
        Path(path).write_bytes(data)
        return True


class FilePool(LocalPool):
    def get(self, node: Any) -> FileRemote:
        return self.remotes.setdefault(node.name, FileRemote("none"))  # type: ignore[return-value]


def test_a_file_found_as_before_is_marked_undone_not_a_conflict(tmp_path: Path) -> None:
    target, backup = tmp_path / "hazelcast.xml", tmp_path / "backup"
    before, after = b"<hazelcast/>\n", b"<hazelcast><n3/></hazelcast>\n"
    target.write_bytes(before)  # the restore happened; the kill came before "undone"
    backup.write_bytes(before)
    store = StateStore(tmp_path / "state")
    rec = store.journal_begin({"section": "nodes", "step": "hazelcast-xml", "node": "om1",
                               "kind": "file", "target": str(target), "undo": "restore it",
                               "backup": str(backup), "before_hash": sha256(before),
                               "after_hash": sha256(after)})
    store.journal_end(rec, "done")
    engine = Engine(make_plan(tmp_path), pool=FilePool(), state=store,  # type: ignore[arg-type]
                    sections=["nodes"], nodes=["om1"])
    results = asyncio.run(engine.rollback())
    assert [r.status for r in results] == ["rolled-back"], results
    assert store.journal()[0]["phase"] == "undone"
    assert target.read_bytes() == before


def test_a_dropped_account_without_the_password_keeps_the_words(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    data = plan_from_dict({**_plan_dict(tmp_path), "database": {
        "type": "mariadb", "host": "192.0.2.20", "name": "om", "user": "om",
        "password": "${OMW_TEST_NO_SUCH_VAR}"}}, env={})
    assert data.database.password.value is None and plan.database.password.value
    store = StateStore(tmp_path / "state")
    words = "nothing run by rollback: the account's password is kept nowhere; put n3 back"
    rec = store.journal_begin({
        "section": "database", "step": "drop-account", "node": "db", "kind": "command",
        "target": "mysql -N -B", "undo": words, "argv": ["mysql", "-N", "-B"],
        "undo_argv": None, "undo_step": "remote-user",
        "undo_data": DroppedAccount("om", "192.0.2.13", "om", True).to_json()})
    store.journal_end(rec, "done")
    pool = FilePool()
    engine = Engine(data, pool=pool, state=store,  # type: ignore[arg-type]
                    sections=["database"], nodes=["db"])
    results = asyncio.run(engine.rollback())
    assert [r.status for r in results] == ["rolled-back"]
    assert [c["undo"] for c in results[0].changes] == [words]
    assert pool.remotes.get("db") is None or pool.remotes["db"].commands == []  # nothing ran
    assert store.journal()[0]["phase"] == "undone"


def _plan_dict(home: Path) -> dict[str, Any]:
    return {
        "omwizard": 1,
        "cluster": {"name": "t", "timezone": "Europe/Berlin", "om_home": str(home)},
        "ssh": {"user": "deploy", "known_hosts": "/nonexistent"},
        "nodes": [
            {"name": "om1", "host": "192.0.2.11", "address": "192.0.2.11", "roles": ["om"]},
            {"name": "om2", "host": "192.0.2.12", "address": "192.0.2.12", "roles": ["om"]},
            {"name": "db", "host": "192.0.2.20", "address": "192.0.2.20",
             "roles": ["database"]},
        ],
        "storage": {"kind": "existing"},
    }
