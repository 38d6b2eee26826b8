"""The TUI's "Remove a node" on the lab: a running 3-node cluster (applied by the CLI) loses
n3 from the membership screen (F3, r, the node, b: roll back its changes, Enter). The same
orchestration as `remove-node` runs (engine/removal.py): the remaining members are verified,
n1 and n2 are not restarted, no trace of n3 is left on its peers, its own changes are undone,
and the plan file loses it with its comments kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.engine.state import StateStore
from omwizard.lab import hazelcast as hz
from tests.lab.test_membership import (  # noqa: F401 - cluster_lab is a fixture
    N3,
    PASSWORD,
    apply_all,
    cluster_lab,
    members_ok,
    plan_text,
    started,
    traces_of_n3,
)
from tests.ui.test_lab_ui import until

pytestmark = pytest.mark.lab


async def test_the_tui_removes_a_node(cluster_lab, tmp_path: Path,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import Static

    from omwizard.tui.app import make_app
    from omwizard.tui.screens.membership import MembershipScreen
    from omwizard.tui.screens.modals import ChooseScreen, ConfirmScreen
    from omwizard.tui.screens.nodeforms import RemoveNodeScreen

    lab = cluster_lab
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    plan, state = tmp_path / "plan.yaml", tmp_path / "state"
    plan.write_text(plan_text(lab, ["n1", "n2", "n3"]))
    rc, doc, err = apply_all(plan, state)
    assert doc is not None, err
    members_ok(doc, ["n1", "n2", "n3"])
    running = {n: started(lab.nodes[n]) for n in ("n1", "n2")}
    assert None not in running.values()

    app = make_app(str(plan), str(state), env={"OMW_DB_PASSWORD": PASSWORD})
    async with app.run_test(size=(140, 44)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))  # resume?
        await pilot.press("n")
        await until(pilot, lambda: app.plan is not None)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, MembershipScreen))
        screen = app.screen
        assert isinstance(screen, MembershipScreen)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ChooseScreen))
        await pilot.press("down", "down", "enter")  # n1, n2, n3
        await until(pilot, lambda: isinstance(app.screen, RemoveNodeScreen))
        assert app.screen.node_name == "n3"
        await pilot.press("b", "enter")  # n3's own changes rolled back
        await until(pilot, lambda: app.screen is screen and not screen.busy
                    and any(line.startswith(("✓ n3", "✗ n3")) for line in screen.lines),
                    timeout=900)
        status = "\n".join(screen.lines)
        assert "✓ n3 removed" in status, status
        assert "✓ n3 removed" in str(screen.query_one("#membership-status", Static).content)
        assert [n.name for n in app.plan.nodes] == ["n1", "n2", "db"]
        await pilot.press("escape")
        await pilot.press("ctrl+q")

    results = StateStore(state).results()
    for name in ("n1", "n2"):
        member = results[f"verify/members/{name}"]
        assert member["status"] == "ok" and member["data"]["size"] == 2, member
        assert results[f"verify/restart/{name}"]["status"] == "ok"  # not restarted
    assert {n: started(lab.nodes[n]) for n in ("n1", "n2")} == running
    assert hz.member_pid(lab.nodes["n3"]) is None
    assert traces_of_n3(lab) == {}
    text = plan.read_text()
    assert "name: n3" not in text and N3 not in text
    assert text.startswith("# the lab cluster (comments must survive remove-node)\n")
    assert "- name: n2  # the second OM node\n" in text
    assert b"<instance-name>n3" not in (
        lab.nodes["n3"].root / "opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
    ).read_bytes()
    assert StateStore(state).open_records() == []
