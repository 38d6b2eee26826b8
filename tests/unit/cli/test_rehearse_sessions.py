"""Issue #17 (1, 3, 4): each rehearsal is its own session and leaves nothing; its password is
usable from the CLI without ever being shown; messages name commands that exist; "lab busy"
says who holds the lab."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from omwizard.cli import rehearse
from omwizard.engine import step as engine_step
from omwizard.lab import lab as lab_mod
from omwizard.lab.lab import LabBusy
from tests.unit.lab.test_omfiles import Out, args

SECRET = "rehearse-unit-Secret-123"


class FakeLab:
    """What _prepare and rehearse() use of a Lab: write_plan, own, teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.torn_down = False

    def own(self, path: Path) -> None:
        lab_mod.Lab.own(self, path)  # type: ignore[arg-type]

    def write_plan(self, path: Path, **overrides: Any) -> Path:
        plan = {"cluster": {"name": "lab", **overrides.get("cluster", {})},
                "database": {"password": "${OMW_DB_PASSWORD}"}}
        path.write_text(yaml.safe_dump(plan))
        return path

    def teardown(self) -> None:
        lab_mod.remove_owned(self.workdir)
        self.torn_down = True

    def keep_alive(self) -> int:
        self.kept = True
        return 1


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REHEARSAL_DIR, the state base and the host backup folder, all under tmp_path."""
    monkeypatch.setattr(rehearse, "REHEARSAL_DIR", tmp_path / "rehearsal")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(engine_step, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("OMW_DB_PASSWORD", SECRET)
    monkeypatch.delenv("SUDO_USER", raising=False)
    return tmp_path


def fake_start(tmp_path: Path, labs: list[FakeLab]) -> Any:
    def start(n_nodes: int, files: object, db: str) -> tuple[FakeLab, Path]:
        lab = FakeLab(tmp_path / f"lab{len(labs)}")
        labs.append(lab)
        rehearse.forget_sessions()
        plan, _ = rehearse._prepare(lab, db)
        return lab, plan

    return start


def session_of(plan: Path) -> tuple[str, Path, Path]:
    from omwizard.engine.state import default_state_dir

    name = yaml.safe_load(plan.read_text())["cluster"]["name"]
    return name, default_state_dir(name), Path(engine_step.BACKUP_DIR) / name


# -- point 1: each rehearsal is its own session; nothing is left ---------------------------------


def test_each_rehearsal_gets_its_own_session_and_teardown_removes_it(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every rehearsal was cluster "rehearsal", so a new one found the old journal,
    results and backups (~/.local/state/omwizard/rehearsal, /var/backups/omwizard/rehearsal)."""
    labs: list[FakeLab] = []
    names = []
    monkeypatch.setattr(rehearse, "requirements", lambda: None)
    monkeypatch.setattr(rehearse, "_start", fake_start(sandbox, labs))

    def headless(plan: Path, out: object, *, json_out: bool) -> int:
        name, state, backups = session_of(plan)
        names.append(name)
        state.mkdir(parents=True)  # what a session and an apply would make
        (state / "journal.json").write_text("{}")
        backups.mkdir(parents=True)
        (backups / "0123-persistence.xml").write_text(f"password={SECRET}")
        return 0

    monkeypatch.setattr(rehearse, "_headless", headless)
    for _ in range(2):
        out = Out()
        assert rehearse.rehearse(args(), out) == 0, out.lines
        assert labs[-1].torn_down
        assert not rehearse.REHEARSAL_DIR.exists()
        assert not (sandbox / "state" / "omwizard" / names[-1]).exists()
        assert not (sandbox / "backups" / names[-1]).exists()
    assert names[0] != names[1]
    assert all(n.startswith("rehearsal-") for n in names)


def test_down_removes_a_kept_rehearsals_session_backups_and_legacy_leftovers(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rehearse.os, "geteuid", lambda: 0)
    monkeypatch.setattr("omwizard.lab.cleanup_leftovers", lambda wait=0: None)
    lab = FakeLab(sandbox / "lab")
    plan, name = rehearse._prepare(lab, "mariadb")
    _, state, backups = session_of(plan)
    state.mkdir(parents=True)
    backups.mkdir(parents=True)
    # what rehearsals before this change left: one shared "rehearsal" session and backups
    legacy = sandbox / "state" / "omwizard" / "rehearsal"
    legacy.mkdir(parents=True)
    (legacy / "plan.yaml").write_text("ssh:\n  identity: /var/tmp/omwlab/id_ed25519\n")
    (sandbox / "backups" / "rehearsal").mkdir(parents=True)
    other = sandbox / "state" / "omwizard" / "prod"  # an operator's own cluster: untouched
    other.mkdir(parents=True)
    out = Out()
    assert rehearse.rehearse(args(down=True), out) == 0, out.lines
    for gone in (state, backups, legacy, sandbox / "backups" / "rehearsal",
                 rehearse.REHEARSAL_DIR):
        assert not gone.exists(), gone
    assert other.exists()


def test_the_lab_removes_what_it_owns_also_after_a_crash(tmp_path: Path) -> None:
    """Lab.own(): cleanup_leftovers / the next build_lab remove a crashed rehearsal's session."""
    workdir = tmp_path / "omwlab"
    lab = FakeLab(workdir)
    kept = tmp_path / "state" / "rehearsal-x"
    kept.mkdir(parents=True)
    (kept / "journal.json").write_text("{}")
    single = tmp_path / "a" / "file"
    single.parent.mkdir()
    single.write_text("x")
    lab.own(kept)
    lab.own(single)
    with pytest.raises(ValueError):
        lab.own(Path("/"))
    lab_mod.remove_owned(workdir)
    assert not kept.exists() and not single.exists()


# -- point 3: the password is usable, never shown ------------------------------------------------


def test_the_kept_plan_has_a_password_file_and_the_command_to_use_it(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the password was random, in no file, and `check` on the kept plan asked for it."""
    labs: list[FakeLab] = []
    monkeypatch.setattr(rehearse, "requirements", lambda: None)
    monkeypatch.setattr(rehearse, "_start", fake_start(sandbox, labs))
    monkeypatch.setattr(rehearse, "_headless", lambda *a, **k: 0)
    monkeypatch.setenv("OMW_INVOKED_AS", "scripts/wizard")
    out = Out()
    assert rehearse.rehearse(args(keep=True), out) == 0
    assert getattr(labs[-1], "kept", False), "a kept rehearsal keeps the machine's lab slot"
    plan = rehearse.REHEARSAL_DIR / "plan.yaml"
    env = rehearse.REHEARSAL_DIR / rehearse.ENV_FILE
    assert "${OMW_DB_PASSWORD}" in plan.read_text() and SECRET not in plan.read_text()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE(rehearse.REHEARSAL_DIR.stat().st_mode) == 0o700
    assert not any(SECRET in line for line in out.lines), "the password is never printed"
    said = "\n".join(out.lines)
    assert str(plan) in said and str(env) in said
    assert "scripts/wizard rehearse --down" in said and "omwizard rehearse" not in said
    # the printed command, run as printed (sudo left out), gives omwizard the password
    command = next(line.strip() for line in out.lines if "check" in line and str(env) in line
                   and line.strip().startswith(("sh ", "sudo ")))
    probe = command.removeprefix("sudo ").replace(
        "exec scripts/wizard check", "exec env | grep OMW_DB_PASSWORD #")
    env_vars = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
    got = subprocess.run(probe, shell=True, capture_output=True, text=True, env=env_vars)
    assert got.stdout.strip() == f"OMW_DB_PASSWORD={SECRET}", (probe, got.stderr)
    assert SECRET not in command
    json.loads((rehearse.REHEARSAL_DIR / rehearse.SESSION_FILE).read_text())


# -- point 4: commands that exist; who holds the lab ---------------------------------------------


@pytest.mark.parametrize(("invoked", "argv0", "expected"), [
    ("scripts/wizard", "/x/.venv/bin/omwizard", "scripts/wizard rehearse --down"),
    ("./my dir/wizard", "/x/.venv/bin/omwizard", "'./my dir/wizard' rehearse --down"),
    ("", "/x/omwizard/__main__.py", f"{sys.executable} -m omwizard rehearse --down"),
    ("", "/nowhere/bin/omwizard", "/nowhere/bin/omwizard rehearse --down"),
])
def test_commands_are_named_the_way_the_operator_ran_the_wizard(
    monkeypatch: pytest.MonkeyPatch, invoked: str, argv0: str, expected: str
) -> None:
    """Before: always "sudo omwizard rehearse --down", with no omwizard on PATH."""
    monkeypatch.setenv("OMW_INVOKED_AS", invoked)
    monkeypatch.setattr(sys, "argv", [argv0, "rehearse"])
    monkeypatch.setenv("SUDO_USER", "op")
    assert rehearse.down_command() == f"sudo {expected}"


def test_scripts_wizard_tells_omwizard_how_it_was_run() -> None:
    text = (Path(__file__).parents[3] / "scripts" / "wizard").read_text()
    assert 'export OMW_INVOKED_AS="$0"' in text


def test_lab_busy_names_the_live_holder_and_does_not_suggest_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: "quit it, or ... --down" whoever held the lab, and no word of who that was."""
    monkeypatch.setattr(lab_mod, "LOCK_FILE", tmp_path / "omwlab.lock")
    fd = lab_mod._lock()
    try:
        with pytest.raises(LabBusy) as caught:
            lab_mod._lock()
    finally:
        os.close(fd)
    busy = caught.value
    assert busy.holder_pid == os.getpid() and busy.holder_alive
    assert busy.holders and busy.holders[0][0] == os.getpid()
    message = rehearse.busy_message(busy)
    assert f"pid {os.getpid()}" in message and "python" in message.lower()
    assert "--down" not in message


def test_lab_busy_with_its_holder_gone_suggests_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMW_INVOKED_AS", "scripts/wizard")
    monkeypatch.setenv("SUDO_USER", "op")
    message = rehearse.busy_message(LabBusy("x", holder_pid=999999, holder_alive=False))
    assert "pid 999999 has exited" in message
    assert "`sudo scripts/wizard rehearse --down`" in message


def test_rehearse_reports_the_holder_of_a_busy_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(*_: object) -> None:
        raise LabBusy("held", holder_pid=4242, holder_alive=True,
                      holders=((4242, "python -m pytest tests/lab"),))

    monkeypatch.setattr(rehearse, "requirements", lambda: None)
    monkeypatch.setattr(rehearse, "_start", busy)
    monkeypatch.setenv("OMW_DB_PASSWORD", "unit-test")
    out = Out()
    assert rehearse.rehearse(args(), out) == 2
    assert "pid 4242 (python -m pytest tests/lab)" in out.lines[-1]
    assert "--down" not in out.lines[-1]


def test_lab_busy_with_its_holder_gone_but_the_lock_open_names_who_has_it() -> None:
    message = rehearse.busy_message(LabBusy("x", holder_pid=999999, holder_alive=False,
                                            holders=((123, "python -m child"),)))
    assert "pid 999999, which has exited" in message and "pid 123 (python -m child)" in message
    assert "--down" not in message


def test_a_kept_rehearsal_is_named_as_such_when_it_holds_the_lab(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMW_INVOKED_AS", "scripts/wizard")
    message = rehearse.busy_message(LabBusy("x", holder_pid=77, holder_alive=True,
                                            holders=((77, "sleep infinity"),), kept=True))
    assert "kept with --keep" in message and "`scripts/wizard rehearse --down`" in message
    assert "sleep infinity" not in message


def test_the_lock_file_of_a_kept_lab_says_so(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_mod, "LOCK_FILE", tmp_path / "omwlab.lock")
    fd = lab_mod._lock()
    try:
        os.pwrite(fd, f"{os.getpid()} kept\n".encode(), 0)
        with pytest.raises(LabBusy) as caught:
            lab_mod._lock()
    finally:
        os.close(fd)
    assert caught.value.kept and caught.value.holder_pid == os.getpid()
