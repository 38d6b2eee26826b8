"""Issue #17 point 9 in the TUI: counts that add up and statuses that say what happens."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.widgets import DataTable, Label, OptionList, TabbedContent

from omwizard.engine.events import StepFinished, StepStarted
from omwizard.engine.state import StateStore
from omwizard.engine.step import STATUS_SYMBOLS, Result
from omwizard.tui.app import make_app
from omwizard.tui.screens import section as section_module
from omwizard.tui.screens.modals import ConfirmScreen
from omwizard.tui.screens.section import SectionScreen
from omwizard.tui.screens.welcome import WelcomeScreen


async def test_welcome_counts_show_failures_and_add_up(
    state_home: Path, neutral_plan: Path
) -> None:
    store = StateStore(state_home / "demo")
    store.save_plan(neutral_plan.read_text())
    for i in range(18):
        status = "ok" if i < 2 else "failed"
        store.set_result(f"preflight/step{i}/om1",
                         {"section": "preflight", "step": f"step{i}", "node": "om1",
                          "status": status, "detail": "", "changes": []})
    app = make_app(None, env={})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        line = str(app.screen.query_one("#sessions", OptionList).get_option_at_index(0).prompt)
        assert "18 results: 16 failed, 2 ok" in line, line
        assert "2/18" not in line and "done" not in line
        await pilot.press("ctrl+q")


class _FakeEngine:
    """What run_apply drives: a dry run that would change om1, then the change."""

    def __init__(self, bus: Any, dry_run: bool) -> None:
        self.bus, self.dry_run = bus, dry_run
        self.unreached: dict[str, str] = {}

    async def apply_step(self, step: Any) -> list[Result]:
        self.bus.emit(StepStarted(step.section, step.name, "om1", "check"))
        status = "would-change" if self.dry_run else "changed"
        change = {"kind": "command", "target": "timedatectl set-timezone Europe/Berlin",
                  "undo": "timedatectl set-timezone UTC"}
        result = Result(step.section, step.name, "om1", status, "zone", changes=[change])
        self.bus.emit(StepFinished(result))
        return [result]

    async def check_step(self, step: Any) -> list[Result]:
        return []


async def test_apply_time_leaves_out_the_dialog_and_grid_is_not_running_while_asking(
    state_home: Path, neutral_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    real = time.monotonic
    monkeypatch.setattr(section_module, "time",
                        SimpleNamespace(monotonic=lambda: real() + clock[0]))
    app = make_app(str(neutral_plan), env={"OMW_DB_PASSWORD": "pw"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.goto_section("preflight", "timezone")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        session = screen.session
        monkeypatch.setattr(session, "engine", lambda sections, nodes=None, dry_run=False, **k:
                            _FakeEngine(session.bus, dry_run))
        grid = screen.query_one("#grid", DataTable)
        grid.move_cursor(row=[s.name for s in screen.steps].index("timezone"), column=1)
        await pilot.press("a")
        for _ in range(20):
            await pilot.pause()
            if isinstance(app.screen, ConfirmScreen):
                break
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.pause(0.2)
        cell = str(grid.get_cell("timezone", "om1"))
        assert "⟳" not in cell and "running" not in cell, cell
        await pilot.pause(1.2)  # a tick of the activity line
        activity = str(screen.query_one("#activity", Label).render())
        assert "waiting for your answer" in activity, activity
        assert cell.startswith(STATUS_SYMBOLS["would-change"]), cell
        clock[0] += 100  # the operator reads the diff for 100 s
        await pilot.press("y")
        for _ in range(20):
            await pilot.pause()
            if not screen.busy:
                break
        activity = str(screen.query_one("#activity", Label).render())
        assert "applied 1 step in 0s" in activity, activity
        # the tab shows the results of the apply again, not the diff that was answered
        assert screen.query_one("#tabs", TabbedContent).active == "tab-log"
        await pilot.press("ctrl+q")


async def test_resume_dialog_counts_failures_first_and_the_total(
    state_home: Path, neutral_plan: Path
) -> None:
    store = StateStore(state_home / "demo")
    for i, status in enumerate(["failed", "failed", "ok"]):
        store.set_result(f"preflight/s{i}/om1", {"section": "preflight", "step": f"s{i}",
                                                 "node": "om1", "status": status,
                                                 "detail": "", "changes": []})
    app = make_app(str(neutral_plan), env={"OMW_DB_PASSWORD": "pw"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = str(app.screen.query_one("#dialog-text").render())
        assert "3 results: 2 failed, 1 ok" in body, body
        await pilot.press("ctrl+q")
