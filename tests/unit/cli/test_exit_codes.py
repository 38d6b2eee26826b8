"""Exit status as README and CONTRACT say: 1 when something needs a change, a dry run included."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from omwizard.cli import main as cli
from omwizard.engine.session import document
from omwizard.engine.step import Result
from tests.unit.cli.test_main import PLAN


class _Session:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    def document(self, command: str, results: list[Result]) -> dict[str, Any]:
        return document(command, self.cluster, results)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, status: str,
         *extra: str) -> int:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))

    async def fake(args: argparse.Namespace, plan: Any, out: Any) -> tuple[list[Result], Any]:
        result = Result("network", "multicast-route", "om1", status, "224.0.0.0/4")
        return [result], _Session(plan.cluster.name)

    monkeypatch.setattr(cli, "run_engine", fake)
    return cli.main([command, str(plan), "--section", "network", "--yes", *extra])


@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_dry_run_with_would_changes_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    assert _run(tmp_path, monkeypatch, command, "would-change", "--dry-run") == 1


@pytest.mark.parametrize(
    ("command", "status", "code"),
    [
        ("apply", "ok", 0),
        ("apply", "changed", 0),
        ("apply", "failed", 1),
        ("check", "needs-change", 1),
        ("check", "ok", 0),
        ("rollback", "rolled-back", 0),
    ],
)
def test_exit_status_by_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, status: str, code: int
) -> None:
    extra = ("--dry-run",) if command != "check" and status == "ok" else ()
    assert _run(tmp_path, monkeypatch, command, status, *extra) == code
