"""The architecture's import contracts (pyproject.toml, run by scripts/test) hold, and bite.

`lint-imports` is what scripts/test runs before the tests; these show that it passes on the
tree as it is and that a violation (an engine-side module importing the TUI) fails it, so a
broken layer cannot slip through as a silently passing guard.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-logo", "--no-cache"], cwd=cwd, env=env, text=True,
        capture_output=True, timeout=120,
    )


def test_import_contracts_hold() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_layer_violation_fails_the_guard(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "omwizard", tmp_path / "omwizard",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    facts = tmp_path / "omwizard" / "facts" / "base.py"
    facts.write_text(facts.read_text() + "\nimport omwizard.engine.runner  # noqa\n")
    done = lint(tmp_path)
    assert done.returncode != 0
    assert "Facts, configs and the OpenMeetings layout are pure" in done.stdout
    assert "omwizard.facts.base -> omwizard.engine.runner" in done.stdout
