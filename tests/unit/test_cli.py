"""The command line's outside: exit codes and messages for bad input; nothing is contacted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

PLAN = {
    "omwizard": 1,
    "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
    "nodes": [
        {
            "name": "om1",
            "host": "192.0.2.1",
            "roles": ["om", "storage"],
            "server_url": "https://om1.example.org/openmeetings",
        },
        {"name": "om2", "host": "192.0.2.2", "server_url": "https://om2.example.org/openmeetings"},
    ],
    "database": {
        "type": "mysql",
        "host": "192.0.2.1",
        "name": "openmeetings",
        "user": "om",
        "password": "${OMW_DB_PASSWORD}",
        "manage": False,
    },
}


def omw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {**os.environ, **(env or {})}
    full.pop("OMW_DB_PASSWORD", None)
    return subprocess.run(
        [sys.executable, "-m", "omwizard", *args],
        capture_output=True,
        text=True,
        env=full,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_ok(tmp_path: Path) -> None:
    result = omw("validate", str(write(tmp_path, PLAN)))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "prod" in result.stdout


def test_validate_json(tmp_path: Path) -> None:
    result = omw("validate", str(write(tmp_path, PLAN)), "--json")
    assert json.loads(result.stdout)["valid"] is True


def test_invalid_plan_exit_2_names_key_and_fix(tmp_path: Path) -> None:
    bad = {**PLAN, "database": {**PLAN["database"], "type": "h2"}}
    for command in ("validate", "check", "apply"):
        extra = () if command == "validate" else ("--yes",)
        result = omw(command, str(write(tmp_path, bad)), *extra)
        assert result.returncode == 2
        assert "database.type" in result.stdout
        assert "H2" in result.stdout


def test_unknown_node_is_a_usage_error(tmp_path: Path) -> None:
    result = omw("check", str(write(tmp_path, PLAN)), "--node", "om9", "--section", "network")
    assert result.returncode == 2
    assert "om9" in result.stdout and "om1" in result.stdout


def test_apply_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    result = omw("apply", str(write(tmp_path, PLAN)), "--section", "network")
    assert result.returncode == 2
    assert "--yes" in result.stdout


def test_missing_db_password_without_terminal_says_how(tmp_path: Path) -> None:
    result = omw(
        "check",
        str(write(tmp_path, PLAN)),
        "--section",
        "database",
        "--state",
        str(tmp_path / "state"),
    )
    assert result.returncode == 2
    assert "OMW_DB_PASSWORD" in result.stdout


def test_missing_plan_file(tmp_path: Path) -> None:
    result = omw("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read" in result.stdout


def test_bad_section_is_argparse_error(tmp_path: Path) -> None:
    result = omw("check", str(write(tmp_path, PLAN)), "--section", "bogus")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_redactor_masks_secrets_without_mangling_text() -> None:
    from omwizard.engine.step import Redactor

    red = Redactor(["x", "Pa&ss<word>"])
    assert red("exit 1; pw=x") == "exit 1; pw=********"
    assert red("Password=Pa&amp;ss&lt;word&gt;") == "Password=********"
    assert red("Pa&ss<word>") == "********"
