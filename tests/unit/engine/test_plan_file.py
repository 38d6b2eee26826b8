"""The plan file after a membership change: rewritten atomically with its comments and mode,
and never when it no longer matches the plan the face works on; the plan without a node."""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.engine.plan_file import PlanFileError, update_plan_file
from omwizard.engine.removal import RemovalError, plan_without
from omwizard.plan.edit import add_node_text, remove_node_text
from omwizard.plan.model import load_plan, parse_plan_text

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plan.yaml"
ENV = {"OMW_DB_PASSWORD": "pw"}
OM3 = {"name": "om3", "host": "10.1.1.3", "roles": ["om"]}


def test_the_file_gets_the_node_with_comments_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE.read_text())
    path.chmod(0o600)
    after = parse_plan_text(add_node_text(EXAMPLE.read_text(), OM3), ENV)
    update_plan_file(path, lambda t: add_node_text(t, OM3), after, ENV)
    assert load_plan(path, ENV).nodes == after.nodes
    assert "# omwizard plan" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_file_that_differs_from_the_plan_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE.read_text())
    elsewhere = parse_plan_text(add_node_text(EXAMPLE.read_text(), {**OM3, "name": "om4"}), ENV)
    with pytest.raises(PlanFileError, match="other nodes"):
        update_plan_file(path, lambda t: add_node_text(t, OM3), elsewhere, ENV)
    with pytest.raises(PlanFileError, match="no node 'om9'"):
        update_plan_file(path, lambda t: remove_node_text(t, "om9"), elsewhere, ENV)
    assert path.read_text() == EXAMPLE.read_text()


def test_plan_without_names_the_problem_and_the_fix() -> None:
    text = add_node_text(EXAMPLE.read_text(), OM3)
    before = parse_plan_text(text, ENV)
    after, new = plan_without(before, text, "om3", ENV, "plan.yaml")
    assert [n.name for n in after.nodes] == ["om1", "om2", "db1"] and "om3" not in new
    with pytest.raises(RemovalError, match="plan.yaml: no node 'om9'"):
        plan_without(before, text, "om9", ENV, "plan.yaml")
    with pytest.raises(RemovalError, match="(?s)without db1 is not a valid plan.*fix: move"):
        plan_without(before, text, "db1", ENV, "plan.yaml")
