"""The welcome screen's "Troubleshoot an existing cluster" and the doctor screen (no network:
the doctor's results are given as data)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Static

from omwizard.engine.step import Result
from omwizard.facts.doctor import Cause, Diagnosis, NodeView
from omwizard.tui.app import make_app
from omwizard.tui.screens.doctor import DoctorScreen, finding_rows
from omwizard.tui.screens.welcome import WelcomeScreen


def results() -> list[Result]:
    rows = {n: NodeView(n, f"192.0.2.{i}", True, om_version="9.1.0", instance_name=n)
            for i, n in enumerate(("om1", "om2"), start=11)}
    bad = Cause("join-disabled", "om2", apply_section="nodes")
    return [
        Result("doctor", "join", "om1", "ok", "a join method is enabled",
               data=Diagnosis((), rows["om1"])),
        Result("doctor", "join", "om2", "needs-change", "no join method", remedy="apply nodes",
               data=Diagnosis((bad,), rows["om2"])),
        *(Result("doctor", "matrix", n, "ok", "row", data=Diagnosis((), v))
          for n, v in rows.items()),
    ]


def test_finding_rows_come_from_typed_data() -> None:
    assert finding_rows(results()) == [
        ("om2", "join: join-disabled", "no join method", "apply nodes", "apply --section nodes")]


async def test_troubleshoot_from_welcome(state_home: Path) -> None:
    app = make_app(None, env={})
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DoctorScreen)
        screen.query_one("#d-hosts", Input).value = "192.0.2.11"
        screen.action_run()  # one host: refused before anything is contacted
        await pilot.pause()
        assert "at least two hosts" in str(screen.query_one("#d-status", Static).render())
        screen.show(results())
        await pilot.pause()
        matrix = screen.query_one("#d-matrix", DataTable)
        assert matrix.row_count > 5 and len(matrix.columns) == 3
        assert screen.query_one("#d-findings", DataTable).row_count == 1
        screen.action_save()
        await pilot.pause()
        assert "nothing discovered yet" in str(screen.query_one("#d-status", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
