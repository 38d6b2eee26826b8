"""The membership screen (F3): each node's membership and what a plan change will touch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.widgets import Label, Static

from omwizard.plan.model import plan_from_dict
from omwizard.tui.app import make_app
from omwizard.tui.screens.membership import MembershipScreen, base_plan, membership_table
from tests.ui.conftest import SNAPSHOT_ENV, neutral_plan_dict


def plan_with(*om: str):
    data = neutral_plan_dict()
    nodes = [n for n in data["nodes"] if n["name"] in (*om, "db")]
    for i, name in enumerate(om, 1):
        if name not in {n["name"] for n in nodes}:
            nodes.insert(-1, {"name": name, "host": f"192.0.2.1{i}", "roles": ["om"]})
    data["nodes"] = nodes
    return plan_from_dict(data, env=SNAPSHOT_ENV)


def rendered(table: Any) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_table_says_who_joins_and_what_each_node_gets() -> None:
    before, after = plan_with("om1", "om2"), plan_with("om1", "om2", "om3")
    results = {"verify/members/om1": {"status": "ok"}, "verify/members/om2": {"status": "ok"}}
    text = rendered(membership_table(before, after, results))
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "joining" in rows["om3"] and "every section" in rows["om3"]
    assert "not checked" in rows["om3"]
    assert "stays" in rows["om2"] and "yes" in rows["om2"]
    assert "storage.nfs-server" in rows["om1"]  # the NFS server exports to om3
    assert "database.remote-user" in rows["db"]  # om3's account
    assert "nothing" in rows["om2"]  # multicast join, no firewall managed: nothing for om2
    shrink = rendered(membership_table(after, before, results))
    assert "leaving" in shrink and "remove-node" in shrink


def test_no_base_means_every_section() -> None:
    assert base_plan(None) is None and base_plan("nodes: [") is None
    text = rendered(membership_table(None, plan_with("om1", "om2"), {}))
    assert text.count("every section") == 3


async def test_screen_opens_and_closes() -> None:
    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(MembershipScreen(plan_with("om1", "om2"),
                                              plan_with("om1", "om2", "om3"), {}))

    app = Host()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, MembershipScreen)
        assert "joining" in rendered(app.screen.query_one("#membership-table", Static).content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, MembershipScreen)


async def test_f3_on_a_loaded_plan(state_home: Path, neutral_plan: Path) -> None:
    app = make_app(str(neutral_plan), env=SNAPSHOT_ENV)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.plan is not None
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, MembershipScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+q")


async def test_commands_are_named_as_the_program_was_invoked() -> None:
    before, after = plan_with("om1", "om2", "om3"), plan_with("om1", "om2")
    text = rendered(membership_table(before, after, {}, "scripts/wizard"))
    assert "scripts/wizard remove-node" in text and "omwizard" not in text

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(MembershipScreen(before, after, {}, program="scripts/wizard",
                                              plan_file="site.yaml"))

    app = Host()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        note = str(app.screen.query_one("#membership-note", Label).content)
        assert "`scripts/wizard apply site.yaml --dry-run`" in note
        assert "omwizard" not in note
