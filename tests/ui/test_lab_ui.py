"""The TUI against the lab: test connections with a host-key confirmation, a section applied
and rolled back, quit mid-section and resume on the same step. Short runs: one lab per machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable

from omwizard.engine.catalog import steps_for
from omwizard.tui.app import make_app
from omwizard.tui.screens.inventory import InventoryScreen
from omwizard.tui.screens.modals import ConfirmScreen, HostKeyScreen
from omwizard.tui.screens.section import SectionScreen

pytestmark = pytest.mark.lab
ENV = {"OMW_DB_PASSWORD": "labpass"}


async def until(pilot, cond: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.1)


async def answer_modals(
    pilot, app, done: Callable[[], bool], seen: list, timeout: float = 120
) -> None:
    """Say yes to every confirmation (recording it) until done()."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the engine")
        if isinstance(app.screen, ConfirmScreen):
            seen.append(app.screen)
            await pilot.press("y")
        await pilot.pause(0.1)


def on_section(app, section: str) -> bool:
    """The section's screen is current and mounted (its grid is there)."""
    screen = app.screen
    return (isinstance(screen, SectionScreen) and screen.section == section
            and bool(screen.query("#grid")))


def idle(app) -> Callable[[], bool]:
    return lambda: (not any(w.is_running for w in app.workers)
                    and not isinstance(app.screen, ConfirmScreen))


async def test_test_connections_confirms_fingerprint(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml",
                                ssh={"known_hosts": str(known), "host_keys": "strict"})
    app = make_app(str(plan), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        screen = app.screen
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        modal = app.screen
        assert modal.fingerprint.startswith("SHA256:")
        assert modal.fingerprint in str(modal.query_one("#dialog-text").render())
        seen: list = []
        await answer_modals(pilot, app, lambda: not any(
            w.is_running for w in app.workers if w.group == "test-connections"), seen)
        assert len(app.host_key_answers) == len(fresh_lab.nodes) + 1
        assert all(trusted for _, _, trusted in app.host_key_answers)
        assert known.read_text().count("\n") >= len(fresh_lab.nodes) + 1
        rows = screen.connection_rows
        assert all(r["ssh"].startswith("✓") for r in rows.values()), rows
        assert "9.1.0" in rows["n1"]["om"]
        assert rows["db"]["om"].startswith("-")
        table = screen.query_one("#connections", DataTable)
        assert "✓" in str(table.get_row_at(0)[1])
        await pilot.press("ctrl+q")


async def test_section_apply_rollback_quit_resume(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    steps = steps_for("network")
    assert steps
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml")
    state_dir = tmp_path / "session"

    def route(name: str) -> str:
        return fresh_lab.nodes[name].run(["ip", "route", "show", "224.0.0.0/4"]).stdout.strip()

    assert route("n1") == ""
    app = make_app(str(plan), str(state_dir), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        await pilot.pause(0.3)
        app.goto_section("network")
        await until(pilot, lambda: isinstance(app.screen, SectionScreen))
        screen = app.screen
        await pilot.press("A")
        seen: list = []
        await pilot.pause(0.5)
        await answer_modals(pilot, app, idle(app), seen)
        # the diff / change list was shown before the change
        assert any("route" in s.body for s in seen), [s.body for s in seen]
        results = app.state.results()
        net = {k: v["status"] for k, v in results.items() if k.startswith("network/")}
        assert net and all(s in ("ok", "changed", "skipped") for s in net.values()), net
        assert "224.0.0.0/4" in route("n1")
        grid = screen.query_one("#grid", DataTable)
        cells = [str(c) for row in range(grid.row_count) for c in grid.get_row_at(row)]
        assert not any("✗" in c for c in cells), cells
        # roll the section back: the confirmation lists what the journal will undo
        seen.clear()
        await pilot.press("B")
        await pilot.pause(0.3)
        await answer_modals(pilot, app, idle(app), seen)
        assert seen and "n1" in seen[0].body
        assert route("n1") == "" and route("n2") == ""
        # quit mid-section on a given step
        grid.move_cursor(row=1, column=1)
        await pilot.pause()
        step_name = screen.current_step.name
        await pilot.press("ctrl+q")
    app2 = make_app(str(plan), str(state_dir), env=ENV)
    async with app2.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app2.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app2.screen, SectionScreen))
        assert app2.screen.section == "network"
        assert app2.screen.current_step.name == step_name
        await pilot.press("ctrl+q")


# -- sudo with a password -----------------------------------------------------------------------

SUDO_PW = "Sudo-pw_8123"


async def test_sudo_password_modal_used_and_never_written(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    """n2 is reached as omwop, a sudoer with a password: the wizard asks for it in a masked
    modal, uses it (a route added as root on n2), and writes it nowhere."""
    from textual.widgets import Input

    from omwizard.lab import add_user
    from omwizard.tui.screens.modals import TextScreen

    lab = fresh_lab
    add_user(lab.nodes["n2"], "omwop", password=SUDO_PW, nopasswd=False)
    data = lab.plan_dict()
    data["nodes"][1]["ssh"] = {"user": "omwop"}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    state_dir = tmp_path / "session"
    app = make_app(str(plan), str(state_dir), env=ENV)
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        inventory = app.screen
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        modal = app.screen
        assert "sudo password" in str(modal.query_one("#dialog-title").render())
        assert "omwop@n2" in modal.prompt
        assert modal.query_one("#answer", Input).password  # masked
        await pilot.press(*SUDO_PW, "enter")
        await until(pilot, lambda: not any(
            w.is_running for w in app.workers if w.group == "test-connections"))
        rows = inventory.connection_rows
        assert rows["n2"]["ssh"].startswith("✓ omwop"), rows
        assert rows["n2"]["sudo"] == "✓ password", rows
        assert rows["n1"]["sudo"] == "✓ root", rows
        # the typed password is what sudo gets: a change that needs root on n2
        app.goto_section("network")
        await until(pilot, lambda: on_section(app, "network"))
        screen = app.screen
        names = [s.name for s in screen.steps]
        screen.query_one("#grid", DataTable).move_cursor(row=names.index("multicast-route"),
                                                         column=2)
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause(0.5)
        seen: list = []
        await answer_modals(pilot, app, idle(app), seen)
        result = app.state.results()["network/multicast-route/n2"]
        assert result["status"] == "changed", result
        route = lab.nodes["n2"].run(["ip", "route", "show", "224.0.0.0/4"]).stdout
        assert "224.0.0.0/4" in route
        assert any(r["node"] == "n2" for r in app.state.journal())
        await pilot.press("ctrl+q")
    assert app.sudo_password == SUDO_PW  # kept in memory while the app ran
    for root in (state_dir, state_home):
        for f in root.rglob("*"):
            if f.is_file():
                assert SUDO_PW not in f.read_text(errors="replace"), f


# -- the whole wizard ---------------------------------------------------------------------------

DONE = ("ok", "changed", "skipped")


async def apply_section(pilot, app, section: str, seen: list, timeout: float = 600) -> dict:
    """On the section's screen: A (apply all), yes to every diff, wait; its results."""
    await until(pilot, lambda: on_section(app, section))
    await pilot.press("A")
    await pilot.pause(0.5)
    await answer_modals(pilot, app, idle(app), seen, timeout=timeout)
    results = {k: v for k, v in app.state.results().items() if k.startswith(section + "/")}
    bad = {k: (v["status"], v["detail"], v.get("remedy")) for k, v in results.items()
           if v["status"] not in DONE}
    assert results and not bad, bad
    return results


async def test_whole_wizard_every_section_rollback_resume_export(
    fresh_lab, tmp_path: Path, state_home: Path
) -> None:
    """Issue 9's proof: test connections (fingerprints confirmed), every section applied to
    green through its screen, the multicast test repeated from n2, verify's automatic checks
    and a manual answer, network rolled back (routes gone), quit, resume on the same step,
    export."""
    from textual.widgets import Input

    from omwizard.lab import services
    from omwizard.tui.screens.export import ExportScreen
    from omwizard.tui.screens.modals import ChooseScreen
    from omwizard.tui.screens.verify import VerifyScreen

    lab = fresh_lab
    services.ensure_lab_services(lab)
    services.start_mariadb(lab.db)
    for node in lab.nodes.values():
        services.start_health_responder(node)
    known = tmp_path / "known_hosts"
    known.write_text("")
    plan = lab.write_plan(tmp_path / "plan.yaml", ssh={"known_hosts": str(known)})
    state_dir = tmp_path / "session"

    def route(name: str) -> str:
        return lab.nodes[name].run(["ip", "route", "show", "224.0.0.0/4"]).stdout.strip()

    seen: list = []
    app = make_app(str(plan), str(state_dir), env=ENV)
    try:
        async with app.run_test(size=(100, 36)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
            await pilot.press("ctrl+t")
            await until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
            await answer_modals(pilot, app, lambda: not any(
                w.is_running for w in app.workers if w.group == "test-connections"), seen)
            assert len(app.host_key_answers) == len(lab.nodes) + 1
            await pilot.press("ctrl+g")
            for section in ("preflight", "network", "database", "storage", "nodes"):
                await apply_section(pilot, app, section, seen)
                if section == "network":
                    screen = app.screen
                    # the capture's own output streamed into the log, from every node
                    for name in lab.nodes:
                        assert any(n == name and "listening on" in line
                                   for n, line, _ in screen.log_lines), name
                    assert "224.0.0.0/4" in route("n3")
                    # "Ping from…": n2 sends, every node's verdict in the grid and the log
                    await pilot.press("g")
                    await until(pilot, lambda: isinstance(app.screen, ChooseScreen))
                    await pilot.press("down", "enter")
                    await pilot.pause(0.5)
                    await until(pilot, idle(app), timeout=120)
                    for name in lab.nodes:
                        r = app.state.results()[f"network/multicast-ping/{name}"]
                        assert r["status"] == "ok" and "from n2" in r["detail"], r
                        assert screen.status_of("multicast-ping", name) == "ok"
                    assert any("ping from n2: ok" in line for _, line, _ in screen.log_lines)
                await pilot.press("n")
            results = await apply_section(pilot, app, "verify", seen)
            screen = app.screen
            assert isinstance(screen, VerifyScreen)
            assert results["verify/members/n1"]["status"] == "ok"
            assert results["verify/health/n2"]["status"] == "ok"
            # a manual check answered on the verify screen
            await pilot.press("m")
            await pilot.pause()
            screen.query_one("#note-same-room", Input).value = "both users see each other"
            screen.query_one("#pass-same-room").press()
            await pilot.pause()
            assert app.state.answers()["same-room"]["verdict"] == "pass"
            everything = app.state.results()
            sections = {k.split("/")[0] for k in everything}
            assert sections == {"preflight", "network", "database", "storage", "nodes",
                                "verify"}
            bad = {k: v["status"] for k, v in everything.items() if v["status"] not in DONE}
            assert not bad, bad
            # back to network (keys), roll it back: the routes are gone
            for _ in range(4):
                await pilot.press("p")
                await pilot.pause(0.2)
            await until(pilot, lambda: on_section(app, "network"))
            seen.clear()
            await pilot.press("B")
            await pilot.pause(0.3)
            await answer_modals(pilot, app, idle(app), seen)
            assert seen and "multicast-route" in seen[0].body, [s.body for s in seen]
            assert all(route(n) == "" for n in lab.nodes), {n: route(n) for n in lab.nodes}
            rolled = app.state.results()["network/multicast-route/n1"]["status"]
            assert rolled == "rolled-back"
            # quit mid-section, on a given step
            screen = app.screen
            screen.query_one("#grid", DataTable).move_cursor(row=2, column=1)
            await pilot.pause()
            step_name = screen.current_step.name
            await pilot.press("ctrl+q")
        app2 = make_app(str(plan), str(state_dir), env=ENV)
        async with app2.run_test(size=(100, 36)) as pilot:
            await until(pilot, lambda: isinstance(app2.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: on_section(app2, "network"))
            assert app2.screen.current_step.name == step_name
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app2.screen, ExportScreen))
            out = tmp_path / "export.yaml"
            app2.screen.query_one("#export-path", Input).value = str(out)
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert str(state_dir) in str(app2.screen.query_one("#session-path").render())
            await pilot.press("ctrl+q")
        doc = yaml.safe_load(out.read_text())
        assert doc["cluster"]["name"] == "lab" and "report" in doc
        assert ENV["OMW_DB_PASSWORD"] not in out.read_text()
    finally:
        lab.reset()  # the Hazelcast members, MariaDB and the responders live in the nodes
