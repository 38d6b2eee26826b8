"""The TUI against the lab: test connections with a host-key confirmation, a section applied
and rolled back, quit mid-section and resume on the same step. Short runs: one lab per machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable

from omwizard.app import make_app, section_steps
from omwizard.screens.inventory import InventoryScreen
from omwizard.screens.modals import ConfirmScreen, HostKeyScreen
from omwizard.screens.section import SectionScreen

pytestmark = pytest.mark.lab
ENV = {"OMW_DB_PASSWORD": "labpass"}


async def until(pilot, cond: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.1)


async def answer_modals(
    pilot, app, done: Callable[[], bool], seen: list, timeout: float = 120
) -> None:
    """Say yes to every confirmation (recording it) until done()."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the engine")
        if isinstance(app.screen, ConfirmScreen):
            seen.append(app.screen)
            await pilot.press("y")
        await pilot.pause(0.1)


def idle(app) -> Callable[[], bool]:
    return lambda: (not any(w.is_running for w in app.workers)
                    and not isinstance(app.screen, ConfirmScreen))


async def test_test_connections_confirms_fingerprint(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml",
                                ssh={"known_hosts": str(known), "host_keys": "strict"})
    app = make_app(str(plan), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        screen = app.screen
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        modal = app.screen
        assert modal.fingerprint.startswith("SHA256:")
        assert modal.fingerprint in str(modal.query_one("#dialog-text").render())
        seen: list = []
        await answer_modals(pilot, app, lambda: not any(
            w.is_running for w in app.workers if w.group == "test-connections"), seen)
        assert len(app.host_key_answers) == len(fresh_lab.nodes) + 1
        assert all(trusted for _, _, trusted in app.host_key_answers)
        assert known.read_text().count("\n") >= len(fresh_lab.nodes) + 1
        rows = screen.connection_rows
        assert all(r["ssh"].startswith("✓") for r in rows.values()), rows
        assert "9.1.0" in rows["n1"]["om"]
        assert rows["db"]["om"].startswith("-")
        table = screen.query_one("#connections", DataTable)
        assert "✓" in str(table.get_row_at(0)[1])
        await pilot.press("ctrl+q")


async def test_section_apply_rollback_quit_resume(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    steps = section_steps("network")
    if not steps:
        pytest.skip("the network section is not written yet")
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml")
    state_dir = tmp_path / "session"

    def route(name: str) -> str:
        return fresh_lab.nodes[name].run(["ip", "route", "show", "224.0.0.0/4"]).stdout.strip()

    assert route("n1") == ""
    app = make_app(str(plan), str(state_dir), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        await pilot.pause(0.3)
        app.goto_section("network")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen))
        screen = app.screen
        await pilot.press("A")
        seen: list = []
        await pilot.pause(0.5)
        await answer_modals(pilot, app, idle(app), seen)
        # the diff / change list was shown before the change
        assert any("route" in s.body for s in seen), [s.body for s in seen]
        results = app.state.results()
        net = {k: v["status"] for k, v in results.items() if k.startswith("network/")}
        assert net and all(s in ("ok", "changed", "skipped") for s in net.values()), net
        assert "224.0.0.0/4" in route("n1")
        grid = screen.query_one("#grid", DataTable)
        cells = [str(c) for row in range(grid.row_count) for c in grid.get_row_at(row)]
        assert not any("✗" in c for c in cells), cells
        # roll the section back: the confirmation lists what the journal will undo
        seen.clear()
        await pilot.press("B")
        await pilot.pause(0.3)
        await answer_modals(pilot, app, idle(app), seen)
        assert seen and "n1" in seen[0].body
        assert route("n1") == "" and route("n2") == ""
        # quit mid-section on a given step
        grid.move_cursor(row=1, column=1)
        await pilot.pause()
        step_name = screen.current_step.name
        await pilot.press("ctrl+q")
    app2 = make_app(str(plan), str(state_dir), env=ENV)
    async with app2.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app2.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app2.screen, SectionScreen))
        assert app2.screen.section == "network"
        assert app2.screen.current_step.name == step_name
        await pilot.press("ctrl+q")
