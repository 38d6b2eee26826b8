"""Snapshots of a section screen with results (issue #17): 80x24 and 120x40, dark and light, no
status word cut, every key in the footer; and the `?` legend of keys and status symbols."""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.tui.app import make_app
from tests.ui.test_snapshots import ENV


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_section_with_results(snap_compare, fixed_home: Path, theme: str,
                              size: tuple[int, int]) -> None:
    app = make_app(None, env=ENV, state_base=fixed_home)

    async def run_before(pilot) -> None:
        app.theme = theme
        await pilot.press("r")  # resume: preflight, with its results
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_help_legend(snap_compare, fixed_home: Path) -> None:
    app = make_app(None, env=ENV, state_base=fixed_home)

    async def run_before(pilot) -> None:
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
