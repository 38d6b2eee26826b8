"""Issue #17: a kept rehearsal's plan works from the CLI (its password from a 0600 file, never
shown), and `rehearse --down` removes the cluster with its session and host-side backups."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from omwizard.cli.rehearse import ENV_FILE, REHEARSAL_DIR
from omwizard.engine.state import default_state_dir
from omwizard.engine.step import BACKUP_DIR
from tests.lab.test_rehearse import nothing_left, rehearse

pytestmark = pytest.mark.lab_build


def test_a_kept_rehearsal_is_usable_from_the_cli_and_down_leaves_nothing(own_lab_slot) -> None:
    name = "rehearsal-none-yet"
    kept = rehearse("--nodes", "2", "--headless", "--keep")
    said = kept.stdout + kept.stderr
    try:
        assert kept.returncode == 0, said[-3000:]
        plan_path = REHEARSAL_DIR / "plan.yaml"
        env_file = REHEARSAL_DIR / ENV_FILE
        plan = yaml.safe_load(plan_path.read_text())
        name = plan["cluster"]["name"]
        assert name.startswith("rehearsal-") and name != "rehearsal"
        assert plan["database"]["password"] == "${OMW_DB_PASSWORD}"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        password = next(line.split("=", 1)[1] for line in env_file.read_text().splitlines()
                        if line.startswith("OMW_DB_PASSWORD="))
        assert password and password not in said, "the password is never printed"
        assert f"{plan_path}" in said and f"{env_file}" in said
        # the printed command, as printed (we are root: no sudo), checks without a prompt
        command = next(line.strip() for line in said.splitlines()
                       if line.strip().startswith(("sh -c", "sudo sh -c")) and " check " in line)
        argv = shlex.split(command.removeprefix("sudo "))
        env = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
        check = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                               stdin=subprocess.DEVNULL)
        out = check.stdout + check.stderr
        assert check.returncode == 0, out[-3000:]
        assert "no value" not in out and password not in out
        # the kept cluster keeps the machine's lab slot: nothing replaces it behind our back
        assert "kept" in Path("/run/omwlab.lock").read_text()
        again = rehearse("--nodes", "2", "--headless", wait="0")
        assert again.returncode == 2, again.stdout + again.stderr
        assert "kept with --keep" in again.stdout and "rehearse --down`" in again.stdout
        assert yaml.safe_load(plan_path.read_text())["cluster"]["name"] == name
        state = default_state_dir(name)
        assert state.is_dir(), "the CLI's session is this rehearsal's own"
        assert (Path(BACKUP_DIR) / name).is_dir(), "the apply kept its backups on the host"
    finally:
        down = rehearse("--down")
    assert down.returncode == 0, down.stdout + down.stderr
    nothing_left()
    assert not default_state_dir(name).exists()
    assert not (Path(BACKUP_DIR) / name).exists()
