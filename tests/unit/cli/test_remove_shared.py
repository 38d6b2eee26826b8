"""`remove-node` runs the orchestration the TUI runs too (engine/removal.py): the CLI opens the
session, asks, prints and rewrites the plan file; the shared function does the cluster work.
Nothing is contacted: the shared function is replaced by a recorder (the example's hosts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omwizard.cli import main as cli
from omwizard.cli import nodes
from omwizard.engine import removal
from omwizard.engine.step import FAILED, Result
from omwizard.plan.edit import add_node_text
from omwizard.plan.model import Plan

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plan.yaml"


class Recorder:
    def __init__(self, results: list[Result]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.results = results

    async def __call__(self, session: Any, before: Plan, after: Plan, name: str,
                       leaving: str = "keep") -> list[Result]:
        self.calls.append({"session_plan": session.plan, "before": before, "after": after,
                           "name": name, "leaving": leaving, "state": session.state})
        return self.results


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMW_DB_PASSWORD", "pw")
    path = tmp_path / "plan.yaml"
    path.write_text(add_node_text(EXAMPLE.read_text(), {"name": "om3", "host": "10.1.1.3"}))
    return path


def test_the_cli_calls_the_shared_orchestration(plan: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert nodes.remove_node is removal.remove_node
    recorder = Recorder([])
    monkeypatch.setattr(nodes, "remove_node", recorder)
    state = tmp_path / "state"
    code = cli.main(["remove-node", str(plan), "om3", "--yes", "--leaving", "rollback",
                     "--state", str(state)])
    assert code == cli.EXIT_OK
    [call] = recorder.calls
    assert call["name"] == "om3" and call["leaving"] == "rollback"
    assert call["session_plan"] == call["before"]
    assert [n.name for n in call["after"].nodes] == ["om1", "om2", "db1"]
    assert call["state"].directory == state
    assert "om3" not in plan.read_text() and "# " in plan.read_text()


def test_the_default_keeps_the_leaving_nodes_changes_and_a_failure_keeps_the_file(
        plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = plan.read_text()
    recorder = Recorder([Result("verify", "members", "om1", FAILED, "om3 still a member")])
    monkeypatch.setattr(nodes, "remove_node", recorder)
    code = cli.main(["remove-node", str(plan), "om3", "--yes", "--state",
                     str(tmp_path / "state")])
    assert code != cli.EXIT_OK
    assert [c["leaving"] for c in recorder.calls] == ["keep"]
    assert plan.read_text() == original
