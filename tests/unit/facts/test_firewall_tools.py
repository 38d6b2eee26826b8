"""ufw and firewalld judged on their real outputs: `LC_ALL=C ufw status verbose` (ufw 0.36.2)
and our firewalld probe (firewalld 1.3.3, `--list-all`, `--info-ipset`, `--info-service`),
both captured in network namespaces (files in firewall/)."""

from __future__ import annotations

import pytest

from omwizard.facts.firewall import FirewallView, judge_firewall
from omwizard.facts.firewall_firewalld import (
    firewalld_ours,
    firewalld_verdict,
    parse_firewalld,
    parse_rich,
)
from omwizard.facts.firewall_paths import (
    BLOCKED,
    PASS,
    UNKNOWN,
    Opening,
    required_openings,
    wanted_atoms,
)
from omwizard.facts.firewall_ufw import parse_ufw, ufw_verdict
from omwizard.plan.model import plan_from_dict
from tests.unit.facts.test_firewall import ENV, capture, plan

N2, N3 = "198.18.0.12", "198.18.0.13"


def lab_plan(*names: str):
    """n1.. as OM nodes at 198.18.0.1N (the lab's addresses), joining by multicast."""
    return plan_from_dict({
        "omwizard": 1, "cluster": {"name": "lab", "timezone": "Europe/Berlin"},
        "nodes": [{"name": n, "host": f"198.18.0.1{n[1:]}"} for n in names],
        "database": {"type": "mariadb", "host": "198.18.0.20", "name": "om", "user": "om",
                     "password": "${OMW_DB_PASSWORD}", "manage": False},
        "network": {"join": "multicast"}, "storage": {"kind": "existing"},
    }, env=ENV)


def tcp(addr: str, port: int, src: str = "peer") -> Opening:
    return Opening(src, addr, "tcp", port, port, "test")


# -- ufw -------------------------------------------------------------------------------------


def test_ufw_status_verbose_is_read_in_order_with_its_default() -> None:
    assert parse_ufw("UFW-ABSENT\n", "lab") is None
    off = parse_ufw(capture("ufw_inactive.txt"), "lab")
    assert off is not None and not off.active and off.rules == ()
    deny = parse_ufw(capture("ufw_deny.txt"), "lab")
    assert deny is not None and deny.active and deny.default_in == "deny"
    assert [(r.to, r.action, r.direction, r.source, r.v6) for r in deny.rules] == [
        ("22/tcp", "allow", "in", "Anywhere", False),
        ("22/tcp (v6)", "allow", "in", "Anywhere (v6)", True)]
    assert deny.ours == frozenset()
    mixed = parse_ufw(capture("ufw_mixed.txt"), "lab")
    assert mixed is not None
    assert mixed.ours == {("udp", N3, 54327, 54327), ("tcp", N2, 5636, 5636),
                          ("tcp", N2, 5701, 5703)}
    assert [r.text for r in mixed.our_rules("lab")] == [
        f"54327/udp ALLOW IN {N3}", f"5636,5701:5703/tcp ALLOW IN {N2}"]
    assert [r.to for r in mixed.rules if r.direction == "out"] == ["25", "25 (v6)"]
    assert parse_ufw(capture("ufw_mixed.txt"), "other").ours == frozenset()  # type: ignore


def test_ufw_default_deny_blocks_every_path_and_says_so() -> None:
    p = lab_plan("n1", "n2", "n3")
    view = FirewallView(None, None, None, parse_ufw(capture("ufw_deny.txt"), "lab"))
    assert view.tools == ("ufw",)
    state = judge_firewall(view, required_openings(p, p.node("n1")), "lab")
    assert len(state.blocked) == len(state.paths) == 6
    assert {x.by for x in state.paths} == {"ufw (default deny incoming)"}
    assert state.stale == ()


@pytest.mark.parametrize("opening,verdict,by", [
    (Opening("n2", N2, "tcp", 5701, 5703, "Hazelcast"), PASS, ""),  # omwizard's rule
    (Opening("n3", N3, "tcp", 5701, 5703, "Hazelcast"), BLOCKED, "ufw (default deny incoming)"),
    (Opening("n3", N3, "udp", 54327, 54327, "multicast"), PASS, ""),
    (tcp(N3, 3306), PASS, ""),  # `3306 ALLOW IN 198.18.0.0/24`: a network, both protocols
    (tcp("198.18.0.99", 22), PASS, ""),  # `22/tcp ALLOW IN Anywhere` comes first
    (tcp("198.18.0.99", 5636), BLOCKED, "ufw rule 'Anywhere DENY IN 198.18.0.99'"),
    (Opening("x", N3, "udp", 5005, 5005, "t"), BLOCKED, "ufw rule '5000:5010/udp REJECT IN "
     "Anywhere'"),
    (tcp(N3, 80), UNKNOWN, "ufw"),  # `80/tcp on eth0`: bound to an interface
    (tcp(N3, 443), UNKNOWN, "ufw"),  # `198.18.0.11 443/tcp`: to one of the node's addresses
    (tcp(N3, 2222), UNKNOWN, "ufw"),  # LIMIT: accepted until the rate is exceeded
    (Opening("x", N3, "udp", 3306, 3306, "t"), PASS, ""),
    (Opening("x", N3, "udp", 22, 22, "t"), BLOCKED, "ufw (default deny incoming)"),
])
def test_ufw_first_matching_rule_decides(opening: Opening, verdict: str, by: str) -> None:
    ufw = parse_ufw(capture("ufw_mixed.txt"), "lab")
    assert ufw is not None
    assert ufw_verdict(ufw, opening) == (verdict, by)


def test_ufw_rules_of_a_departed_node_are_stale() -> None:
    ufw = parse_ufw(capture("ufw_mixed.txt"), "lab")
    two = lab_plan("n1", "n2")
    state = judge_firewall(FirewallView(None, None, None, ufw),
                           required_openings(two, two.node("n1")), "lab")
    assert state.stale == ("ufw",) and state.stale_sources == (N3,)


# -- firewalld -------------------------------------------------------------------------------


def test_firewalld_probe_reads_zone_services_and_the_cluster_ipset() -> None:
    assert parse_firewalld("FIREWALLD-ABSENT\n") is None
    fw = parse_firewalld(capture("firewalld_plain.txt"))
    assert fw is not None and fw.active and fw.zone == "public" and fw.target == "default"
    assert fw.services == ("dhcpv6-client", "ssh") and fw.ports == ()
    assert dict(fw.service_ports) == {"dhcpv6-client": (), "ssh": (("tcp", 22, 22),)}
    assert fw.ipset is None and fw.permanent_ipset is None and fw.in_sync
    assert not parse_firewalld(capture("firewalld_unsynced.txt")).in_sync  # type: ignore
    ours = parse_firewalld(capture("firewalld_ours.txt"))
    assert ours is not None and ours.ipset == (N2, N3) == ours.permanent_ipset
    assert ours.in_sync  # the same rules, listed in another order
    assert parse_firewalld("== state\nnot running\n").active is False  # type: ignore


def test_firewalld_rich_rules_parsed() -> None:
    r = parse_rich('rule family="ipv4" source ipset="omw-lab" port port="5701-5703" '
                   'protocol="tcp" accept')
    assert (r.family, r.ipset, r.port, r.verdict, r.other) == (
        "ipv4", "omw-lab", ("tcp", 5701, 5703), "accept", False)
    r = parse_rich('rule family="ipv4" source NOT address="198.18.0.0/24" service name="ssh" '
                   'log prefix="x" level="info" reject type="icmp-host-prohibited"')
    assert (r.source, r.invert, r.service, r.verdict, r.other) == (
        "198.18.0.0/24", True, "ssh", "reject", False)
    assert parse_rich('rule family="ipv4" destination address="10.0.0.1" accept').other
    assert parse_rich('rule priority="-5" family="ipv4" drop').other


def test_firewalld_default_zone_rejects_the_cluster_and_says_where() -> None:
    p = lab_plan("n1", "n2", "n3")
    fw = parse_firewalld(capture("firewalld_plain.txt"))
    view = FirewallView(None, None, fw, None)
    assert view.tools == ("firewalld",)
    state = judge_firewall(view, required_openings(p, p.node("n1")), "lab")
    assert len(state.blocked) == 6 and state.zone == "public"
    assert {x.by for x in state.paths} == {"firewalld zone public (target default)"}
    assert state.stale == () and not state.reload_loses
    unsynced = judge_firewall(FirewallView(None, None, parse_firewalld(
        capture("firewalld_unsynced.txt")), None), required_openings(p, p.node("n1")), "lab")
    assert unsynced.reload_loses  # creating the ipset needs a reload that would drop 8080/tcp


def test_firewalld_ours_pass_exactly_the_ipset_entries() -> None:
    p = lab_plan("n1", "n2", "n3")
    fw = parse_firewalld(capture("firewalld_ours.txt"))
    assert fw is not None
    openings = required_openings(p, p.node("n1"))
    assert firewalld_ours(fw, "lab") == wanted_atoms(openings)
    assert firewalld_ours(fw, "lab", permanent=True) == wanted_atoms(openings)
    assert firewalld_ours(fw, "other") == frozenset()
    state = judge_firewall(FirewallView(None, None, fw, None), openings, "lab")
    assert {x.verdict for x in state.paths} == {PASS} and state.stale == ()
    assert firewalld_verdict(fw, tcp("198.18.0.14", 5701), "lab") == (
        BLOCKED, "firewalld zone public (target default)")  # not in the ipset
    assert firewalld_verdict(fw, tcp("198.18.0.99", 8080), "lab") == (PASS, "")
    assert firewalld_verdict(fw, tcp("198.18.0.66", 22), "lab")[0] == BLOCKED  # rich drop
    assert firewalld_verdict(fw, tcp(N2, 22), "lab") == (PASS, "")  # service ssh


def test_firewalld_entry_of_a_departed_node_is_stale_and_named() -> None:
    two = lab_plan("n1", "n2")
    fw = parse_firewalld(capture("firewalld_ours.txt"))
    state = judge_firewall(FirewallView(None, None, fw, None),
                           required_openings(two, two.node("n1")), "lab")
    assert state.blocked == () and state.stale == ("firewalld",)
    assert state.stale_sources == (N3,)
    # the nfs/db plan of test_firewall: the DB node's openings come from the same OM peers
    p = plan()
    db = required_openings(p, p.node("db"))
    assert {o.address for o in db} == {"198.18.0.11", N2, N3}
