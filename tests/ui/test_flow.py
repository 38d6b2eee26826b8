"""Pilot tests without hosts: welcome, inventory validation, plan persistence, resume, export."""

from __future__ import annotations

from pathlib import Path

import yaml
from textual.widgets import DataTable, Input, OptionList, Static

from omwizard.engine.state import StateStore
from omwizard.tui.app import make_app
from omwizard.tui.screens.export import ExportScreen
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.section import SectionScreen
from omwizard.tui.screens.verify import VerifyScreen
from omwizard.tui.screens.welcome import WelcomeScreen

ENV = {"OMW_DB_PASSWORD": "s3cret-pw"}


def text(widget: Static) -> str:
    return str(widget.render())


async def test_welcome_new_plan_validation_as_you_type(state_home: Path) -> None:
    app = make_app(None, env={})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        start = app.screen.query_one("#start", OptionList)
        assert "New cluster plan" in str(start.get_option_at_index(0).prompt)
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InventoryScreen)
        # empty cluster name: the problem is shown next to the field
        assert "is not valid" in text(screen.query_one("#p-cluster-name", Static))
        screen.query_one("#f-cluster-name", Input).value = "demo"
        await pilot.pause()
        assert not screen.query_one("#p-cluster-name", Static).display
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert screen.query_one("#nodes", DataTable).row_count == 1
        screen.query_one("#f-node-host", Input).value = "10.0.0.300"
        await pilot.pause()
        problem = text(screen.query_one("#p-node-host", Static))
        assert "neither a host name nor an IPv4 address" in problem
        screen.query_one("#f-node-host", Input).value = "10.0.0.1"
        screen.query_one("#f-node-server_url", Input).value = "ftp://x"
        await pilot.pause()
        assert "http" in text(screen.query_one("#p-node-server_url", Static))
        assert not screen.query_one("#p-node-host", Static).display
        # the table marks the node with a problem
        assert screen.query_one("#nodes", DataTable).get_row_at(0)[4] == "✗"
        assert any("at least 2" in p.message for p in screen.problems)


async def test_inventory_valid_plan_saved_without_secrets(
    state_home: Path, neutral_plan: Path
) -> None:
    app = make_app(str(neutral_plan), env={})
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InventoryScreen)
        assert [p.path for p in screen.problems] == ["database.password"]
        pw = screen.query_one("#db-password", Input)
        assert pw.password
        pw.value = "typed-secret"
        await pilot.pause()
        assert screen.problems == []
        assert "valid" in text(screen.query_one("#problems", Static))
        screen.query_one("#f-cluster-om_home", Input).value = "/opt/openmeetings"
        await pilot.pause(1.3)  # saving is debounced
        saved = (state_home / "demo" / "plan.yaml").read_text()
        assert "om_home: /opt/openmeetings" in saved
        assert "typed-secret" not in saved and "${OMW_DB_PASSWORD}" in saved
        assert app.plan.database.password.value == "typed-secret"
        await pilot.press("ctrl+q")
    for f in (state_home / "demo").iterdir():
        assert "typed-secret" not in f.read_text(errors="replace")


async def test_resume_opens_first_unfinished_section_and_step(
    state_home: Path, neutral_plan: Path
) -> None:
    from omwizard.plan.model import dump_plan, load_plan

    plan = load_plan(neutral_plan, env=ENV)
    store = StateStore(state_home / "demo")
    store.save_plan(dump_plan(plan))
    for node in ("om1", "om2", "db"):
        store.set_result(f"preflight/ssh/{node}", {"section": "preflight", "step": "ssh",
                         "node": node, "status": "ok", "detail": "logged in", "changes": []})
    store.set_result("preflight/om-installed/om1", {"section": "preflight", "step": "om-installed",
                     "node": "om1", "status": "ok", "detail": "OpenMeetings 9.1.0", "changes": []})
    store.touch(section="preflight", step="timezone")
    app = make_app(None, env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.pause()
        sessions = app.screen.query_one("#sessions", OptionList)
        assert "demo" in str(sessions.get_option_at_index(0).prompt)
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SectionScreen) and screen.section == "preflight"
        assert screen.current_step.name == "timezone"
        grid = screen.query_one("#grid", DataTable)
        assert "✓" in str(grid.get_cell("ssh", "om2"))
        assert screen.status_of("om-installed", "om1") == "ok"
        assert screen.status_of("om-installed", "om2") is None
        # the documentation's words beside the step
        assert "same Time zone" in text(screen.query_one("#doc", Static))
        await pilot.press("ctrl+q")


async def test_plan_file_with_session_offers_resume(state_home: Path, neutral_plan: Path) -> None:
    store = StateStore(state_home / "demo")
    store.touch(section="network", step="multicast-route")
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Resume" in text(app.screen.query_one("#dialog-title"))
        await pilot.press("n")  # no: go to the inventory
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)


async def test_skip_with_reason_and_verify_answers_and_export(
    state_home: Path, neutral_plan: Path, tmp_path: Path
) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.pause()
        app.goto_section("preflight", "timezone")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        await pilot.press(*"ntp managed elsewhere", "enter")
        await pilot.pause()
        results = app.state.results()
        assert results["preflight/timezone/om1"]["status"] == "skipped"
        assert "ntp managed elsewhere" in results["preflight/timezone/db"]["detail"]
        app.goto_section("verify")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, VerifyScreen)
        await pilot.press("m")
        await pilot.pause()
        screen.query_one("#note-same-room", Input).value = "both in room 5"
        screen.query_one("#pass-same-room").press()
        await pilot.pause()
        answers = app.state.answers()
        assert answers["same-room"]["verdict"] == "pass"
        assert answers["same-room"]["note"] == "both in room 5"
        assert "pass" in text(screen.query_one("#answer-same-room", Static))
        app.goto_export()
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        out = tmp_path / "export.yaml"
        app.screen.query_one("#export-path", Input).value = str(out)
        await pilot.press("ctrl+s")
        await pilot.pause()
        doc = yaml.safe_load(out.read_text())
        assert doc["cluster"]["name"] == "demo"
        assert "report" in doc
        assert "s3cret-pw" not in out.read_text()
        assert str(state_home / "demo") in text(app.screen.query_one("#session-path", Static))
        await pilot.press("ctrl+q")
