"""The verify section's pure judgements, on real Hazelcast 5 log text and OM health answers."""

from __future__ import annotations

import pytest

from omwizard.facts.verify import (
    STANDALONE,
    MembersView,
    health_target,
    judge_health,
    judge_members,
    parse_members,
    parse_probe,
    parse_version,
    read_log,
    running_current,
)

EXPECTED = {"n1": "198.18.0.11", "n2": "198.18.0.12", "n3": "198.18.0.13"}
P = "2026-11-25 08:02:38.765 [main] INFO com.hazelcast.core.LifecycleService - " \
    "[198.18.0.11]:5701 [omwizard-lab] [5.5.0] "
CS = "2026-11-25 08:02:45.101 [hz.n1.priority-generic-operation.thread-0] INFO " \
     "com.hazelcast.internal.cluster.ClusterService - [198.18.0.11]:5701 [omwizard-lab] [5.5.0] "


def block(size: int, ver: int, addrs: list[str]) -> str:
    lines = [CS, "", f"Members {{size:{size}, ver:{ver}}} ["]
    for i, addr in enumerate(addrs):
        this = " this" if i == 0 else ""
        lines.append(f"\tMember [{addr}]:5701 - 0c3e1f4a-9d2b-4c55-8f0e-{i:012d}{this}")
    lines += ["]", ""]
    return "\n".join(lines) + "\n"


START = (
    "2026-11-25 08:02:36 startup.sh: starting the cluster-layer stand-in\n"
    f"{P}[198.18.0.11]:5701 is STARTING\n"
)
STARTED = f"{P}[198.18.0.11]:5701 is STARTED\n"


def test_parse_two_blocks_takes_the_latest() -> None:
    log = START + block(2, 2, ["198.18.0.11", "198.18.0.12"]) + STARTED \
        + block(3, 3, ["198.18.0.11", "198.18.0.12", "198.18.0.13"])
    blocks = parse_members(log)
    assert [b.size for b in blocks] == [2, 3]
    assert blocks[-1].addresses == ("198.18.0.11", "198.18.0.12", "198.18.0.13")
    assert blocks[-1].this == "198.18.0.11"
    assert blocks[-1].version == 3
    facts = read_log(log)
    assert facts.block == blocks[-1]
    verdict = judge_members(facts, "n1", EXPECTED, "/opt/om/logs/openmeetings.log")
    assert verdict.ok, verdict.detail
    assert "3 members" in verdict.detail


def test_hazelcast3_style_block() -> None:
    log = "Members [2] {\n\tMember [10.0.0.1]:5701 this\n\tMember [10.0.0.2]:5701\n}\n"
    (only,) = parse_members(log)
    assert only.size == 2 and only.addresses == ("10.0.0.1", "10.0.0.2") and only.version is None


def test_truncated_block_is_ignored() -> None:
    log = block(2, 2, ["198.18.0.11", "198.18.0.12"]) + "Members {size:3, ver:3} [\n" \
        "\tMember [198.18.0.11]:5701 - x this\n"
    assert [b.size for b in parse_members(log)] == [2]


def test_blocks_before_the_latest_start_are_history() -> None:
    old = START + block(3, 3, list(EXPECTED.values())) + STARTED
    log = old + START + f"{P}{STANDALONE}\n" + STARTED
    facts = read_log(log)
    assert facts.block is None and facts.standalone and facts.blocks == 1
    verdict = judge_members(facts, "n1", EXPECTED, "x.log")
    assert not verdict.ok
    assert "alone" in verdict.detail and "nodes" in verdict.remedy


def test_missing_member_is_named_with_remedy() -> None:
    log = START + STARTED + block(2, 4, ["198.18.0.11", "198.18.0.12"])
    verdict = judge_members(read_log(log), "n1", EXPECTED, "x.log")
    assert not verdict.ok
    assert "missing: n3 (198.18.0.13)" in verdict.detail
    assert "2 of 3" in verdict.detail
    assert "network.multicast-route" in verdict.remedy and "verify.restart" in verdict.remedy
    assert isinstance(verdict.data, MembersView) and verdict.data.missing == ("n3",)


def test_shutdown_member_is_reported() -> None:
    log = START + STARTED + block(3, 3, list(EXPECTED.values())) \
        + f"{P}[198.18.0.11]:5701 is SHUTTING_DOWN\n{P}[198.18.0.11]:5701 is SHUTDOWN\n"
    verdict = judge_members(read_log(log), "n1", EXPECTED, "x.log")
    assert not verdict.ok and "SHUTDOWN" in verdict.detail and "n1" in verdict.remedy


def test_empty_log_and_stranger() -> None:
    assert not judge_members(read_log(""), "n1", EXPECTED, "x.log").ok
    log = START + block(4, 4, [*EXPECTED.values(), "198.18.0.99"])
    verdict = judge_members(read_log(log), "n1", EXPECTED, "x.log")
    assert not verdict.ok and "198.18.0.99" in verdict.detail


def test_health_verdicts() -> None:
    good = '{"health":{"inited":true,"installed":true,"dbOk":true}}'
    assert judge_health(200, good).ok
    bad = judge_health(200, '{"health":{"inited":true,"installed":true,"dbOk":false}}')
    assert not bad.ok and '"dbOk":false' in bad.detail and "database" in bad.remedy
    assert not judge_health(404, '{"error":"not found"}').ok
    assert not judge_health(None, "Connection refused").ok
    assert not judge_health(200, "<html>").ok
    assert not judge_health(200, '{"health": {"inited": true}}').ok
    assert parse_version('{"info":{"version":"9.1.0","revision":"x"}}') == "9.1.0"
    assert parse_version("nope") is None


def test_running_current() -> None:
    assert running_current(None, {})[0] is False
    assert running_current(1000, {"/a": 900, "/b": 1001})[0] is True  # within the slack
    ok, why = running_current(1000, {"/opt/om/hazelcast.xml": 1100})
    assert not ok and "hazelcast.xml" in why


def test_parse_probe() -> None:
    out = ("now 5000\npid 42 100\nmtime 4000 /opt/om/webapps/openmeetings/WEB-INF/classes/"
           "hazelcast.xml\nlog /opt/om/logs/openmeetings.log 1234\n")
    facts = parse_probe(out)
    assert facts["pids"] == {42: 4900}
    assert facts["log"] == "/opt/om/logs/openmeetings.log" and facts["log_size"] == 1234
    assert facts["systemd"] is False


@pytest.mark.parametrize(("url", "want"), [
    ("http://198.18.0.11:5080/openmeetings", (False, 5080, "/openmeetings")),
    ("https://om1.example.org/openmeetings/", (True, 5443, "/openmeetings")),
    ("http://om1.example.org/om", (False, 5080, "/om")),
])
def test_health_target(url: str, want: tuple) -> None:
    from omwizard.plan.model import Node, SSHConfig

    node = Node(name="n1", host="h", address="10.0.0.1", interface=None, server_url=url,
                roles=("om",), ssh=SSHConfig(), ssh_overrides={})
    assert health_target(node) == want


def test_nodes_settings_and_name_clashes() -> None:
    from omwizard.facts.nodes import name_clashes, settings_for
    from omwizard.plan.model import plan_from_dict

    plan = plan_from_dict({
        "omwizard": 1, "cluster": {"name": "prod", "timezone": "UTC"},
        "nodes": [{"name": f"om{i}", "host": f"10.1.1.{i}", "roles": ["om"],
                   "server_url": f"https://om{i}.example.org/openmeetings"} for i in (1, 2)],
        "database": {"type": "mariadb", "host": "10.1.1.1", "name": "om", "user": "om",
                     "manage": False},
        "network": {"join": "tcp-ip"}, "storage": {"kind": "existing"},
    }, env={})
    s = settings_for(plan, plan.node("om2"))
    assert (s.instance_name, s.cluster_name, s.join) == ("om2", "omwizard-prod", "tcp-ip")
    assert s.members == ("10.1.1.1", "10.1.1.2") and s.interfaces == ("10.1.1.*",)
    assert name_clashes(["om1", "OM1", "om2"]) == ["om1 / OM1"]
    assert name_clashes(["om1", "om2"]) == []
