"""Snapshots of every screen with results in it (issue #17): the section screens after a check
with mixed statuses, verify with a manual answer, and the export; at 80x24 and 120x40, in the
dark and the light theme. Each also asserts, on the rendered screen, that no status word of
the grid is cut."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from omwizard.tui.app import make_app
from omwizard.tui.screens.export import ExportScreen
from omwizard.tui.screens.section import SectionScreen
from omwizard.tui.screens.widgets import status_word
from tests.ui.conftest import SNAPSHOT_ENV as ENV

SIZES = [(80, 24), (120, 40)]
THEMES = ["textual-dark", "textual-light"]
TEXT = re.compile(r'<text [^>]*x="([\d.]+)"[^>]*'
                  r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>')


def screen_lines(svg: str) -> list[str]:
    """The terminal's text lines from Textual's SVG screenshot (one text per styled run)."""
    xs = sorted({float(x) for x, _, _ in TEXT.findall(svg)})
    cell = min((b - a for a, b in zip(xs, xs[1:], strict=False) if b - a > 1), default=12.2)
    rows: dict[int, dict[int, str]] = {}
    for x, line, text in TEXT.findall(svg):
        col = round(float(x) / cell)
        chars = html.unescape(text).replace("\xa0", " ").replace("\n", "")
        row = rows.setdefault(int(line), {})
        for i, ch in enumerate(chars):
            row[col + i] = ch
    out = []
    for line in range(max(rows, default=-1) + 1):
        row = rows.get(line, {})
        out.append("".join(row.get(i, " ") for i in range(max(row, default=-1) + 1)))
    return out


def assert_no_status_cut(app: Any) -> None:
    """Every grid cell's status word appears whole on the rendered screen."""
    screen = app.screen
    assert isinstance(screen, SectionScreen)
    grid = screen.query_one("#grid", DataTable)
    want: Counter[str] = Counter()
    for step in screen.steps:
        for node in screen.nodes:
            status = screen.status_of(step.name, node)
            if status:
                want[status_word(status, short=screen.short_words)] += 1
    assert want, "the screen has no results to show"
    text = "\n".join(screen_lines(app.export_screenshot()))
    for word, count in want.items():
        assert text.count(word) >= count, (word, count, text)
    assert grid.scroll_x == 0


async def show(pilot: Any, app: Any, theme: str, where: str) -> None:
    app.theme = theme
    await pilot.pause()
    await pilot.press("r")  # resume the saved session
    await pilot.pause()
    if where == "export":
        app.goto_export()
    elif where != "preflight":
        app.goto_section(where)
    await pilot.pause()
    await pilot.pause(0.2)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("where", ["preflight", "network", "verify"])
def test_section_screens_with_results(snap_compare, results_home: Path, where: str,
                                      theme: str, size: tuple[int, int]) -> None:
    app = make_app(None, env=ENV, state_base=results_home)

    async def run_before(pilot: Any) -> None:
        await show(pilot, app, theme, where)
        assert isinstance(app.screen, SectionScreen) and app.screen.section == where
        assert_no_status_cut(app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES)
def test_export_with_results(snap_compare, results_home: Path, theme: str,
                             size: tuple[int, int]) -> None:
    app = make_app(None, env=ENV, state_base=results_home)

    async def run_before(pilot: Any) -> None:
        await show(pilot, app, theme, "export")
        assert isinstance(app.screen, ExportScreen)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("where", ["preflight", "database", "storage", "nodes", "verify"])
@pytest.mark.parametrize("size", SIZES)
async def test_no_status_word_is_cut_on_any_section(results_home: Path, where: str,
                                                    size: tuple[int, int]) -> None:
    app = make_app(None, env=ENV, state_base=results_home)
    async with app.run_test(size=size) as pilot:
        await show(pilot, app, "textual-dark", where)
        assert_no_status_cut(app)
        await pilot.press("ctrl+q")
