"""network.cluster_name: Hazelcast's cluster-name in the plan (default omwizard-<cluster>).

A cluster built by hand keeps its own name (discover writes it), so `check` does not insist on
omwizard's; the name is validated because it is written into hazelcast.xml.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml

from omwizard.configs import hazelcast as hzconf
from omwizard.facts import discover as fd
from omwizard.facts.nodes import cluster_name, settings_for
from omwizard.lab import shared_dir
from omwizard.plan.model import PlanError, dump_plan, plan_from_dict

FIXTURES = shared_dir() / "fixtures" / "openmeetings"
BASE: dict[str, Any] = {
    "omwizard": 1,
    "cluster": {"name": "prod", "timezone": "UTC"},
    "ssh": {"user": "root", "known_hosts": "/tmp/kh"},
    "nodes": [{"name": "om1", "host": "10.1.1.1", "address": "10.1.1.1"},
              {"name": "om2", "host": "10.1.1.2", "address": "10.1.1.2"}],
    "database": {"type": "mysql", "host": "10.1.1.9", "name": "om", "user": "om",
                 "password": "${P}", "manage": False},
    "storage": {"kind": "existing"},
}


def plan_with(**network: Any):  # noqa: ANN201
    data = copy.deepcopy(BASE)
    data["network"] = network
    return plan_from_dict(data, env={"P": "x"})


def test_default_is_omwizards_name_and_is_not_written_back() -> None:
    plan = plan_with()
    assert plan.network.cluster_name is None and cluster_name(plan) == "omwizard-prod"
    assert "cluster_name" not in yaml.safe_load(dump_plan(plan))["network"]


def test_a_given_name_is_used_and_round_trips() -> None:
    plan = plan_with(cluster_name="om-prod.eu_1")
    assert cluster_name(plan) == "om-prod.eu_1"
    assert settings_for(plan, plan.nodes[0]).cluster_name == "om-prod.eu_1"
    again = yaml.safe_load(dump_plan(plan))
    assert again["network"]["cluster_name"] == "om-prod.eu_1"


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a<b>", "x&y", "a\"b", "é", "x" * 129, 5,
                                 ["dev"]])
def test_names_not_safe_in_xml_are_refused_with_a_fix(bad: Any) -> None:
    with pytest.raises(PlanError) as err:
        plan_with(cluster_name=bad)
    (problem,) = err.value.problems
    assert problem.path == "network.cluster_name" and "letters, digits" in problem.fix


def test_hazelcasts_default_dev_is_accepted_with_a_warning() -> None:
    plan = plan_with(cluster_name="dev")
    assert cluster_name(plan) == "dev"
    assert [w.path for w in plan.warnings] == ["network.cluster_name"]


def test_absent_cluster_name_counts_as_dev_in_the_check() -> None:
    """The shipped hazelcast.xml has no <cluster-name>: Hazelcast uses 'dev', and a plan
    saying dev has nothing to change there; another name still does."""
    text = (FIXTURES / "9.1.0" / "hazelcast.xml").read_text()
    facts = hzconf.inspect(text)
    assert facts.cluster_name is None
    plan = plan_with(cluster_name="dev")
    settings = dataclasses.replace(settings_for(plan, plan.nodes[0]), instance_name="server-1")
    assert not any("cluster-name" in p for p in hzconf.problems(text, settings))
    other = dataclasses.replace(settings, cluster_name="omwizard-prod")
    assert any("cluster-name" in p for p in hzconf.problems(text, other))


def test_discover_keeps_the_nodes_cluster_name() -> None:
    """Nodes named 'om-prod' (not omwizard's pattern): the plan says so, one odd node is a
    disagreement; omwizard's own pattern needs no key."""
    from tests.unit.facts.test_discover import seen

    def renamed(s: fd.Seen, name: str) -> fd.Seen:
        files = {p: t.replace("<cluster-name>omwizard-prod</cluster-name>",
                              f"<cluster-name>{name}</cluster-name>")
                 for p, t in s.snapshot.files.items()}
        return dataclasses.replace(s, snapshot=dataclasses.replace(s.snapshot, files=files))

    ssh = {"user": "root", "port": 22, "known_hosts": "/tmp/kh", "host_keys": "strict"}
    hosts = [renamed(fd_seen, n) for fd_seen, n in zip(
        [seen("om1", "10.9.0.1"), seen("om2", "10.9.0.2"), seen("om3", "10.9.0.3")],
        ["om-prod", "om-prod", "other"], strict=True)]
    found = fd.build_plan(hosts, ssh)
    plan = plan_from_dict(found.plan, env={})
    assert plan.network.cluster_name == "om-prod" and cluster_name(plan) == "om-prod"
    assert [d.key for d in found.disagreements] == ["network.cluster_name"]
    same = fd.build_plan([seen("om1", "10.9.0.1"), seen("om2", "10.9.0.2")], ssh)
    assert "cluster_name" not in same.plan["network"]
    assert plan_from_dict(same.plan, env={}).cluster.name == "prod"


def test_a_host_given_by_address_is_not_named_by_its_first_octet() -> None:
    s = fd.Seen("198.18.0.10", "198.18.0.10")
    assert fd.node_name(s, None, 3, set()) == "node4"
    assert fd.node_name(fd.Seen("db.example.org", "10.0.0.1"), None, 3, set()) == "db"
