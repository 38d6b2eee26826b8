"""Snapshots of key screens with host-neutral content (no lab, no clock, no host names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.engine.state import StateStore
from omwizard.plan.model import dump_plan, plan_from_dict
from omwizard.tui.app import make_app
from tests.ui.conftest import neutral_plan_dict

ENV = {"OMW_DB_PASSWORD": "pw"}


def demo_state(base: Path) -> None:
    plan = plan_from_dict(neutral_plan_dict(), env=ENV)
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


def test_welcome_snapshot(snap_compare, fixed_home: Path) -> None:
    app = make_app(None, env=ENV, state_base=fixed_home)
    assert snap_compare(app, terminal_size=(80, 24))


def test_inventory_snapshot(snap_compare, fixed_home: Path, tmp_path: Path) -> None:
    import yaml

    data = neutral_plan_dict()
    data["nodes"][1]["address"] = "192.0.2.300"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data))
    app = make_app(None, str(tmp_path / "s"), env=ENV, state_base=fixed_home)

    async def run_before(pilot) -> None:
        app.plan_data = data
        app.goto_inventory()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 36), run_before=run_before)


def test_section_snapshot(snap_compare, fixed_home: Path) -> None:
    app = make_app(None, env=ENV, state_base=fixed_home)

    async def run_before(pilot) -> None:
        await pilot.press("r")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_hostkey_modal_snapshot(snap_compare, fixed_home: Path) -> None:
    from omwizard.tui.screens.modals import HostKeyScreen

    app = make_app(None, env=ENV, state_base=fixed_home)

    async def run_before(pilot) -> None:
        app.push_screen(HostKeyScreen("om1", "192.0.2.11", 22,
                                      "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
