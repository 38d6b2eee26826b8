"""The firewall step on the lab with ufw: n1 runs ufw (Debian's package, on the node's own
iptables and /etc/ufw) enabled with default deny incoming and 22/tcp allowed. Its real Hazelcast
member stays alone; the check names each blocked port and the node it comes from; `manage`
opens exactly those for exactly the peers' addresses, commented `omwizard:lab`, in ufw's own
rules files; the members form; the plan without n3 deletes exactly n3's rules (what
remove-node's apply does); rollback restores `ufw status numbered`, `ufw show added`,
/etc/ufw/user.rules and user6.rules byte for byte."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from omwizard.lab import hazelcast as hz
from tests.lab.test_firewall import by, ipt_save, last_members, om_lab, omw, start_all, stop_all

pytestmark = pytest.mark.lab
__all__ = ["om_lab"]  # the fixture, shared with test_firewall.py

N2, N3 = "198.18.0.12", "198.18.0.13"
UFW_FILES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules")


def ufw_view(node) -> dict[str, str]:
    """What rollback must restore: ufw's own listings and its rules files."""
    out = {cmd: node.run(f"LC_ALL=C {cmd}", check=True).stdout
           for cmd in ("ufw status numbered", "ufw show added")}
    out.update({path: node.run(["cat", path], check=True).stdout for path in UFW_FILES})
    return out


def test_ufw_check_manage_and_byte_identical_undo(om_lab, tmp_path: Path) -> None:
    assert shutil.which("ufw"), "ufw is not installed: run scripts/setup-system.sh"
    lab = om_lab
    n1 = lab.nodes["n1"]
    n1.run("ufw default deny incoming && ufw allow 22/tcp && ufw --force enable", check=True)
    assert "Status: active" in n1.run("LC_ALL=C ufw status", check=True).stdout
    before, ipt_before = ufw_view(n1), ipt_save(n1)
    state = tmp_path / "state"
    check_plan = lab.write_plan(tmp_path / "check.yaml")
    manage_plan = lab.write_plan(tmp_path / "manage.yaml", network={"firewall": "manage"})
    two = lab.plan_dict(network={"firewall": "manage"})
    two["nodes"] = [n for n in two["nodes"] if n["name"] != "n3"]
    two_plan = tmp_path / "two.yaml"
    two_plan.write_text(yaml.safe_dump(two, sort_keys=False))

    # check: every path into n1 blocked by ufw's default, named by port and source node
    rc, doc, err = omw("check", str(check_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    fw = by(doc, "network.firewall")
    assert fw["n1"]["status"] == "failed", fw["n1"]
    assert fw["n1"]["data"]["tools"] == ["ufw"]
    detail = fw["n1"]["detail"]
    assert "n2 → n1 TCP 5701-5703 (Hazelcast)" in detail
    assert "n3 → n1 TCP 5636 (OpenJPA remote commits)" in detail
    assert "n2 → n1 UDP 54327 (Hazelcast multicast join)" in detail
    assert "ufw (default deny incoming)" in detail
    blocked = {(p["opening"]["src"], p["opening"]["proto"], p["opening"]["lo"])
               for p in fw["n1"]["data"]["paths"] if p["verdict"] == "blocked"}
    assert blocked == {(s, proto, port) for s in ("n2", "n3")
                       for proto, port in (("tcp", 5701), ("tcp", 5636), ("udp", 54327))}
    assert {fw[n]["status"] for n in ("n2", "n3")} == {"ok"}

    # the members stay apart: n1 alone
    rc, doc, err = omw("apply", str(check_plan), "--section", "nodes", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    offsets = start_all(lab)
    assert last_members(n1, offsets["n1"]) == [n1.address]
    stop_all(lab)

    # manage: exactly those ports for exactly the peers, commented, first, in ufw's files
    rc, doc, err = omw("apply", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert doc is not None, err
    fw = by(doc, "network.firewall")
    assert fw["n1"]["status"] == "changed", fw["n1"]
    assert {fw[n]["status"] for n in ("n2", "n3")} == {"ok"}
    added = n1.run("LC_ALL=C ufw show added", check=True).stdout.splitlines()[1:]
    assert added == [
        f"ufw allow from {N2} to any port 5636,5701:5703 proto tcp comment 'omwizard:lab'",
        f"ufw allow from {N3} to any port 5636,5701:5703 proto tcp comment 'omwizard:lab'",
        f"ufw allow from {N2} to any port 54327 proto udp comment 'omwizard:lab'",
        f"ufw allow from {N3} to any port 54327 proto udp comment 'omwizard:lab'",
        "ufw allow 22/tcp",
    ], added
    user_rules = n1.run(["cat", UFW_FILES[0]], check=True).stdout
    tuples = [ln for ln in user_rules.splitlines() if ln.startswith("### tuple ###")]
    ours = [ln for ln in tuples if ln.endswith("comment=" + b"omwizard:lab".hex())]
    assert len(ours) == 4 and all(f" {N2} in" in ln or f" {N3} in" in ln for ln in ours)
    assert len(tuples) == 5  # ours and the operator's 22/tcp: nothing else, nothing to the world
    assert n1.run(["cat", UFW_FILES[1]], check=True).stdout == before[UFW_FILES[1]]
    n1.run("ufw reload", check=True)  # what ufw loads at boot: its rules files
    assert n1.run("LC_ALL=C ufw show added", check=True).stdout.splitlines()[1:] == added
    rc, doc, err = omw("check", str(manage_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    assert {by(doc, "network.firewall")[n]["status"] for n in lab.nodes} == {"ok"}, err

    # the members form
    offsets = start_all(lab)
    for name, node in lab.nodes.items():
        hz.wait_for_log(node, re.compile(r"Members \{size:3"), timeout=90, start=offsets[name])
    stop_all(lab)

    # n3 leaves: the check names it; apply deletes exactly n3's rules
    rc, doc, err = omw("check", str(two_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    res = by(doc, "network.firewall")["n1"]
    assert res["status"] == "needs-change" and N3 in res["detail"], res
    rc, doc, err = omw("apply", str(two_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert doc is not None, err
    assert by(doc, "network.firewall")["n1"]["status"] == "changed", err
    assert n1.run("LC_ALL=C ufw show added", check=True).stdout.splitlines()[1:] == [
        ln for ln in added if N3 not in ln]

    # rollback: ufw's listings and rules files byte for byte, the live rules too
    rc, doc, err = omw("rollback", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    assert ufw_view(n1) == before
    assert ipt_save(n1) == ipt_before
