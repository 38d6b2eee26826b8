"""remove-node's front door: nothing is contacted when the node or the plan without it is
wrong, and the plan file is rewritten atomically with its comments and mode kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.cli import main as cli
from omwizard.cli.nodes import plans, write_plan_file
from omwizard.plan.edit import add_node_text

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plan.yaml"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMW_DB_PASSWORD", "pw")


def test_unknown_node_and_last_roles_are_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(EXAMPLE.read_text())
    assert cli.main(["remove-node", str(plan), "om9", "--yes"]) == cli.EXIT_INVALID
    # two OM nodes: without om2 the plan is not a cluster
    assert cli.main(["remove-node", str(plan), "om2", "--yes"]) == cli.EXIT_INVALID
    with pytest.raises(cli.UsageError, match="db1 is not a valid plan|without db1"):
        plans(str(plan), "db1")
    assert plan.read_text() == EXAMPLE.read_text()


def test_plan_without_the_node_and_the_file_rewrite(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(add_node_text(EXAMPLE.read_text(), {"name": "om3", "host": "10.1.1.3"}))
    plan.chmod(0o600)
    before, after, text = plans(str(plan), "om2")
    assert [n.name for n in before.om_nodes] == ["om1", "om2", "om3"]
    assert [n.name for n in after.om_nodes] == ["om1", "om3"]
    write_plan_file(str(plan), text)
    assert plan.read_text() == text and "# " in text
    assert plan.stat().st_mode & 0o777 == 0o600


def test_confirmation_is_required_without_a_terminal(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(add_node_text(EXAMPLE.read_text(), {"name": "om3", "host": "10.1.1.3"}))
    assert cli.main(["remove-node", str(plan), "om3"]) == cli.EXIT_INVALID
