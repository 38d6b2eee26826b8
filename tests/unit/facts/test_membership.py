"""A living cluster's pure decisions: plan change, restart order, back as a member, the
pg_hba.conf line of a node that left, and the plan file edited with its comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from omwizard.facts.database import hba_line, hba_with_lines
from omwizard.facts.membership import (
    hba_without,
    plan_change,
    restart_order,
    seen_as_member,
)
from omwizard.facts.verify import read_log
from omwizard.plan.edit import PlanEditError, add_node_text, remove_node_text
from omwizard.plan.model import parse_plan_text

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plan.yaml"

HZ = "[main] INFO com.hazelcast.core.LifecycleService - [198.18.0.13]:5701 [dev] [5.5.0]"
LOG = (f"2026-12-01 10:00:00.000 {HZ} [198.18.0.13]:5701 is STARTING\n"
       "2026-12-01 10:00:03.000 [main] INFO ClusterService - [198.18.0.13]:5701\n\n"
       "Members {size:3, ver:3} [\n"
       "\tMember [198.18.0.11]:5701 - 1c0e\n"
       "\tMember [198.18.0.12]:5701 - 2d1f\n"
       "\tMember [198.18.0.13]:5701 - 3e20 this\n"
       "]\n\n"
       f"2026-12-01 10:00:04.000 {HZ} [198.18.0.13]:5701 is STARTED\n")


def test_plan_change() -> None:
    assert plan_change(["n1", "n2"], ["n1", "n2", "n3"]).added == ("n3",)
    shrink = plan_change(["n1", "n2", "n3"], ["n1", "n2"])
    assert shrink.removed == ("n3",) and shrink.kept == ("n1", "n2")
    assert plan_change(None, ["n1"]).empty  # a first run adds nothing to a running cluster


def test_restart_order_new_nodes_first() -> None:
    serving = {"n1": True, "n2": True, "n3": False}
    assert restart_order(["n1", "n2", "n3"], serving) == ["n3", "n1", "n2"]
    assert restart_order(["n1", "n2"], {}) == ["n1", "n2"]  # first setup: the plan's order


def test_seen_as_member() -> None:
    facts = read_log(LOG)
    assert seen_as_member(facts, {"198.18.0.13", "198.18.0.11"})
    assert not seen_as_member(facts, {"198.18.0.14"})
    assert not seen_as_member(read_log("nothing yet\n"), {"198.18.0.13"})


def test_hba_without_removes_exactly_the_leaving_address() -> None:
    base = "# TYPE DATABASE USER ADDRESS METHOD\nlocal all postgres peer\n"
    text = hba_with_lines(base, "om", "om", ["198.18.0.11", "198.18.0.13"])
    out = hba_without(text, "om", "om", "198.18.0.13")
    assert hba_line("om", "om", "198.18.0.13") not in out
    assert hba_line("om", "om", "198.18.0.11") in out
    assert "local all postgres peer" in out
    assert hba_without(out, "om", "om", "198.18.0.13") == out


def test_remove_node_keeps_every_other_line() -> None:
    text = add_node_text(EXAMPLE.read_text(), {"name": "om3", "host": "10.1.1.3"})
    assert text.startswith(EXAMPLE.read_text().split("database:")[0].rstrip("\n"))
    out = remove_node_text(text, "om2")
    removed = [ln for ln in text.splitlines() if ln not in out.splitlines()]
    assert removed and all(
        any(k in ln for k in ("om2", "10.1.1.2", "roles: [om]", "ssh:", "port: 2222"))
        for ln in removed), removed
    assert [ln for ln in text.splitlines() if ln.lstrip().startswith("#")] == \
        [ln for ln in out.splitlines() if ln.lstrip().startswith("#")]
    plan = parse_plan_text(out, {"OMW_DB_PASSWORD": "x"})
    assert [n.name for n in plan.nodes] == ["om1", "db1", "om3"]
    with pytest.raises(PlanEditError, match="no node 'om9'"):
        remove_node_text(text, "om9")
    with pytest.raises(PlanEditError, match="already"):
        add_node_text(text, {"name": "om1", "host": "10.1.1.1"})


def test_plan_rewrites_keep_the_files_quotes() -> None:
    """An operator's quoting survives both rewrites: `["10.1.1.*"]` must not become `[10.1.1.*]`."""
    text = EXAMPLE.read_text()
    quoted = [ln for ln in text.splitlines() if '"' in ln and "om2" not in ln]
    assert any('["10.1.1.*"]' in ln for ln in quoted)
    added = add_node_text(text, {"name": "om3", "host": "10.1.1.3"})
    assert all(ln in added.splitlines() for ln in quoted)
    assert all(ln in remove_node_text(text, "om2").splitlines() for ln in quoted)
