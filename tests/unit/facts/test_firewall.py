"""The firewall judgement on captured outputs (nft 1.0.6 `nft -j list ruleset`, iptables 1.8.9
`iptables-save`, captured in network namespaces; files in firewall/)."""

from __future__ import annotations

from pathlib import Path

from omwizard.facts.base import StepData
from omwizard.facts.firewall import FirewallState, FirewallView, judge_firewall
from omwizard.facts.firewall_iptables import ipt_ours, ipt_verdict, parse_iptables_save
from omwizard.facts.firewall_nft import nft_ours, nft_verdict, parse_nft
from omwizard.facts.firewall_paths import (
    BLOCKED,
    PASS,
    UNKNOWN,
    Opening,
    required_openings,
    wanted_atoms,
)
from omwizard.plan.model import plan_from_dict

CAPTURES = Path(__file__).parent / "firewall"
ENV = {"OMW_DB_PASSWORD": "pw"}


def capture(name: str) -> str:
    return (CAPTURES / name).read_text()


def plan(join: str = "multicast", storage: str = "nfs"):
    nodes = [
        {"name": "n1", "host": "198.18.0.11", "roles": ["om"]},
        {"name": "n2", "host": "198.18.0.12", "roles": ["om"]},
        {"name": "n3", "host": "198.18.0.13", "roles": ["om"]},
        {"name": "db", "host": "198.18.0.20",
         "roles": ["database", "storage"] if storage == "nfs" else ["database"]},
    ]
    return plan_from_dict({
        "omwizard": 1, "cluster": {"name": "lab", "timezone": "Europe/Berlin"},
        "nodes": nodes,
        "database": {"type": "mariadb", "host": "198.18.0.20", "name": "om", "user": "om",
                     "password": "${OMW_DB_PASSWORD}"},
        "network": {"join": join},
        "storage": {"kind": storage},
    }, env=ENV)


def hz(src: str, addr: str) -> Opening:
    return Opening(src, addr, "tcp", 5701, 5703, "Hazelcast")


def test_required_openings_per_role() -> None:
    p = plan()
    n1 = required_openings(p, p.node("n1"))
    assert {(o.src, o.proto, o.ports) for o in n1} == {
        (peer, proto, ports) for peer in ("n2", "n3")
        for proto, ports in (("tcp", "5701-5703"), ("tcp", "5636"), ("udp", "54327"))}
    db = required_openings(p, p.node("db"))
    assert {(o.src, o.proto, o.ports, o.what) for o in db} >= {
        ("n1", "tcp", "3306", "database"), ("n1", "tcp", "2049", "NFS")}
    assert {o.src for o in db} == {"n1", "n2", "n3"}  # never the world, never itself
    tcp_only = plan(join="tcp-ip", storage="existing")
    assert all(o.proto == "tcp" for o in required_openings(tcp_only, tcp_only.node("n1")))
    assert not any(o.what == "NFS" for o in required_openings(tcp_only, tcp_only.node("db")))


def test_drop_by_default_nft_blocks_and_says_where() -> None:
    rs = parse_nft(capture("drop.json"))
    assert rs is not None and [c.where for c in rs.input_chains()] == ["inet filter input"]
    verdict, by = nft_verdict(rs, hz("n2", "198.18.0.12"))
    assert (verdict, by) == (BLOCKED, "nftables inet filter input (policy drop)")
    ssh = Opening("x", "198.18.0.12", "tcp", 22, 22, "ssh")
    assert nft_verdict(rs, ssh)[0] == PASS  # `tcp dport 22 accept`


def test_our_rules_pass_exactly_their_sources_and_ports() -> None:
    rs = parse_nft(capture("ours_tcp.json"))
    assert rs is not None
    assert nft_verdict(rs, hz("n2", "198.18.0.12"))[0] == PASS
    assert nft_verdict(rs, Opening("n2", "198.18.0.12", "tcp", 5636, 5636, "jpa"))[0] == PASS
    assert nft_verdict(rs, hz("n9", "198.18.0.99"))[0] == BLOCKED  # another source
    assert nft_verdict(rs, Opening("n2", "198.18.0.12", "udp", 54327, 54327, "mc"))[0] == BLOCKED
    assert nft_ours(rs, "lab") == {"inet filter input": frozenset({
        ("tcp", a, lo, hi) for a in ("198.18.0.12", "198.18.0.13")
        for lo, hi in ((5636, 5636), (5701, 5703))})}
    assert nft_ours(rs, "other") == {}


def test_named_sets_are_unknown_not_guessed() -> None:
    rs = parse_nft(capture("namedset.json"))
    assert rs is not None
    # `ip saddr @allowed accept` may accept, and `tcp dport != 5701 drop` would drop: unknown
    assert nft_verdict(rs, Opening("n2", "198.18.0.12", "tcp", 5636, 5636, "jpa"))[0] == UNKNOWN
    # 5701 from an unlisted source: the named set may accept it, else the policy drops it
    assert nft_verdict(rs, Opening("n2", "198.18.0.12", "tcp", 5701, 5701, "hz"))[0] == UNKNOWN


def test_iptables_nft_tables_are_judged_as_iptables() -> None:
    rs = parse_nft(capture("ipt_as_nft.json"))
    assert rs is not None and rs.input_chains() == []
    ipt = parse_iptables_save(capture("ipt.save"))
    assert ipt is not None and ipt.filters_input
    view = FirewallView(rs, ipt, None, None)
    assert view.tools == ("iptables",)


def test_iptables_verdicts_follow_user_chains_and_reject() -> None:
    ipt = parse_iptables_save(capture("ipt.save"))
    assert ipt is not None
    assert ipt_verdict(ipt, hz("n2", "198.18.0.12")) == (BLOCKED, "iptables INPUT (REJECT rule)")
    web = Opening("x", "10.1.2.3", "tcp", 443, 443, "web")
    assert ipt_verdict(ipt, web)[0] == PASS  # through -j svc
    ours = parse_iptables_save(capture("ipt_ours.save"))
    assert ours is not None
    assert ipt_verdict(ours, hz("n2", "198.18.0.12"))[0] == PASS
    assert ipt_verdict(ours, hz("n3", "198.18.0.13"))[0] == BLOCKED
    assert ipt_ours(ours, "lab") == {("tcp", "198.18.0.12", 5636, 5636),
                                     ("tcp", "198.18.0.12", 5701, 5703)}


def test_absent_tools_and_nothing_filtering() -> None:
    assert parse_nft("NFT-ABSENT\n") is None
    assert parse_iptables_save("IPTABLES-ABSENT\n") is None
    empty = parse_nft('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}')
    view = FirewallView(empty, parse_iptables_save(""), None, None)
    p = plan()
    state = judge_firewall(view, required_openings(p, p.node("n1")), "lab")
    assert state.tools == () and {x.verdict for x in state.paths} == {PASS}


def test_judgement_names_blocked_paths_and_where_rules_go() -> None:
    p = plan()
    openings = required_openings(p, p.node("n1"))
    state = judge_firewall(FirewallView(parse_nft(capture("drop.json")), None, None, None),
                           openings, "lab")
    assert state.tools == ("nftables",)
    assert {(b.opening.src, b.opening.ports) for b in state.blocked} == {
        (s, ports) for s in ("n2", "n3") for ports in ("5701-5703", "5636", "54327")}
    assert state.nft_chains == (("inet", "filter", "input"),)
    assert state.stale == ()
    again = StepData.from_json(state.to_json())
    assert isinstance(again, FirewallState) and again == state


def test_stale_rules_after_a_node_left() -> None:
    """ours_tcp.json opens tcp for n2 and n3; a plan of n1+n2 only wants n2's: stale."""
    two = plan_from_dict({
        "omwizard": 1, "cluster": {"name": "lab", "timezone": "Europe/Berlin"},
        "nodes": [{"name": "n1", "host": "198.18.0.11"}, {"name": "n2", "host": "198.18.0.12"}],
        "database": {"type": "mariadb", "host": "198.18.0.20", "name": "om", "user": "om",
                     "password": "${OMW_DB_PASSWORD}", "manage": False},
        "network": {"join": "tcp-ip"}, "storage": {"kind": "existing"},
    }, env=ENV)
    openings = required_openings(two, two.node("n1"))
    state = judge_firewall(FirewallView(parse_nft(capture("ours_tcp.json")), None, None, None),
                           openings, "lab")
    assert state.blocked == () and state.stale == ("nftables",)
    assert wanted_atoms(openings) == {("tcp", "198.18.0.12", 5701, 5703),
                                      ("tcp", "198.18.0.12", 5636, 5636)}
