"""Words are for people (issue 16): every finding's detail, remedy and evidence replaced by
nonsense (tests/nonsense.py) changes nothing the program does. On the lab, through the real
faces: the CLI's apply (every apply hand-off), the export's OpenMeetings versions, a crash and
its resume, and the TUI's connections table.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omwizard.engine.state import StateStore
from omwizard.lab import Lab, add_user
from tests import nonsense
from tests.lab.test_reliability import SECTIONS, env, node_state, scenario
from tests.ui.test_lab_ui import until

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
OM = ("n1", "n2", "n3")


def omw(*args: str, state: Path, words: bool, **extra: str) -> tuple[int, dict | None, str]:
    """The CLI as an operator runs it; words=False: with nonsense for every finding's words."""
    entry = "omwizard" if words else "tests.nonsense"
    proc = subprocess.run([sys.executable, "-m", entry, *args, "--json", "--state", str(state)],
                          capture_output=True, text=True, env=env(**extra), timeout=600,
                          stdin=subprocess.DEVNULL, cwd=REPO)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return proc.returncode, doc, proc.stderr


def outcome(doc: dict) -> list[tuple]:
    """What code may rely on in a run's results: status, typed data, changes; never words."""
    return [(r["section"], r["step"], r["node"], r["status"], r.get("data"),
             [(c["kind"], c["target"]) for c in r.get("changes", [])]) for r in doc["results"]]


def om_versions(plan: Path, state: Path, out: Path, *, words: bool) -> dict:
    rc, _doc, err = omw("export", str(plan), "-o", str(out), state=state, words=words)
    assert rc == 0, err
    return yaml.safe_load(out.read_text())["report"]["om_versions"]


def test_nonsense_words_change_no_apply_export_or_resume(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    runs: dict[bool, tuple[list[tuple], dict, dict]] = {}
    for words in (True, False):
        lab.reset()
        scenario(lab)
        state = tmp_path / f"state-{words}"
        rc, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state, words=words)
        assert rc == 0, err + json.dumps(doc, indent=1)
        assert doc is not None
        texts = [r["detail"] for r in doc["results"]]
        assert all(t.startswith(nonsense.MARK) for t in texts) != words, texts[:5]
        versions = om_versions(plan, state, tmp_path / f"export-{words}.yaml", words=words)
        runs[words] = (outcome(doc), node_state(lab), versions)
        rc, doc, err = omw("check", str(plan), *SECTIONS, state=state, words=words)
        assert rc == 0, err + json.dumps(doc, indent=1)
    assert runs[False] == runs[True]
    assert runs[False][2] == {name: "9.1.0" for name in OM}
    data = {(r[1], r[2]): r[4] for r in runs[False][0]}
    assert data[("ssh", "n1")]["kind"] == "ssh-access" and data[("timezone", "n2")]["zone"]
    assert sum(r[3] == "changed" for r in runs[False][0]) >= 10  # the hand-offs were used

    # a crash in the middle, resumed: the journal and the typed checks settle it, not words
    lab.reset()
    scenario(lab)
    state = tmp_path / "state-crash"
    cmd = [sys.executable, "-m", "tests.nonsense", "apply", str(plan), *SECTIONS, "--yes",
           "--json", "--state", str(state)]
    rc = subprocess.run(cmd, capture_output=True, env=env(OMW_FAULT="after-write:4"),
                        timeout=600, stdin=subprocess.DEVNULL, cwd=REPO).returncode
    assert rc == -signal.SIGKILL
    assert StateStore(state).open_records()
    rc, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state, words=False)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert StateStore(state).open_records() == []
    assert node_state(lab) == runs[True][1]


# -- the TUI's connections table --------------------------------------------------------------

SUDO_PW = "Sudo-pw_8123"


@pytest.mark.parametrize("words", [True, False], ids=["words", "nonsense"])
async def test_connections_table_reads_typed_access(fresh_lab: Lab, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    words: bool) -> None:
    """root, a sudoer with a password (asked in a modal) and a NOPASSWD sudoer: the table's
    ssh and sudo columns come from preflight.ssh's typed SshAccess, whatever its words."""
    from textual.widgets import Input

    from omwizard.tui.app import make_app
    from omwizard.tui.screens.inventory import InventoryScreen
    from omwizard.tui.screens.modals import TextScreen

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    lab = fresh_lab
    add_user(lab.nodes["n2"], "omwop", password=SUDO_PW, nopasswd=False)
    add_user(lab.nodes["n3"], "omwnp", nopasswd=True)
    data = lab.plan_dict()
    data["nodes"][1]["ssh"] = {"user": "omwop"}
    data["nodes"][2]["ssh"] = {"user": "omwnp"}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    if not words:
        nonsense.install()
    try:
        app = make_app(str(plan), str(tmp_path / "session"), env={"OMW_DB_PASSWORD": "labpass"})
        async with app.run_test(size=(100, 36)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, InventoryScreen))
            inventory = app.screen
            await pilot.press("ctrl+t")
            await until(pilot, lambda: isinstance(app.screen, TextScreen))
            assert app.screen.query_one("#answer", Input).password
            await pilot.press(*SUDO_PW, "enter")
            await until(pilot, lambda: not any(
                w.is_running for w in app.workers if w.group == "test-connections"))
            rows = inventory.connection_rows
            assert {n: (r["ssh"], r["sudo"]) for n, r in rows.items()} == {
                "n1": ("✓ root", "✓ root"),
                "n2": ("✓ omwop", "✓ password"),
                "n3": ("✓ omwnp", "✓ no password"),
                "db": ("✓ root", "✓ root"),
            }, rows
            assert rows["n1"]["om"].startswith("✓ " + nonsense.MARK) != words, rows
            await pilot.press("ctrl+q")
    finally:
        nonsense.uninstall()
