"""The firewall step on the lab: a drop-by-default nftables ruleset (n1) and iptables ruleset
(n2) keep real Hazelcast members apart; the check names each blocked port and the node it
comes from; `network.firewall: manage` opens exactly those (live and in the file the tool
loads at boot); the members form; rollback restores `nft list ruleset`, `iptables-save` and
both files byte for byte."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.lab import hazelcast as hz
from omwizard.lab import services

pytestmark = pytest.mark.lab

PASSWORD = "Lab-pw_4711"
NFT_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname "lo" accept
\t\ttcp dport 22 accept
\t\tip protocol icmp accept
\t}
}
"""
RULES_V4 = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""


def omw(*args: str, state: Path) -> tuple[int, dict | None, str]:
    env = {**os.environ, "OMW_DB_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "omwizard", *args, "--state", str(state)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    doc = json.loads(proc.stdout) if "--json" in args and proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr


def by(doc: dict, step: str) -> dict[str, dict]:
    section, _, name = step.partition(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def ipt_save(node) -> str:
    """iptables-save without what changes with time and traffic: its timestamp comments and
    the policies' packet counters (`:INPUT DROP [69:53268]` counts dropped packets)."""
    out = node.run("iptables-save", check=True).stdout
    return "".join(re.sub(r"^(:\S+ \S+) \[\d+:\d+\]$", r"\1 [0:0]", line)
                   for line in out.splitlines(keepends=True) if not line.startswith("#"))


def start_all(lab) -> dict[str, int]:
    offsets = {name: len(hz.read_log(node)) for name, node in lab.nodes.items()}
    for node in lab.nodes.values():
        hz.start_member(node)
    for name, node in lab.nodes.items():
        hz.wait_for_log(node, hz.STARTED_RE, timeout=90, start=offsets[name])
    return offsets


def last_members(node, offset: int) -> list[str]:
    blocks = hz.members(hz.read_log(node)[offset:])
    return blocks[-1] if blocks else []


def stop_all(lab) -> None:
    for node in lab.nodes.values():
        hz.stop_member(node)


@pytest.fixture
def om_lab(lab, lab_manager):
    lab_manager.get()
    services.ensure_lab_services(lab)
    lab.reset()
    yield lab
    lab.reset()  # stops the members, flushes every firewall


def test_firewall_check_manage_and_byte_identical_undo(om_lab, tmp_path: Path) -> None:
    lab = om_lab
    n1, n2 = lab.nodes["n1"], lab.nodes["n2"]
    n1.write_file("/etc/nftables.conf", NFT_CONF)
    n1.run("nft -f /etc/nftables.conf", check=True)
    n2.write_file("/etc/iptables/rules.v4", RULES_V4)
    n2.run("iptables-restore < /etc/iptables/rules.v4", check=True)
    nft_before, ipt_before = n1.run("nft list ruleset", check=True).stdout, ipt_save(n2)
    ipt_rules_before = n2.run("iptables -S", check=True).stdout  # rules and policies, no counters
    state = tmp_path / "state"
    check_plan = lab.write_plan(tmp_path / "check.yaml")
    manage_plan = lab.write_plan(tmp_path / "manage.yaml", network={"firewall": "manage"})

    # check (the default): the blocked paths, by port and source node; n3 filters nothing
    rc, doc, err = omw("check", str(check_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    fw = by(doc, "network.firewall")
    assert fw["n1"]["status"] == "failed", fw["n1"]
    assert "n2 → n1 TCP 5701-5703 (Hazelcast)" in fw["n1"]["detail"]
    assert "n3 → n1 UDP 54327 (Hazelcast multicast join)" in fw["n1"]["detail"]
    assert "nftables inet filter input (policy drop)" in fw["n1"]["detail"]
    assert fw["n2"]["status"] == "failed" and "n1 → n2 TCP 5636" in fw["n2"]["detail"]
    assert fw["n2"]["data"]["tools"] == ["iptables"]
    blocked = {(p["opening"]["src"], p["opening"]["proto"], p["opening"]["lo"])
               for p in fw["n1"]["data"]["paths"] if p["verdict"] == "blocked"}
    assert blocked == {(s, proto, port) for s in ("n2", "n3")
                       for proto, port in (("tcp", 5701), ("tcp", 5636), ("udp", 54327))}
    assert fw["n3"]["status"] == "ok" and fw["n3"]["data"]["tools"] == []

    # the members stay apart
    rc, doc, err = omw("apply", str(check_plan), "--section", "nodes", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    offsets = start_all(lab)
    assert last_members(n1, offsets["n1"]) == [n1.address]
    assert len(last_members(n2, offsets["n2"])) == 1
    stop_all(lab)

    # manage: exactly those ports, for exactly the peers, live and persisted
    rc, doc, err = omw("apply", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert doc is not None, err
    fw = by(doc, "network.firewall")
    assert {fw[n]["status"] for n in ("n1", "n2")} == {"changed"}, fw
    assert fw["n3"]["status"] == "ok"
    ours = [ln.strip() for ln in n1.run("nft list ruleset", check=True).stdout.splitlines()
            if "omwizard:lab" in ln]
    assert sorted(ours) == [
        'ip saddr { 198.18.0.12, 198.18.0.13 } tcp dport { 5636, 5701-5703 } accept '
        'comment "omwizard:lab"',
        'ip saddr { 198.18.0.12, 198.18.0.13 } udp dport 54327 accept comment "omwizard:lab"',
    ], ours
    conf = n1.run("cat /etc/nftables.conf", check=True).stdout
    assert conf.startswith(NFT_CONF) and conf.count("omwizard:lab") >= 2
    n1.run("nft -c -f /etc/nftables.conf", check=True)  # the file still loads at boot
    ipt_ours = [ln for ln in ipt_save(n2).splitlines() if "omwizard:lab" in ln]
    assert {re.search(r"-s (\S+)", ln).group(1) for ln in ipt_ours} == {  # type: ignore[union-attr]
        "198.18.0.11/32", "198.18.0.13/32"}
    assert all("0.0.0.0" not in ln for ln in ipt_ours)
    rules_v4 = n2.run("cat /etc/iptables/rules.v4", check=True).stdout
    assert sum("omwizard:lab" in ln for ln in rules_v4.splitlines()) == len(ipt_ours)
    rc, doc, err = omw("check", str(manage_plan), "--section", "network", "--json", state=state)
    assert doc is not None
    assert {by(doc, "network.firewall")[n]["status"] for n in lab.nodes} == {"ok"}, err

    # the members form
    offsets = start_all(lab)
    for name, node in lab.nodes.items():
        hz.wait_for_log(node, re.compile(r"Members \{size:3"), timeout=90, start=offsets[name])
    stop_all(lab)

    # rollback: the rulesets and the files byte for byte
    rc, doc, err = omw("rollback", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    assert n1.run("nft list ruleset", check=True).stdout == nft_before
    assert ipt_save(n2) == ipt_before
    assert n2.run("iptables -S", check=True).stdout == ipt_rules_before
    assert n1.run("cat /etc/nftables.conf", check=True).stdout == NFT_CONF
    assert n2.run("cat /etc/iptables/rules.v4", check=True).stdout == RULES_V4
