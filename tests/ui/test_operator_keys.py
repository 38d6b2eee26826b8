"""Issue #17, points 2, 5, 7 and 8 as an operator meets them, with Pilot (no hosts contacted):
dialogs answer Enter from the start and say which key does what; Esc leaves a section; the grid
never cuts a status word (80x24, 120x40); the documentation's text scrolls; `?` lists every key
and status symbol; the footer shows every key of a section screen, none run together; the
first-visit toast goes once work starts and stays behind with its screen; Pass / Fail look like
buttons; a ticked role looks ticked."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Button, Checkbox, DataTable, Static

from omwizard.engine.events import StepFinished, StepStarted
from omwizard.engine.state import StateStore
from omwizard.engine.step import Result
from omwizard.tui.app import make_app
from omwizard.tui.screens.help import HelpScreen
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.modals import ChooseScreen, ConfirmScreen, HostKeyScreen, TextScreen
from omwizard.tui.screens.section import FIRST_VISIT, SectionScreen
from omwizard.tui.screens.verify import VerifyScreen
from omwizard.tui.screens.widgets import STATUS_WORDS, status_word
from tests.ui.conftest import neutral_plan_dict

ENV = {"OMW_DB_PASSWORD": "s3cret-pw"}


def screen_text(app) -> list[str]:
    strips = app.screen._compositor.render_strips()
    return ["".join(seg.text for seg in strip) for strip in strips]


def lab_like_plan(tmp_path: Path, om_nodes: int = 3) -> Path:
    """The rehearsal's shape: OM nodes n1..nN and a database node."""
    data = neutral_plan_dict()
    nodes = []
    for i in range(1, om_nodes + 1):
        nodes.append({"name": f"n{i}", "host": f"192.0.2.{10 + i}", "address": f"192.0.2.{10 + i}",
                      "interface": "eth0", "server_url": f"https://n{i}.example.org/openmeetings",
                      "roles": ["om", "storage"] if i == 1 else ["om"]})
    nodes.append({"name": "db", "host": "192.0.2.20", "address": "192.0.2.20",
                  "roles": ["database"]})
    data["nodes"] = nodes
    path = tmp_path / "lab-plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def open_section(pilot, app, section: str) -> SectionScreen:
    app.goto_section(section)
    await pilot.pause()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SectionScreen) and screen.section == section
    return screen


# -- 2. dialogs: Enter answers, keys are shown, Esc leaves a section ---------------------------

async def test_dialogs_answer_enter_and_show_their_keys(state_home: Path,
                                                         neutral_plan: Path) -> None:
    """Resume, Apply, Roll back, Practise: one button has the focus at once (Enter answers),
    Tab only moves between the two buttons (Tab Enter and Tab Tab Enter are the two answers),
    and the hint line names what Enter does now."""
    app = make_app(None, env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        answers: list[Any] = []
        body = "Cluster demo has a saved session\nlast activity: today, section: network\n2 ok"
        for keys, expected in ((["enter"], True), (["tab", "enter"], False),
                               (["tab", "tab", "enter"], True), (["right", "enter"], False),
                               (["escape"], False), (["y"], True)):
            modal = ConfirmScreen("Resume the saved session?", body, "Resume", "Inventory")
            app.push_screen(modal, answers.append)
            await pilot.pause()
            assert isinstance(app.focused, Button) and app.focused.id == "yes"
            hint = str(modal.query_one("#dialog-keys", Static).render())
            assert "Enter: Resume" in hint and "Esc: Inventory" in hint, hint
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            assert answers[-1] is expected, keys
            assert not isinstance(app.screen, ConfirmScreen)
        # the hint follows the focus
        modal = ConfirmScreen("Apply multicast-route on n1?", "n1:\n  route: 224.0.0.0/4",
                              yes="Apply", no="Not now")
        app.push_screen(modal, answers.append)
        await pilot.pause()
        await pilot.press("tab")
        await pilot.pause()
        assert "Enter: Not now" in str(modal.query_one("#dialog-keys", Static).render())
        await pilot.press("enter")
        await pilot.pause()
        assert answers[-1] is False
        # an unknown host key: Enter refuses (trusting is y, after comparing the fingerprint)
        app.push_screen(HostKeyScreen("om1", "192.0.2.11", 22, "SHA256:" + "x" * 43),
                        answers.append)
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "no"
        await pilot.press("enter")
        await pilot.pause()
        assert answers[-1] is False
        # text and choice dialogs say their keys too
        for modal in (TextScreen("Skip", "Why?"),
                      ChooseScreen("Ping from…", "Which node?", [("om1", "om1")])):
            app.push_screen(modal)
            await pilot.pause()
            assert "Esc: cancel" in str(modal.query_one("#dialog-keys", Static).render())
            await pilot.press("escape")
            await pilot.pause()
        await pilot.press("ctrl+q")


async def test_resume_dialog_enter_resumes(state_home: Path, neutral_plan: Path) -> None:
    """The App's own Resume question: Enter alone resumes (it did nothing: no focus)."""
    store = StateStore(state_home / "demo")
    store.touch(section="network", step="multicast-route")
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, SectionScreen) and app.screen.section == "network"
        await pilot.press("ctrl+q")


async def test_escape_backs_out_of_a_section(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "database")
        screen.busy = True  # not while work runs: it says so and stays
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        screen.busy = False
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)
        await pilot.press("ctrl+q")


# -- 5. the grid: no status word cut; a legend; the doc scrolls --------------------------------

EVERY_STATUS = ["ok", "needs-change", "changed", "rolled-back", "failed", "skipped",
                "would-change", "running"]


@pytest.mark.parametrize("size,om_nodes", [((80, 24), 3), ((80, 24), 4), ((120, 40), 3),
                                           ((120, 40), 5)])
async def test_grid_never_cuts_a_status_word(state_home: Path, tmp_path: Path,
                                             size: tuple[int, int], om_nodes: int) -> None:
    plan = lab_like_plan(tmp_path, om_nodes)
    app = make_app(str(plan), env=ENV)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "preflight")
        nodes = screen.nodes
        # every status arrives after the grid was drawn (as the engine's events do)
        statuses = itertools.cycle(EVERY_STATUS)
        for step in screen.steps:
            for node in nodes:
                status = next(statuses)
                if status == "running":
                    app.bus.emit(StepStarted("preflight", step.name, node, "check"))
                elif status == "would-change":
                    screen.set_cell(step.name, node, status)
                else:
                    app.bus.emit(StepFinished(Result.from_json({
                        "section": "preflight", "step": step.name, "node": node,
                        "status": status, "detail": "", "changes": []})))
        await pilot.pause(0.3)
        grid = screen.query_one("#grid", DataTable)
        columns = list(grid.columns.values())
        short = screen.short_words
        # full words when they fit (120 columns, the rehearsal's 4 nodes), short ones else
        assert short == (size[0] < 100 or om_nodes > 3)
        for row in range(grid.row_count):
            cells = grid.get_row_at(row)
            for column, cell in zip(columns[1:], cells[1:], strict=True):
                assert len(str(cell)) <= column.width, (str(cell), column.width)
        # and on the screen: each status word whole, the last node's column included
        text = "\n".join(screen_text(app))
        for status in EVERY_STATUS:
            assert status_word(status, short=short) in text, status
        header = next(line for line in screen_text(app) if line.lstrip().startswith("step"))
        if om_nodes <= 4:  # the rehearsal's size: the whole grid fits, db column included
            assert header.rstrip().endswith("db"), header
        await pilot.press("ctrl+q")


async def test_doc_panel_scrolls(state_home: Path, neutral_plan: Path) -> None:
    """At 80x24 a long documentation text (verify's restart step) scrolls: d gives it the keys."""
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "verify")
        doc = screen.query_one("#doc-scroll")
        assert doc.max_scroll_y > 0  # longer than its panel
        await pilot.press("d")
        await pilot.pause()
        assert doc.has_focus
        await pilot.press("down", "down")
        await pilot.pause(0.2)
        assert doc.scroll_y > 0
        await pilot.press("d")
        await pilot.pause()
        assert screen.query_one("#grid").has_focus
        await pilot.press("ctrl+q")


async def test_help_lists_every_key_and_status(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "network")
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        keys = dict(help_screen.keys)
        for key in ("c", "C", "a", "A", "b", "B", "s", "f", "n", "p", "i", "e", "d", "?", "esc",
                    "g", "^q", "^p"):
            assert key in keys, key
        help_screen.query_one("#help-status").scroll_visible(animate=False, top=True)
        await pilot.pause(0.1)
        legend = "\n".join(screen_text(app))
        for status, (symbol, full, short, _meaning) in STATUS_WORDS.items():
            assert f"{symbol} {full}" in legend and f"{symbol} {short}" in legend, status
        assert "·" in legend
        help_screen.query_one("#help-note").scroll_visible(animate=False)
        await pilot.pause(0.1)
        assert "test file" in "".join(line.strip(" █") for line in screen_text(app))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("ctrl+q")


# -- 8. keys on the footer; Pass / Fail; roles ---------------------------------------------

SECTION_KEYS = ["c", "C", "a", "A", "b", "B", "s", "f", "n", "p", "i", "e", "d",
                "question_mark", "escape"]


@pytest.mark.parametrize("section,extra", [("preflight", []), ("network", ["g"]),
                                           ("verify", ["m"])])
async def test_footer_shows_every_key_apart(state_home: Path, neutral_plan: Path,
                                            section: str, extra: list[str]) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, section)
        shown = {k.key: k for k in screen.query_one("Footer").query("FooterKey")}
        for key in [*SECTION_KEYS, *extra, "ctrl+q"]:
            assert key in shown, key
            region = shown[key].region
            assert region.width > 0 and region.right <= 80 and region.bottom <= 24, key
        # none runs into the next: a blank column between two keys on the same row
        by_row: dict[int, list[Any]] = {}
        for key in shown.values():
            by_row.setdefault(key.region.y, []).append(key.region)
        for regions in by_row.values():
            regions.sort(key=lambda r: r.x)
            for a, b in zip(regions, regions[1:], strict=False):
                assert b.x > a.right, (a, b)
        await pilot.press("ctrl+q")


async def test_pass_fail_are_buttons_and_roles_show_their_state(state_home: Path,
                                                                neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "verify")
        await pilot.press("m")
        await pilot.pause()
        button = screen.query_one("#pass-same-room", Button)
        assert str(button.label).startswith("[ ✓ Pass")
        assert str(screen.query_one("#fail-same-room", Button).label).startswith("[ ✗ Fail")
        assert isinstance(screen, VerifyScreen)
        screen.answer("same-room", "pass")
        await pilot.pause()
        assert button.has_class("-chosen")
        app.goto_inventory()
        await pilot.pause()
        await pilot.pause()
        inv = app.screen
        assert isinstance(inv, InventoryScreen)
        ticked = inv.query_one("#role-om", Checkbox)
        unticked = inv.query_one("#role-database", Checkbox)
        assert ticked.value and not unticked.value
        on = ticked.get_component_rich_style("toggle--button")
        off = unticked.get_component_rich_style("toggle--button")
        # the unticked box shows no X (its colour is its background); the ticked one does
        assert off.color == off.bgcolor
        assert on.color != on.bgcolor and on.bold
        await pilot.press("ctrl+q")


# -- 7. the first-visit toast ------------------------------------------------------------------

async def test_first_visit_hint_goes_with_work_and_is_no_toast(state_home: Path,
                                                               neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "storage")
        await pilot.pause(0.1)
        hint = screen.query_one("#first-visit")
        assert hint.display
        assert "test file" in FIRST_VISIT  # the shared-folder check writes one: said
        screen.begin("checking…", 1)  # what c / C / A do first
        await pilot.pause()
        assert not hint.display
        screen.end("checked")
        await pilot.press("ctrl+q")


async def test_grid_and_footer_adapt_to_a_resize(state_home: Path, tmp_path: Path) -> None:
    app = make_app(str(lab_like_plan(tmp_path)), env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "network")
        screen.set_cell("multicast-route", "n2", "needs-change")
        screen.results["multicast-route/n2"] = {"status": "needs-change"}
        assert screen.short_words
        assert "ctrl+p" not in {k.key for k in screen.query("FooterKey")}  # no room at 80
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert not screen.short_words
        assert status_word("needs-change") in "\n".join(screen_text(app))
        assert "ctrl+p" in {k.key for k in screen.query("FooterKey")}
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert screen.short_words
        assert "ctrl+p" not in {k.key for k in screen.query("FooterKey")}
        for key in screen.query("FooterKey"):
            assert key.region.right <= 80, key.key
        assert status_word("needs-change", short=True) in "\n".join(screen_text(app))
        await pilot.press("ctrl+q")


async def test_escape_from_a_note_returns_to_the_grid_first(state_home: Path,
                                                            neutral_plan: Path) -> None:
    """Esc while typing a manual check's note keeps the note: the grid gets the focus; the
    next Esc leaves the section."""
    app = make_app(str(neutral_plan), env=ENV)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = await open_section(pilot, app, "verify")
        await pilot.press("m")
        await pilot.pause()
        note = screen.query_one("#note-same-room")
        note.focus()
        await pilot.pause()
        await pilot.press("o", "k", "escape")
        await pilot.pause()
        assert app.screen is screen and screen.query_one("#grid").has_focus
        assert getattr(note, "value", "") == "ok"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)
        await pilot.press("ctrl+q")


async def test_question_mark_on_every_screen_but_not_in_a_field(state_home: Path,
                                                                 neutral_plan: Path) -> None:
    """? opens the legend on the welcome and inventory screens too; typed into a field it is
    just a character."""
    app = make_app(None, env=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "n" in dict(app.screen.keys)  # the welcome screen's own keys: n New plan
        await pilot.press("escape")
        await pilot.pause()
        app.goto_inventory()
        await pilot.pause()
        await pilot.pause()
        inv = app.screen
        assert isinstance(inv, InventoryScreen)
        field = inv.query_one("#f-cluster-name")
        field.focus()
        await pilot.pause()
        await pilot.press("end", "question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        assert str(getattr(field, "value", "")).endswith("?")
        await pilot.press("ctrl+q")
