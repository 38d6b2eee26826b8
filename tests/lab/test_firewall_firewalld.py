"""The firewall step on the lab with firewalld: n1 runs a real firewalld (Debian's package) in
its own namespaces, on a private D-Bus system bus (the node's /run is its own: a dbus-daemon
of its own listening there, with no service activation, so no polkit: firewalld then
authorises by uid 0). Its default zone rejects the cluster; the check names each port and the
node it comes from; `manage` puts the peers in the cluster's ipset `omw-lab` and opens exactly
the cluster's ports to it, live and permanent; the members form; the plan without n3 drops
exactly n3's entry (what remove-node's apply does); rollback restores firewalld's listings."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from omwizard.lab import hazelcast as hz
from tests.lab.test_firewall import by, om_lab, omw, start_all, stop_all

pytestmark = pytest.mark.lab
__all__ = ["om_lab"]  # the fixture, shared with test_firewall.py

N2, N3 = "198.18.0.12", "198.18.0.13"
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""
RICH = ('rule family="ipv4" source ipset="omw-lab" port port="{}" protocol="{}" accept')


def start_firewalld(node, timeout: float = 60) -> None:
    """A system bus and firewalld of the node's own (its /run is private); reset() kills both
    (they run in the node's mount namespace), `stop_bus` removes the socket."""
    node.run("rm -rf /run/dbus && mkdir -m 0755 /run/dbus", check=True)
    node.write_file("/etc/omwlab-system-bus.conf", BUS_CONF)
    node.spawn(["dbus-daemon", "--config-file=/etc/omwlab-system-bus.conf", "--nofork",
                "--nopidfile"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node.spawn(["firewalld", "--nofork", "--nopid", "--log-target", "console"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while node.run("firewall-cmd --state").stdout.strip() != "running":
        if time.monotonic() > deadline:
            raise AssertionError(f"firewalld did not start on {node.name}")
        time.sleep(0.5)


def stop_bus(node) -> None:
    node.run("rm -rf /run/dbus", check=True)


def fw(node, *args: str) -> str:
    return node.run(["env", "LC_ALL=C", "firewall-cmd", *args], check=True).stdout


def listing(node) -> dict[str, str]:
    """What rollback must restore: the default zone and the ipsets, live and permanent."""
    return {" ".join(a): fw(node, *a) for a in (
        ("--list-all",), ("--permanent", "--list-all"), ("--get-ipsets",),
        ("--permanent", "--get-ipsets"))}


def entries(node, *permanent: str) -> list[str]:
    out = fw(node, *permanent, "--info-ipset=omw-lab")
    return next(ln.split(":", 1)[1].split() for ln in out.splitlines()
                if ln.strip().startswith("entries:"))


def test_firewalld_manage_departure_and_rollback(om_lab, tmp_path: Path) -> None:
    assert shutil.which("firewalld"), "firewalld is not installed: run scripts/setup-system.sh"
    lab = om_lab
    n1 = lab.nodes["n1"]
    start_firewalld(n1)
    try:
        run_scenario(lab, n1, tmp_path)
    finally:
        stop_bus(n1)  # the om_lab fixture's reset stops firewalld and its bus


def run_scenario(lab, n1, tmp_path: Path) -> None:
    before = listing(n1)
    state = tmp_path / "state"
    check_plan = lab.write_plan(tmp_path / "check.yaml")
    manage_plan = lab.write_plan(tmp_path / "manage.yaml", network={"firewall": "manage"})
    two = lab.plan_dict(network={"firewall": "manage"})
    two["nodes"] = [n for n in two["nodes"] if n["name"] != "n3"]
    two_plan = tmp_path / "two.yaml"
    two_plan.write_text(yaml.safe_dump(two, sort_keys=False))

    # check: the default zone rejects every path into n1, named by port and source node
    rc, doc, err = omw("check", str(check_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    res = by(doc, "network.firewall")
    assert res["n1"]["status"] == "failed", res["n1"]
    assert res["n1"]["data"]["tools"] == ["firewalld"]
    assert "n2 → n1 TCP 5701-5703 (Hazelcast)" in res["n1"]["detail"]
    assert "n3 → n1 UDP 54327 (Hazelcast multicast join)" in res["n1"]["detail"]
    assert "firewalld zone public (target default)" in res["n1"]["detail"]
    assert len([p for p in res["n1"]["data"]["paths"] if p["verdict"] == "blocked"]) == 6

    # manage: the peers in omw-lab, one rich rule per port range from it, live and permanent
    rc, doc, err = omw("apply", str(check_plan), "--section", "nodes", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    rc, doc, err = omw("apply", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert doc is not None, err
    assert by(doc, "network.firewall")["n1"]["status"] == "changed", err
    ours = sorted([RICH.format("5636", "tcp"), RICH.format("5701-5703", "tcp"),
                   RICH.format("54327", "udp")])
    for side in ((), ("--permanent",)):
        assert sorted(fw(n1, *side, "--list-rich-rules").split("\n")[:-1]) == ours
        assert entries(n1, *side) == [N2, N3]
    assert fw(n1, "--permanent", "--ipset=omw-lab", "--get-description").startswith(
        "omwizard:lab")
    rc, doc, err = omw("check", str(manage_plan), "--section", "network", "--json", state=state)
    assert doc is not None
    assert {by(doc, "network.firewall")[n]["status"] for n in lab.nodes} == {"ok"}, err

    # the members form
    offsets = start_all(lab)
    for name, node in lab.nodes.items():
        hz.wait_for_log(node, re.compile(r"Members \{size:3"), timeout=90, start=offsets[name])
    stop_all(lab)

    # n3 leaves: the check names its stale entry; apply drops exactly that entry
    rc, doc, err = omw("check", str(two_plan), "--section", "network", "--json", state=state)
    assert doc is not None, err
    res = by(doc, "network.firewall")["n1"]
    assert res["status"] == "needs-change" and N3 in res["detail"], res
    assert res["data"]["stale_sources"] == [N3]
    rc, doc, err = omw("apply", str(two_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert doc is not None, err
    assert by(doc, "network.firewall")["n1"]["status"] == "changed", err
    for side in ((), ("--permanent",)):
        assert entries(n1, *side) == [N2]
        assert sorted(fw(n1, *side, "--list-rich-rules").split("\n")[:-1]) == ours

    # rollback: firewalld's zone and ipsets as they were, live and permanent
    rc, doc, err = omw("rollback", str(manage_plan), "--section", "network", "--yes", "--json",
                       state=state)
    assert rc == 0, err
    assert listing(n1) == before
