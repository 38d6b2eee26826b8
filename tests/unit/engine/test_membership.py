"""What a plan change touches, from a run's results and the plan the state last applied."""

from __future__ import annotations

from omwizard.engine.membership import node_names, touch_report
from omwizard.engine.step import Result
from omwizard.plan.model import plan_from_dict

PREVIOUS = """omwizard: 1
nodes:
  - name: n1
  - name: n2
"""


def plan():
    nodes = [{"name": n, "host": f"198.18.0.1{i}"} for i, n in enumerate(("n1", "n2", "n3"), 1)]
    return plan_from_dict({
        "omwizard": 1, "cluster": {"name": "lab", "timezone": "Europe/Berlin"}, "nodes": nodes,
        "database": {"type": "mariadb", "host": "198.18.0.20", "name": "om", "user": "om",
                     "password": "${X}", "manage": False},
        "storage": {"kind": "existing"},
    }, env={"X": "pw"})


def test_touched_and_untouched_nodes() -> None:
    results = [
        Result("nodes", "hazelcast-xml", "n3", "would-change", ""),
        Result("verify", "restart", "n3", "would-change", ""),
        Result("network", "firewall", "n1", "would-change", ""),
        Result("nodes", "hazelcast-xml", "n1", "ok", ""),
        Result("nodes", "hazelcast-xml", "n2", "ok", ""),
    ]
    report = touch_report(PREVIOUS, plan(), results)
    assert report.change.added == ("n3",)
    assert report.touched == {"n1": ("network.firewall",),
                              "n3": ("nodes.hazelcast-xml", "verify.restart")}
    assert report.untouched == ("n2",)
    lines = report.lines()
    assert "joining the cluster: n3" in lines and "not touched: n2" in lines
    assert report.as_json()["untouched"] == ["n2"]


def test_saved_plan_names() -> None:
    assert node_names(PREVIOUS) == ["n1", "n2"]
    assert node_names(None) is None and node_names(":::") is None
