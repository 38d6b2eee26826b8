"""Pilot tests without hosts: every screen fits 80x24 in both themes, the Header guard, the
batched live log with its node filter, and the "Ping from…" chooser."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import OptionList, RichLog, Select
from textual.widgets._header import HeaderTitle

from omwizard.engine.events import CommandRun, OutputLine, StepFinished, StepStarted
from omwizard.engine.step import Result
from omwizard.tui.app import make_app
from omwizard.tui.screens.export import ExportScreen
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.modals import ChooseScreen, ConfirmScreen, HostKeyScreen, TextScreen
from omwizard.tui.screens.network import NetworkScreen
from omwizard.tui.screens.section import FIRST_VISIT, SectionScreen
from omwizard.tui.screens.verify import VerifyScreen
from omwizard.tui.screens.welcome import WelcomeScreen
from omwizard.tui.screens.widgets import WizardHeader

ENV = {"OMW_DB_PASSWORD": "s3cret-pw"}
SIZE = (80, 24)


def footer_fits(app, screen) -> None:
    """Every key the footer shows is on screen (none cut off at 80 columns)."""
    keys = list(screen.query_one("Footer").query("FooterKey"))
    assert keys
    for key in keys:
        visible(app, key)
    for i, a in enumerate(keys):  # none hidden under another (the palette key is docked right)
        for b in keys[i + 1:]:
            assert not a.region.overlaps(b.region), (screen, a.key, b.key)


def visible(app, widget: Widget) -> None:
    """The widget is displayed, has room, and lies inside the 80x24 terminal."""
    region = widget.region
    screen = Region(0, 0, *SIZE)
    assert widget.display and region.width > 0 and region.height > 0, (widget, region)
    assert screen.contains_region(region), (widget, region)


async def go(pilot, app, where: str) -> None:
    if where == "welcome":
        app.goto_welcome()
    elif where == "inventory":
        app.goto_inventory()
    elif where == "export":
        app.goto_export()
    else:
        app.goto_section(where)
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_every_screen_fits_80x24(state_home: Path, neutral_plan: Path, theme: str) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.theme = theme
        await go(pilot, app, "welcome")
        s = app.screen
        assert isinstance(s, WelcomeScreen)
        for sel in ("#welcome-title", "#start", "#sessions", "Footer", "WizardHeader"):
            visible(app, s.query_one(sel))
        footer_fits(app, s)
        await go(pilot, app, "inventory")
        s = app.screen
        assert isinstance(s, InventoryScreen)
        for sel in ("#nodes", "#node-buttons", "Footer", "WizardHeader"):
            visible(app, s.query_one(sel))
        footer_fits(app, s)
        for section in ("preflight", "network", "database", "storage", "nodes", "verify"):
            await go(pilot, app, section)
            s = app.screen
            assert isinstance(s, SectionScreen) and s.section == section
            for sel in ("#section-title", "#grid", "#doc", "#tabs", "#log", "Footer"):
                visible(app, s.query_one(sel))
            footer_fits(app, s)
            grid_rows = s.query_one("#grid").region.height
            assert grid_rows >= 3, (section, grid_rows)  # header + at least two steps
            if section == "network":
                assert isinstance(s, NetworkScreen)
                assert s.active_bindings["g"].binding.show
                keys = {k.key: k for k in s.query_one("Footer").query("FooterKey")}
                visible(app, keys["g"])  # "Ping from…" is in the footer, on screen
            if section == "verify":
                assert isinstance(s, VerifyScreen)
                await pilot.press("m")
                await pilot.pause()
                for check in ("same-room", "different-rooms"):
                    # reachable with the keyboard: focusing scrolls it into view
                    button = s.query_one(f"#pass-{check}")
                    button.focus()
                    # the scroll into view is animated: give it a bounded number of frames
                    for _ in range(50):
                        await pilot.pause(0.1)
                        if Region(0, 0, *SIZE).contains_region(button.region):
                            break
                    visible(app, button)
                    visible(app, s.query_one(f"#note-{check}"))
        await go(pilot, app, "export")
        s = app.screen
        assert isinstance(s, ExportScreen)
        for sel in ("#export-path", "#write", "#session-path", "Footer"):
            visible(app, s.query_one(sel))
        footer_fits(app, s)
        # the modals: their buttons (or list) are on screen
        modals = [
            ConfirmScreen("Roll back section network? These changes will be undone:",
                          "\n".join(f"om{i}: multicast-route: ip route del 224.0.0.0/4"
                                    for i in range(40)), "Roll back", "Keep"),
            HostKeyScreen("om1", "192.0.2.11", 22, "SHA256:" + "x" * 43),
            TextScreen("sudo password", "sudo password for omwop@om1", password=True),
            ChooseScreen("Ping from…", "Which node sends?",
                         [("om1", "om1"), ("om2", "om2"), ("*each*", "each node in turn")]),
        ]
        for modal in modals:
            app.push_screen(modal)
            await pilot.pause()
            for widget in modal.query("Button, Input, OptionList"):
                visible(app, widget)
            modal.dismiss(None)
            await pilot.pause()
        await pilot.press("ctrl+q")


async def test_header_survives_quick_screen_switches(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # the race itself, made certain: a header whose title child is gone sees a title change
        header = app.screen.query_one(WizardHeader)
        await header.query_one(HeaderTitle).remove()
        app.title = "omwizard (renamed)"
        app.sub_title = "still fine"
        await pilot.pause()
        # and the real-life version: screens switched faster than they mount
        for i in range(10):
            app.goto_section("network")
            app.goto_inventory()
            app.goto_section("verify")
            app.sub_title = f"switch {i}"
        await pilot.pause(0.3)
        assert isinstance(app.screen, VerifyScreen)
        assert app.is_running and app._exception is None
        title = app.screen.query_one(WizardHeader).query_one(HeaderTitle)
        assert "switch 9" in str(title.render())
        await pilot.press("ctrl+q")


async def test_live_log_batched_and_filtered(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await pilot.pause()
        app.goto_section("network")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SectionScreen)
        bus = app.bus
        batches = screen.log_batches
        bus.emit(StepStarted("network", "multicast-ping", "om1", "check"))
        for node in ("om1", "om2"):
            bus.emit(CommandRun(node, "tcpdump -ni eth0 host 224.0.0.0", "network.multicast-ping"))
            for i in range(200):
                bus.emit(OutputLine(node, f"{node} line {i}", "network.multicast-ping"))
        bus.emit(StepFinished(Result.from_json({
            "section": "network", "step": "multicast-ping", "node": "om1",
            "status": "ok", "detail": "2 echo requests seen", "changes": []})))
        await pilot.pause(0.3)
        lines = [line for _, line, _ in screen.log_lines]
        assert "om2 line 199" in lines and "om1 line 0" in lines
        assert "$ tcpdump -ni eth0 host 224.0.0.0" in lines
        assert any("multicast-ping: ok" in line for line in lines)
        assert screen.status_of("multicast-ping", "om1") == "ok"
        # 400+ lines arrived in a few writes, not one write per line
        assert 1 <= screen.log_batches - batches <= 5
        log = screen.query_one("#log", RichLog)
        shown = "\n".join(strip.text for strip in log.lines)
        assert "multicast-ping: ok" in shown and "om2 line 199" not in shown  # results only
        await pilot.press("l")  # the raw view: the commands and their output too
        await pilot.pause()
        shown = "\n".join(strip.text for strip in log.lines)
        assert "[om2] om2 line 199" in shown
        # filter on one node: only its lines
        await pilot.press("f")
        await pilot.pause()
        assert screen.query_one("#log-filter", Select).value == "om1"
        shown = "\n".join(strip.text for strip in log.lines)
        assert "[om1] om1 line 5" in shown and "[om2]" not in shown
        await pilot.press("ctrl+q")


async def test_ping_from_lists_the_om_nodes(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.goto_section("network")
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ChooseScreen)
        options = modal.query_one("#choices", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["om1", "om2", "*each*"]  # db is not an OM node: it does not take part
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NetworkScreen) and not app.screen.busy
        await pilot.press("ctrl+q")


async def test_first_visit_says_how_to_check(state_home: Path, neutral_plan: Path) -> None:
    """A section with no results yet tells a newcomer which key checks it (read-only)."""
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.goto_section("network")
        await pilot.pause(0.2)
        hint = app.screen.query_one("#first-visit")
        assert hint.display
        assert "Nothing checked here yet" in FIRST_VISIT and "C checks every step" in FIRST_VISIT
        await pilot.press("ctrl+q")
