"""The Session: one builder for every face (lock, redactor, lazy pool, JSON document, close)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from omwizard.engine.events import EventBus
from omwizard.engine.session import Session, document, open_state
from omwizard.engine.state import StateLocked, StateStore
from omwizard.engine.step import Result
from omwizard.lab import shared_dir
from omwizard.plan.model import Node, Plan, plan_from_dict
from tests.unit.test_engine_free_of_ui import fresh_python

DB_PASSWORD = "db-Secret-4711"
ADMIN_PASSWORD = "admin<Secret>&9"
SUDO_PASSWORD = "sudo-Secret-0815"

PLAN: dict[str, Any] = {
    "omwizard": 1,
    "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
    "nodes": [
        {"name": "om1", "host": "192.0.2.1", "roles": ["om", "storage", "database"],
         "server_url": "https://om1.example.org/openmeetings"},
        {"name": "om2", "host": "192.0.2.2", "server_url": "https://om2.example.org/openmeetings"},
    ],
    "database": {"type": "mysql", "host": "192.0.2.1", "name": "openmeetings", "user": "om",
                 "password": "${OMW_DB_PASSWORD}", "manage": True, "admin_user": "root",
                 "admin_password": "${OMW_DB_ADMIN_PASSWORD}"},
}
ENV = {"OMW_DB_PASSWORD": DB_PASSWORD, "OMW_DB_ADMIN_PASSWORD": ADMIN_PASSWORD}


def make_plan(**nodes: str) -> Plan:
    data = json.loads(json.dumps(PLAN))
    for name, host in nodes.items():
        data["nodes"].append({"name": name, "host": host,
                              "server_url": f"https://{name}.example.org/openmeetings"})
    return plan_from_dict(data, env=ENV)


class FakePool:
    """Stands in for RemotePool: remembers its hooks and whether (and how) it was closed."""

    def __init__(self, *, confirm_host_key: Any = None, ask_password: Any = None,
                 hang: bool = False) -> None:
        self.confirm_host_key = confirm_host_key
        self.ask_password = ask_password
        self.hang = hang
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        if self.hang:  # a node that never answers the close
            await asyncio.sleep(3600)


def fake_pools(made: list[FakePool], *, hang: bool = False) -> Any:
    def factory(**hooks: Any) -> FakePool:
        made.append(FakePool(**hooks, hang=hang))
        return made[-1]

    return factory


# -- the state lock -------------------------------------------------------------------------------


async def test_open_takes_the_lock_and_close_releases_it(tmp_path: Path) -> None:
    session = Session.open(make_plan(), tmp_path / "state")
    assert session.state is not None and session.state.locked
    with pytest.raises(StateLocked) as info:
        Session.open(make_plan(), tmp_path / "state")
    assert info.value.pid == os.getpid()
    await session.close()
    assert not session.state.locked
    again = Session.open(make_plan(), tmp_path / "state")  # released: the next one gets it
    await again.close()


def test_locked_error_names_the_plans_cluster_not_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    holder = StateStore(folder)
    with holder:
        with pytest.raises(StateLocked) as info:
            open_state(make_plan(), folder)
    err = info.value
    assert err.cluster == "prod" and err.pid == os.getpid() and err.host
    assert err.path == folder / "lock"
    assert "is working on cluster prod" in str(err) and f"pid {os.getpid()}" in str(err)


def test_default_state_folder_is_the_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    store = open_state(make_plan(), None, lock=False)
    assert store.directory == tmp_path / "omwizard" / "prod"
    assert not store.locked


async def test_close_twice_and_as_context_manager(tmp_path: Path) -> None:
    made: list[FakePool] = []
    async with Session.open(make_plan(), tmp_path / "s", pool_factory=fake_pools(made)) as s:
        assert s.pool is s.pool  # one pool, made on first use
    assert len(made) == 1 and made[0].closed == 1
    assert s.state is not None and not s.state.locked
    await s.close()
    await s.close()
    assert made[0].closed == 1  # nothing closed twice, nothing raised


async def test_close_is_bounded_and_still_unlocks(tmp_path: Path) -> None:
    made: list[FakePool] = []
    session = Session.open(make_plan(), tmp_path / "s", pool_factory=fake_pools(made, hang=True))
    session.pool  # noqa: B018 - made on first use
    began = time.monotonic()
    await session.close(timeout=0.2)
    assert time.monotonic() - began < 2
    assert session.state is not None and not session.state.locked


async def test_close_unlocks_even_when_cancelled(tmp_path: Path) -> None:
    made: list[FakePool] = []
    session = Session.open(make_plan(), tmp_path / "s", pool_factory=fake_pools(made, hang=True))
    session.pool  # noqa: B018
    task = asyncio.ensure_future(session.close(timeout=60))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.state is not None and not session.state.locked


async def test_without_state_nothing_is_locked() -> None:
    session = Session(make_plan())
    assert session.state is None
    await session.close()


# -- the redactor ---------------------------------------------------------------------------------


def test_redactor_covers_the_plans_secrets() -> None:
    session = Session(make_plan())
    text = f"pw={DB_PASSWORD} admin={ADMIN_PASSWORD} xml=admin&lt;Secret&gt;&amp;9"
    shown = session.redact(text)
    assert DB_PASSWORD not in shown and ADMIN_PASSWORD not in shown
    assert "Secret" not in shown
    assert shown == "pw=******** admin=******** xml=********"


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_sudo_password_is_redacted_once_given(asynchronous: bool) -> None:
    """The pool's ask_password hook is the session's: the answer is learnt before it is used."""
    asked: list[str] = []

    def ask(node: Node, prompt: str) -> str:
        asked.append(prompt)
        return SUDO_PASSWORD

    async def ask_async(node: Node, prompt: str) -> str:
        return ask(node, prompt)

    plan = make_plan()
    session = Session(plan, ask_password=ask_async if asynchronous else ask)
    assert SUDO_PASSWORD in session.redact(f"x {SUDO_PASSWORD}")  # not known yet
    hook = session.pool.ask_password  # what the pool calls when sudo asks
    assert hook is not None
    pending = hook(plan.nodes[0], "sudo password for root@om1")
    assert asyncio.iscoroutine(pending)
    answer = await pending
    assert answer == SUDO_PASSWORD and asked == ["sudo password for root@om1"]
    assert session.redact(f"x {SUDO_PASSWORD}") == "x ********"
    await session.close()


async def test_no_asker_means_the_pool_asks_nothing() -> None:
    session = Session(make_plan())
    assert session.pool.ask_password is None and session.pool.confirm_host_key is None
    await session.close()


async def test_host_key_hook_reaches_the_pool() -> None:
    def confirm(node: Node, host: str, port: int, fingerprint: str) -> bool:
        return True

    session = Session(make_plan(), confirm_host_key=confirm)
    assert session.pool.confirm_host_key is confirm
    await session.close()


async def test_engine_uses_the_sessions_parts() -> None:
    bus = EventBus()
    session = Session(make_plan(), bus=bus, pool_factory=fake_pools([]))
    engine = session.engine(["network"], ["om2"], dry_run=True, force=True, steps=["route"])
    assert engine.pool is session.pool and engine.bus is bus and session.bus is bus
    assert engine.redact is session.redact and engine.state is session.state
    assert engine.sections == ["network"] and [n.name for n in engine.nodes] == ["om2"]
    assert engine.dry_run and engine.force and engine.only_steps == {"route"}
    whole = session.engine()
    assert [n.name for n in whole.nodes] == ["om1", "om2"] and not whole.dry_run
    await session.close()


async def test_set_plan_learns_secrets_and_renews_the_pool_only_for_new_nodes() -> None:
    made: list[FakePool] = []
    session = Session(make_plan(), pool_factory=fake_pools(made))
    first = session.pool
    data = json.loads(json.dumps(PLAN))
    data["database"]["password"] = "${OTHER}"
    session.set_plan(plan_from_dict(data, env={**ENV, "OTHER": "another-Secret-1"}))
    assert session.pool is first
    assert session.redact("another-Secret-1 " + DB_PASSWORD) == "******** ********"
    session.set_plan(make_plan(om3="192.0.2.3"))
    assert session.plan.node("om3").host == "192.0.2.3"
    second = session.pool
    assert second is not first
    await session.close()
    assert made[0].closed == 1 and made[1].closed == 1


# -- the JSON document ----------------------------------------------------------------------------


def contract_example() -> dict[str, Any]:
    """The `--json` example of the contract (CONTRACT.md)."""
    text = (shared_dir() / "design" / "CONTRACT.md").read_text()
    block = re.search(r"## JSON output.*?```json\n(.*?)```", text, re.S)
    assert block is not None
    return dict(json.loads(block.group(1)))


def test_document_has_the_contracts_shape() -> None:
    example = contract_example()
    (shown,) = example["results"]
    result = Result(section=shown["section"], step=shown["step"], node=shown["node"],
                    status=shown["status"], detail=shown["detail"], changes=shown["changes"])
    doc = Session(make_plan()).document("check", [result])
    assert list(doc) == list(example)
    assert doc["omwizard"] == example["omwizard"] == 1
    assert doc["command"] == example["command"]
    assert doc["cluster"] == example["cluster"]
    assert doc["results"] == example["results"]
    assert list(doc["summary"]) == list(example["summary"])
    assert doc["summary"] == {"ok": 1, "changed": 0, "needs_change": 0, "failed": 0, "skipped": 0}
    assert json.loads(json.dumps(doc)) == doc


def test_document_summary_counts_the_extra_statuses_when_present() -> None:
    def r(status: str, node: str) -> Result:
        return Result(section="nodes", step="hazelcast", node=node, status=status, detail="x")

    doc = document("apply", "prod", [r("would-change", "om1"), r("failed", "om2"),
                                     r("rolled-back", "om1")])
    assert doc["command"] == "apply" and doc["cluster"] == "prod"
    assert doc["summary"] == {"ok": 0, "changed": 0, "needs_change": 0, "failed": 1,
                              "skipped": 0, "would_change": 1, "rolled_back": 1}
    assert [x["status"] for x in doc["results"]] == ["would-change", "failed", "rolled-back"]


# -- imports --------------------------------------------------------------------------------------


def test_session_loads_without_asyncssh() -> None:
    """Building a session, its redactor and its document must not pull in asyncssh (the
    TUI's first screen); only the pool, on first use, does."""
    code = (
        "import sys\n"
        "from omwizard.engine.session import Session\n"
        "from omwizard.plan.model import plan_from_dict\n"
        f"plan = plan_from_dict({PLAN!r}, env={ENV!r})\n"
        "s = Session(plan)\n"
        "s.document('check', [])\n"
        "s.redact('x')\n"
        "print('asyncssh' in sys.modules)\n"
        "s.pool\n"
        "print('asyncssh' in sys.modules)\n"
    )
    assert fresh_python(code).split() == ["False", "True"]
