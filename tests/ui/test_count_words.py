"""Issue #17: the counts speak the grid's words ("needs change", "rolled back"), not raw keys."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList

from omwizard.engine.state import StateStore
from omwizard.tui.app import make_app
from omwizard.tui.screens.section import saved_results_line
from omwizard.tui.screens.welcome import WelcomeScreen, describe_counts
from omwizard.tui.screens.widgets import STATUS_WORDS

RAW_KEYS = ("needs-change", "rolled-back", "would-change")


def test_counts_use_the_grids_full_words() -> None:
    counts = {"failed": 16, "needs-change": 2, "rolled-back": 1, "would-change": 3}
    line = describe_counts(counts)
    assert line == "22 results: 16 failed, 2 needs change, 1 rolled back, 3 would change", line
    for key in counts:
        assert f"{counts[key]} {STATUS_WORDS[key][1]}" in line
    section_line = saved_results_line([{"status": "needs-change"}, {"status": "rolled-back"}])
    assert "1 needs change, 1 rolled back" in section_line, section_line
    assert not any(raw in line or raw in section_line for raw in RAW_KEYS)


async def test_welcome_list_shows_needs_change_in_words(
    state_home: Path, neutral_plan: Path
) -> None:
    store = StateStore(state_home / "demo")
    store.save_plan(neutral_plan.read_text())
    for i, status in enumerate(["failed"] * 16 + ["needs-change"] * 2):
        store.set_result(f"preflight/step{i}/om1",
                         {"section": "preflight", "step": f"step{i}", "node": "om1",
                          "status": status, "detail": "", "changes": []})
    app = make_app(None, env={})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        line = str(app.screen.query_one("#sessions", OptionList).get_option_at_index(0).prompt)
        assert "18 results: 16 failed, 2 needs change" in line, line
        assert "needs-change" not in line
        await pilot.press("ctrl+q")
