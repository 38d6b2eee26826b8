"""Snapshots of key screens with host-neutral content (no lab, no clock, no host names)."""

from __future__ import annotations

from pathlib import Path

from omwizard.tui.app import make_app
from tests.ui.conftest import SNAPSHOT_ENV as ENV
from tests.ui.conftest import neutral_plan_dict


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
