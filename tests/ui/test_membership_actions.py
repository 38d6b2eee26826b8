"""The membership screen's actions: "Add a node" (a form validated by the plan model, the plan
file rewritten with its comments) and "Remove a node" (a confirmation naming the node and the
choice for its own changes, then the orchestration `remove-node` runs too).

Nothing is contacted: the plans are the example's (10.1.1.x, 192.0.2.x); the removal's engine
run is replaced by a recorder here (the real one is proven on the lab by tests/lab).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.widgets import Static

from omwizard.engine import removal
from omwizard.engine.step import FAILED, Result
from omwizard.plan.model import Plan
from omwizard.tui.app import make_app
from omwizard.tui.screens import membership
from omwizard.tui.screens.membership import MembershipScreen
from omwizard.tui.screens.modals import ChooseScreen
from omwizard.tui.screens.nodeforms import AddNodeScreen, RemoveNodeScreen
from tests.ui.conftest import SNAPSHOT_ENV

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plan.yaml"


def text_of(widget: Static) -> str:
    console = Console(width=220, record=True)
    console.print(widget.content)
    return console.export_text()


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE.read_text())
    return path


async def open_membership(app: Any, pilot: Any) -> MembershipScreen:
    await pilot.pause()
    assert app.plan is not None
    await pilot.press("f3")
    await pilot.pause()
    assert isinstance(app.screen, MembershipScreen)
    return app.screen


async def type_in(pilot: Any, text: str) -> None:
    await pilot.press(*text)


def applied_before(state_home: Path, plan_file: Path) -> None:
    """The cluster's session holds the plan as last applied: the base a change is shown on."""
    from omwizard.engine.state import StateStore
    from omwizard.plan.model import dump_plan, load_plan

    StateStore(state_home / "prod").save_plan(dump_plan(load_plan(plan_file, SNAPSHOT_ENV)))


async def test_add_a_node_saves_the_plan_file_with_its_comments(
        state_home: Path, plan_file: Path) -> None:
    original = plan_file.read_text()
    applied_before(state_home, plan_file)
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    app.program = "scripts/wizard"  # as cli.rehearse.invoked_as() passes it
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_membership(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AddNodeScreen)
        await type_in(pilot, "om3")
        await pilot.press("tab")
        await type_in(pilot, "10.1.1.3")
        await pilot.press("tab", "tab")
        await pilot.press("ctrl+a", "ctrl+k")  # roles: "om" typed again
        await type_in(pilot, "om")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert [n.name for n in app.plan.nodes][-1] == "om3"
        assert app.plan.node("om3").address == "10.1.1.3"
        table = text_of(screen.query_one("#membership-table", Static))
        assert "joining" in table
        status = text_of(screen.query_one("#membership-status", Static))
        assert f"scripts/wizard apply {plan_file}" in " ".join(status.split())
        assert "omwizard apply" not in status
        written = plan_file.read_text()
        assert "om3" in written and "10.1.1.3" in written
        assert comments(written) == comments(original)  # every comment kept
        assert written.startswith(original.split("\n- name: db1")[0].split("  - name: om1")[0])
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_add_a_node_refuses_a_bad_one_naming_the_fix(
        state_home: Path, plan_file: Path) -> None:
    original = plan_file.read_text()
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_membership(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        await type_in(pilot, "om1")  # taken
        await pilot.press("tab")
        await type_in(pilot, "10.1.1.999")
        await pilot.press("enter")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AddNodeScreen)  # still open: nothing added
        error = text_of(form.query_one("#add-error", Static))
        assert "new node.host" in error or "new node.address" in error
        assert "already the name" in error and "fix: give every node its own name" in error
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert [n.name for n in app.plan.nodes] == ["om1", "om2", "db1"]
        assert plan_file.read_text() == original
        await pilot.press("escape")
        await pilot.press("ctrl+q")


class DialogHost(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[str | None] = []

    def ask(self) -> None:
        self.push_screen(RemoveNodeScreen("om3", "om3 leaves the cluster"), self.answers.append)


@pytest.mark.parametrize(("keys", "answer"), [
    (["enter"], "keep"),  # the CLI's default
    (["b", "enter"], "rollback"),
    (["down", "enter"], "rollback"),
    (["b", "k", "enter"], "keep"),
    (["b", "escape"], None),
    (["tab", "enter"], None),  # Enter on Cancel
])
async def test_remove_dialog_answers_enter_and_esc(keys: list[str], answer: str | None) -> None:
    app = DialogHost()
    async with app.run_test(size=(120, 30)) as pilot:
        app.ask()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RemoveNodeScreen)
        assert "om3" in text_of(dialog.query_one("#leaving-choice", Static))
        await pilot.press(*keys)
        await pilot.pause()
        assert app.answers == [answer]
        assert not isinstance(app.screen, RemoveNodeScreen)


def with_om3(plan_file: Path) -> None:
    from omwizard.plan.edit import add_node_text

    plan_file.write_text(add_node_text(plan_file.read_text(),
                                       {"name": "om3", "host": "10.1.1.3", "roles": ["om"]}))


class Recorder:
    """Stands in for engine.removal.remove_node: records what it was asked."""

    def __init__(self, results: list[Result]) -> None:
        self.calls: list[tuple[list[str], list[str], str, str]] = []
        self.results = results

    async def __call__(self, session: Any, before: Plan, after: Plan, name: str,
                       leaving: str = "keep") -> list[Result]:
        assert session.plan == before
        self.calls.append(([n.name for n in before.nodes], [n.name for n in after.nodes],
                           name, leaving))
        return self.results


async def remove_om3(app: Any, pilot: Any, keys: list[str]) -> MembershipScreen:
    screen = await open_membership(app, pilot)
    await pilot.press("r")
    await pilot.pause()
    assert isinstance(app.screen, ChooseScreen)
    await pilot.press("down", "down", "down", "enter")  # om1, om2, db1, om3
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, RemoveNodeScreen)
    assert dialog.node_name == "om3"
    await pilot.press(*keys)
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert app.screen is screen
    return screen


async def test_remove_a_node_runs_the_shared_orchestration(
        state_home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_om3(plan_file)
    original = plan_file.read_text()
    recorder = Recorder([])
    assert membership.remove_node is removal.remove_node  # the function remove-node runs
    monkeypatch.setattr(membership, "remove_node", recorder)
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await remove_om3(app, pilot, ["b", "enter"])
        assert recorder.calls == [(["om1", "om2", "db1", "om3"], ["om1", "om2", "db1"], "om3",
                                   "rollback")]
        assert "✓ om3 removed" in text_of(screen.query_one("#membership-status", Static))
        assert [n.name for n in app.plan.nodes] == ["om1", "om2", "db1"]
        written = plan_file.read_text()
        assert "om3" not in written and comments(written) == comments(original)
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_a_removal_that_failed_keeps_the_node(
        state_home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_om3(plan_file)
    original = plan_file.read_text()
    failed = Result("verify", "members", "om1", FAILED, "om3 still a member")
    recorder = Recorder([failed])
    monkeypatch.setattr(membership, "remove_node", recorder)
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await remove_om3(app, pilot, ["enter"])
        assert [c[3] for c in recorder.calls] == ["keep"]
        assert "not fully removed" in text_of(screen.query_one("#membership-status", Static))
        assert "om3" in [n.name for n in app.plan.nodes]
        assert plan_file.read_text() == original
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_cancelled_removal_changes_nothing(
        state_home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_om3(plan_file)
    recorder = Recorder([])
    monkeypatch.setattr(membership, "remove_node", recorder)
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await remove_om3(app, pilot, ["escape"])
        assert recorder.calls == []
        assert "nothing was changed" in text_of(screen.query_one("#membership-status", Static))
        await pilot.press("escape")
        await pilot.press("ctrl+q")


async def test_a_removal_the_plan_cannot_take_is_refused_before_asking(
        state_home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder([])
    monkeypatch.setattr(membership, "remove_node", recorder)
    app = make_app(str(plan_file), env=SNAPSHOT_ENV)
    async with app.run_test(size=(140, 44)) as pilot:
        screen = await open_membership(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("down", "enter")  # om2: one OM node would be left
        await pilot.pause()
        assert app.screen is screen and recorder.calls == []
        status = text_of(screen.query_one("#membership-status", Static))
        assert "without om2 is not a valid plan" in status and "fix:" in status
        await pilot.press("escape")
        await pilot.press("ctrl+q")
