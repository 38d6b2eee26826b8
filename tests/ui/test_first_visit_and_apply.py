"""Issue #17, last parts: a section's first visit checks it by itself (only in an operator's
run, never in a Pilot test on example addresses); the TUI's apply says an unreachable node's
connection error once per run; the Log tab shows results and changes, its raw view the rest.

The nodes here are loopback addresses with a port nothing listens on: a real pool, a real
"connection refused", no lab needed, and no example address contacted.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import RichLog

from omwizard.engine.events import CommandRun, OutputLine, StepFinished, StepStarted
from omwizard.engine.step import Result
from omwizard.tui.app import make_app
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.modals import ConfirmScreen
from omwizard.tui.screens.section import SectionScreen
from tests.ui.conftest import neutral_plan_dict

ENV = {"OMW_DB_PASSWORD": "pw"}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def refused_plan(tmp_path: Path) -> Path:
    """The neutral plan on loopback addresses whose SSH port refuses: every node unreachable."""
    data: dict[str, Any] = neutral_plan_dict()
    data["ssh"]["port"] = closed_port()
    hosts = {"om1": "127.0.0.11", "om2": "127.0.0.12", "db": "127.0.0.20"}
    for node in data["nodes"]:
        node["host"] = node["address"] = hosts[node["name"]]
    data["database"]["host"] = hosts["db"]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


def idle(app: Any) -> bool:
    return not any(w.is_running for w in app.workers) and not isinstance(app.screen,
                                                                         ConfirmScreen)


# -- a first visit checks by itself, only where the App was told to ---------------------------

async def test_first_visit_checks_the_section_when_the_app_runs_for_an_operator(
    state_home: Path, refused_plan: Path
) -> None:
    app = make_app(str(refused_plan), env=ENV)
    app.auto_check = True  # what run_app sets
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        app.goto_section("preflight")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and bool(app.screen.query("#grid")))
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        # no key pressed: every step of the section gets a result on every node
        await until(pilot, lambda: len(screen.results) == len(screen.steps) * 3 and idle(app))
        ssh = screen.results["ssh/om1"]
        assert ssh["status"] == "failed" and "refused" in ssh["detail"], ssh
        assert not screen.query_one("#first-visit").display
        # a second visit (results exist) does not check again
        app.goto_section("network")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and app.screen.section == "network")
        await until(pilot, lambda: idle(app) and bool(app.screen.results))
        app.goto_section("preflight")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and app.screen.section == "preflight")
        await pilot.pause(0.3)
        assert not app.screen.busy
        await pilot.press("ctrl+q")


async def test_first_visit_in_a_test_app_waits_for_a_key(
    state_home: Path, neutral_plan: Path
) -> None:
    """make_app (every Pilot test) leaves auto_check off: example addresses are never
    contacted, the hint says which key checks."""
    app = make_app(str(neutral_plan), env=ENV)
    assert app.auto_check is False
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        app.goto_section("preflight")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen))
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        assert not screen.busy and not screen.results
        assert screen.query_one("#first-visit").display
        await pilot.press("ctrl+q")


def test_run_app_asks_for_the_first_visit_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the real entry point turns it on."""
    from omwizard.tui import app as app_module

    seen: list[Any] = []

    def fake_run(self: Any, *a: Any, **k: Any) -> int:
        seen.append(self)
        return 0

    monkeypatch.setattr(app_module.OmWizardApp, "run", fake_run)
    assert app_module.run_app(None) == 0
    assert seen and seen[0].auto_check is True


# -- apply: an unreachable node is said once per run ------------------------------------------

async def test_apply_says_an_unreachable_node_once_per_run(
    state_home: Path, refused_plan: Path
) -> None:
    app = make_app(str(refused_plan), env=ENV)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        app.goto_section("preflight")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and bool(app.screen.query("#grid")))
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        await pilot.press("A")
        await pilot.pause(0.2)
        await until(pilot, lambda: idle(app) and not screen.busy)
        for node in ("om1", "om2", "db"):
            failed = [r for k, r in screen.results.items()
                      if k.endswith(f"/{node}") and r["status"] == "failed"]
            assert len(failed) >= 2, failed  # more than one step ran on the node
            said = [r for r in failed if "refused" in r["detail"]]
            assert len(said) == 1, [r["detail"] for r in failed]
            others = [r for r in failed if r not in said]
            assert all("could not be reached (see preflight." in r["detail"] for r in others)
        await pilot.press("ctrl+q")


# -- the Log tab: results and changes; the raw view has the plumbing --------------------------

def shown(screen: SectionScreen) -> str:
    return "\n".join(strip.text for strip in screen.query_one("#log", RichLog).lines)


async def test_log_shows_results_and_changes_raw_view_the_plumbing(
    state_home: Path, neutral_plan: Path
) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        app.goto_section("preflight")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and bool(app.screen.query("#grid")))
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        bus = app.bus
        probe = "sh -c 'cat /etc/os-release; printf '\\n\\036OMW 1 0\\n''"
        bus.emit(StepStarted("preflight", "timezone", "om1", "check"))
        bus.emit(CommandRun("om1", probe, "preflight.timezone"))
        bus.emit(OutputLine("om1", "", "preflight.timezone"))
        bus.emit(OutputLine("om1", "\x1eOMW 1 0", "preflight.timezone"))
        from omwizard.engine.events import ChangeMade

        bus.emit(ChangeMade("preflight", "timezone", "om1",
                            {"kind": "command", "target": "timedatectl set-timezone Europe/Berlin",
                             "undo": "timedatectl set-timezone UTC"}))
        bus.emit(StepFinished(Result("preflight", "timezone", "om1", "changed",
                                     "time zone is Europe/Berlin")))
        await pilot.pause(0.3)
        text = shown(screen)
        assert "timezone: changed time zone is Europe/Berlin" in text
        assert "changed command: timedatectl set-timezone Europe/Berlin" in text
        assert "OMW" not in text and "$ " not in text and "os-release" not in text
        assert "[om1] \n" not in text + "\n" and not any(
            line.strip() == "[om1]" for line in text.splitlines())
        assert "check preflight.timezone" not in text
        # l: the raw view, everything; the tab says so; l again: back
        await pilot.press("l")
        await pilot.pause(0.2)
        raw = shown(screen)
        assert "os-release" in raw and "OMW" in raw and "check preflight.timezone" in raw
        assert "timezone: changed" in raw
        tabs = screen.query_one("#tabs")
        assert "raw" in str(tabs.get_tab("tab-log").label).lower()  # type: ignore[attr-defined]
        await pilot.press("l")
        await pilot.pause(0.2)
        assert "os-release" not in shown(screen) and "timezone: changed" in shown(screen)
        # the key is on the footer and in the legend
        assert any(key == "l" for key, _ in screen.key_legend())
        await pilot.press("ctrl+q")


# -- what a resumed screen and the export say about the results they hold ---------------------

async def test_resumed_section_and_export_say_what_the_results_are(results_home: Path) -> None:
    from textual.widgets import Input, Static

    from omwizard.tui.screens.export import ExportScreen

    app = make_app(None, env=ENV, state_base=results_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen)
                    and bool(app.screen.query("#grid")))
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        await pilot.pause(0.3)
        first = " ".join(shown(screen).split())
        assert "saved results of this section:" in first, first
        assert "failed" in first and "c or C checks again" in first
        # the failures come first, and the numbers add up to the results the grid holds
        total = len(screen.results)
        assert f"{total} results: " in first and first.index("failed") < first.index(" ok")
        app.goto_export()
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        await pilot.pause()
        export = app.screen
        summary = str(export.query_one("#report-summary", Static).render())
        assert "The report:" in summary and "failed" in summary, summary
        assert "Manual checks answered: 1 of 2 (1 pass)" in summary, summary
        # paths under the home folder read as ~/...
        assert export.query_one("#export-path", Input).value.startswith("~/omwizard/demo/")
        await pilot.press("ctrl+q")
