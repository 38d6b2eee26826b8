"""What walking the wizard at 80x24 and 120x40 found (issue #17 g), each fixed and held here."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from omwizard.tui.app import make_app
from omwizard.tui.screens.welcome import WelcomeScreen
from tests.ui.conftest import SNAPSHOT_ENV as ENV
from tests.ui.test_snapshots_results import screen_lines


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_welcome_shows_every_start_and_its_key(results_home: Path,
                                                     size: tuple[int, int]) -> None:
    """Before: "[n]", "[o]", "[p]" and "[r]" were eaten as markup (the keys were not shown),
    and the fourth start option hid behind a scroll bar."""
    app = make_app(None, env=ENV, state_base=results_home)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        text = "\n".join(screen_lines(app.export_screenshot()))
        start = app.screen.query_one("#start", OptionList)
        for i in range(start.option_count):
            prompt = str(start.get_option_at_index(i).prompt)
            assert prompt in text, (prompt, text)
            assert prompt.endswith("]"), prompt  # its key, in brackets
        assert start.max_scroll_y == 0, "a start option is hidden behind the scroll bar"
        assert "Saved sessions  [r] resume" in text
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
def test_statuses_differ_in_colour_too(theme: str) -> None:
    """Before: changed and rolled back were drawn in the accent colour, which the built-in
    themes make the warning colour of "needs change"."""
    from textual.theme import BUILTIN_THEMES

    from omwizard.tui.screens.section import status_text

    looks = {status: str(status_text(status, BUILTIN_THEMES[theme]).style)
             for status in ("ok", "needs-change", "changed", "rolled-back", "failed", "skipped")}
    assert len(set(looks.values())) == len(looks), looks


async def test_the_legend_draws_each_status_as_the_grid_does(results_home: Path) -> None:
    """Before: the legend's status words were plain bold, unlike the grid's colours."""
    from rich.table import Table
    from rich.text import Text
    from textual.widgets import Static

    from omwizard.tui.screens.help import HelpScreen
    from omwizard.tui.screens.section import status_text

    app = make_app(None, env=ENV, state_base=results_home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-status", Static).content
        assert isinstance(table, Table)
        cells = list(table.columns[0].cells)
        failed = next(c for c in cells if isinstance(c, Text) and "failed" in c.plain)
        assert failed.style == status_text("failed", app.current_theme).style
        await pilot.press("escape")
        await pilot.press("ctrl+q")
