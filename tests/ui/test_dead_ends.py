"""Issue #17 point 10: no dead ends (quit with a half-filled plan, practise, export)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.widgets import Input

from omwizard.tui.app import make_app
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.modals import ConfirmScreen


async def test_quit_with_a_half_filled_new_plan_asks_first(state_home: Path) -> None:
    app = make_app(None, env={})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InventoryScreen)
        screen.query_one("#f-cluster-name", Input).value = "demo"
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen), "quit lost the edits without asking"
        assert "lose" in str(app.screen.query_one("#dialog-title").render())
        await pilot.press("enter")  # the default is Stay
        await pilot.pause()
        assert app.screen is screen and app.is_running
        assert screen.query_one("#f-cluster-name", Input).value == "demo"
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.return_code == 0


async def test_quit_with_an_untouched_new_plan_does_not_ask(state_home: Path) -> None:
    app = make_app(None, env={})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert app.return_code == 0


async def test_practise_shows_the_exact_command_this_wizard_was_started_with(
    state_home: Path,
) -> None:
    app = make_app(None, env={})
    app.rehearse_command = "sudo /home/op/omwizard/scripts/wizard rehearse"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = str(app.screen.query_one("#dialog-text").render())
        assert "sudo /home/op/omwizard/scripts/wizard rehearse" in body, body
        await pilot.press("y")
        await pilot.pause()
        assert app.is_running and not app.rehearse_requested  # not root: nothing to start
        await pilot.press("ctrl+q")


async def test_practise_starts_the_rehearsal_when_it_can(state_home: Path) -> None:
    app = make_app(None, env={})
    app.rehearse_command, app.can_rehearse = "sudo omwizard rehearse", True
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Start the rehearsal" in str(app.screen.query_one("#yes").render())
        await pilot.press("y")
        await pilot.pause()
        await pilot.pause()
    assert app.rehearse_requested and app.return_code == 0


def test_cli_hands_the_tui_the_command_as_typed_and_runs_the_rehearsal_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omwizard.cli import main as cli
    from omwizard.tui import app as app_module

    seen: dict[str, Any] = {}

    def fake_run_app(plan: Any, state_dir: Any = None, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setenv("OMW_INVOKED_AS", "scripts/wizard")
    monkeypatch.setattr(app_module, "run_app", fake_run_app)
    assert cli.main([]) == 0
    assert seen["rehearse_command"].endswith("scripts/wizard rehearse")
    assert seen["program"] == "scripts/wizard"  # the export names it, not `omwizard`
    assert (seen["rehearse"] is not None) == (os.geteuid() == 0)


async def test_export_goes_to_the_session_folder_and_asks_before_replacing(
    state_home: Path, neutral_plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import Static

    from omwizard.tui.screens.export import ExportScreen

    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app = make_app(str(neutral_plan), env={"OMW_DB_PASSWORD": "pw"})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.goto_export()
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        screen = app.screen
        path = Path(screen.query_one("#export-path", Input).value).expanduser()
        assert path.parent == state_home / "demo", path
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.is_file() and not list(cwd.iterdir())
        other = tmp_path / "taken.yaml"
        other.write_text("mine\n")
        screen.query_one("#export-path", Input).value = str(other)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # default: keep it
        await pilot.pause()
        assert other.read_text() == "mine\n"
        screen.query_one("#export-path", Input).value = str(tmp_path / "no" / "such.yaml")
        await pilot.press("ctrl+s")
        await pilot.pause()
        result = str(screen.query_one("#export-result", Static).render())
        assert "does not exist" in result, result
        await pilot.press("ctrl+q")


async def test_practise_inside_a_rehearsal_says_so_and_names_the_command_as_invoked(
    state_home: Path,
) -> None:
    """Before: "installed: sudo omwizard rehearse" whatever the invocation, and "It needs
    root" to a root operator already in a rehearsal."""
    app = make_app(None, env={})
    app.rehearse_command, app.rehearsing = "scripts/wizard rehearse", True
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = str(app.screen.query_one("#dialog-text").render())
        assert "already runs on a rehearsal cluster" in body, body
        assert "scripts/wizard rehearse" in body
        assert "installed" not in body and "needs root" not in body
        await pilot.press("y")
        await pilot.pause()
        assert app.is_running and not app.rehearse_requested
        await pilot.press("ctrl+q")


def test_the_rehearsal_hands_the_tui_the_command_as_invoked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from omwizard.cli import rehearse
    from omwizard.plan import model
    from omwizard.tui import app as app_module
    from tests.unit.cli.test_rehearse_sessions import fake_start
    from tests.unit.lab.test_omfiles import Out, args

    monkeypatch.setattr(rehearse, "REHEARSAL_DIR", tmp_path / "rehearsal")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("omwizard.engine.step.BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("OMW_INVOKED_AS", "scripts/wizard")
    monkeypatch.setattr(rehearse, "requirements", lambda: None)
    monkeypatch.setattr(rehearse, "_start", fake_start(tmp_path, []))
    monkeypatch.setattr(model, "load_plan", lambda path, **k: SimpleNamespace(
        cluster=SimpleNamespace(name="rehearsal-x")))
    seen: dict[str, Any] = {}

    def fake_run_app(plan: Any, state_dir: Any = None, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(app_module, "run_app", fake_run_app)
    assert rehearse.rehearse(args(headless=False), Out()) == 0
    assert seen["rehearse_command"] == rehearse.as_root("scripts/wizard rehearse")
    assert seen["rehearsing"] is True
    assert seen["program"] == "scripts/wizard"


async def test_export_names_the_program_as_the_operator_runs_it(
    state_home: Path, neutral_plan: Path
) -> None:
    """Before: "re-loadable with `omwizard validate FILE`", with no omwizard on PATH."""
    from textual.widgets import Static

    from omwizard.tui.screens.export import ExportScreen

    app = make_app(str(neutral_plan), env={"OMW_DB_PASSWORD": "pw"})
    app.program = "scripts/wizard"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.goto_export()
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        text = " ".join(str(s.render()) for s in app.screen.query(Static))
        text = " ".join(text.split())
        assert "`scripts/wizard validate FILE`" in text and "start scripts/wizard again" in text
        assert "omwizard validate" not in text
        await pilot.press("ctrl+q")
