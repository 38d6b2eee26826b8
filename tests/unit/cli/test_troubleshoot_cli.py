"""discover, doctor and bundle on the command line: bad input is exit 2 with the fix named,
before anything is contacted; the matrix prints as a table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from omwizard.cli import main as cli
from omwizard.cli.doctor import print_matrix
from omwizard.facts.doctor import NodeView
from tests.unit.cli.test_main import PLAN


def test_discover_needs_two_hosts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["discover", "198.18.0.250", "-o", str(tmp_path / "p.yaml")]) == 2
    assert "at least 2 hosts" in capsys.readouterr().out
    assert not (tmp_path / "p.yaml").exists()


def test_discover_refuses_a_host_twice(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    assert cli.main(["discover", "198.18.0.250", "198.18.0.250", "-o",
                     str(tmp_path / "p.yaml")]) == 2
    assert "named twice" in capsys.readouterr().out


def test_doctor_on_a_bad_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("omwizard: 2\n")
    assert cli.main(["doctor", str(plan)]) == 2
    assert "not valid" in capsys.readouterr().out


def test_doctor_unknown_node(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    assert cli.main(["doctor", str(plan), "--node", "nope"]) == 2
    assert "no such node" in capsys.readouterr().out


def test_bundle_into_a_missing_folder(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    assert cli.main(["bundle", str(plan), "-o", str(tmp_path / "no" / "b.tar.gz")]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_matrix_is_a_table() -> None:
    rows = [NodeView("om1", "10.0.0.1", True, om_version="9.1.0", instance_name="om1"),
            NodeView("om2", "10.0.0.2", True, om_version="9.0.0", instance_name="om2")]
    stream = io.StringIO()
    print_matrix(rows, cli.Printer(stream))
    text = stream.getvalue()
    assert "om1" in text and "om2" in text
    line = next(x for x in text.splitlines() if "OpenMeetings" in x)
    assert "9.1.0" in line and "9.0.0" in line
