"""preflight and network on the lab, through the CLI as an operator runs it (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omwizard.lab import Lab, faults, set_timezone

pytestmark = pytest.mark.lab

OM = ("n1", "n2", "n3")
OTHER_ZONE = "America/New_York"


def omw(*args: str, state: Path) -> tuple[int, dict, str]:
    """`python -m omwizard ARGS --json --state DIR`: (exit status, JSON document, stderr)."""
    env = {**os.environ, "OMW_DB_PASSWORD": "lab-secret"}
    proc = subprocess.run(
        [sys.executable, "-m", "omwizard", *args, "--json", "--state", str(state)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, doc, proc.stderr


def results(doc: dict, step: str) -> dict[str, dict]:
    """{node: result} of one step ("section.step")."""
    section, name = step.split(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def statuses(doc: dict, step: str) -> dict[str, str]:
    """{node: status} of one step, leaving out the nodes it was skipped on."""
    return {n: r["status"] for n, r in results(doc, step).items() if r["status"] != "skipped"}


def routes(lab: Lab, name: str) -> str:
    return lab.node(name).run(["ip", "route", "show", "224.0.0.0/4"], check=True).stdout.strip()


def zone(lab: Lab, name: str) -> str:
    return lab.node(name).run(["cat", "/etc/timezone"], check=True).stdout.strip()


SECTIONS = ("--section", "preflight", "--section", "network")


def test_check_apply_again_and_rollback(fresh_lab: Lab, tmp_path: Path):
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    for node in lab.all_nodes:
        set_timezone(node, OTHER_ZONE if node.name == "n2" else "Europe/Berlin")

    code, doc, err = omw("check", str(plan), *SECTIONS, state=state)
    assert code == 1, err
    assert statuses(doc, "network.multicast-route") == dict.fromkeys(OM, "needs-change")
    assert "no route 224.0.0.0/4 on eth0" in results(doc, "network.multicast-route")["n1"]["detail"]
    tz = statuses(doc, "preflight.timezone")
    assert tz == {"n1": "ok", "n2": "needs-change", "n3": "ok", "db": "ok"}
    assert OTHER_ZONE in results(doc, "preflight.timezone")["n2"]["detail"]
    ping = results(doc, "network.multicast-ping")
    assert ping["n1"]["status"] == "failed" and "Network is unreachable" in ping["n1"]["detail"]
    assert statuses(doc, "network.interface-multicast") == dict.fromkeys(OM, "ok")
    # the lab's nodes are configured by ifupdown, as a Debian server: the route is not kept
    assert statuses(doc, "network.route-persistent") == dict.fromkeys(OM, "needs-change")
    assert "ifupdown" in results(doc, "network.route-persistent")["n1"]["detail"]
    for step in ("preflight.clock", "preflight.stray-config", "preflight.ports"):
        assert set(statuses(doc, step).values()) == {"ok"}, results(doc, step)
    assert results(doc, "network.multicast-route")["db"]["status"] == "skipped"

    # --dry-run: the exact commands, nothing changed
    code, doc, err = omw("apply", str(plan), *SECTIONS, "--dry-run", "--yes", state=state)
    assert code == 1, err  # CONTRACT: a dry run with would-changes exits 1
    route = results(doc, "network.multicast-route")
    for name in OM:
        assert route[name]["status"] == "would-change"
        assert route[name]["changes"][0]["target"] == (
            "route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0"
        )
        assert route[name]["changes"][0]["undo"] == (
            "route -v delete -net 224.0.0.0 netmask 240.0.0.0 dev eth0"
        )
        assert routes(lab, name) == ""
    assert results(doc, "preflight.timezone")["n2"]["status"] == "would-change"
    assert zone(lab, "n2") == OTHER_ZONE

    code, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state)
    assert code == 0, err + json.dumps(doc, indent=1)
    assert statuses(doc, "network.multicast-route") == dict.fromkeys(OM, "changed")
    assert statuses(doc, "preflight.timezone")["n2"] == "changed"
    assert zone(lab, "n2") == "Europe/Berlin"
    for name in OM:
        assert routes(lab, name) == "224.0.0.0/4 dev eth0 scope link"
    ping = results(doc, "network.multicast-ping")
    assert statuses(doc, "network.multicast-ping") == dict.fromkeys(OM, "ok")
    assert "sent 2 echo requests" in ping["n1"]["detail"]
    for name in ("n2", "n3"):
        assert "from n1 on eth0" in ping[name]["detail"]
    assert not [p for p in lab.node("n1").run("pgrep -x tcpdump").stdout.split()]

    code, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state)
    assert code == 0, err
    assert {r["status"] for r in doc["results"]} <= {"ok", "skipped"}
    assert not [r for r in doc["results"] if r["changes"]]

    code, doc, err = omw("rollback", str(plan), "--section", "network", "--yes", state=state)
    assert code == 0, err
    assert statuses(doc, "network.multicast-route") == dict.fromkeys(OM, "rolled-back")
    for name in OM:
        assert routes(lab, name) == ""
    unreachable = lab.node("n1").run(["ping", "-t", "1", "-c", "2", "-W", "1", "224.0.0.0"])
    assert "Network is unreachable" in unreachable.stdout + unreachable.stderr
    assert zone(lab, "n2") == "Europe/Berlin"

    code, doc, err = omw("rollback", str(plan), "--section", "preflight", "--yes", state=state)
    assert code == 0, err
    assert zone(lab, "n2") == OTHER_ZONE
    link = lab.node("n2").run(["readlink", "/etc/localtime"], check=True).stdout.strip()
    assert link == f"/usr/share/zoneinfo/{OTHER_ZONE}"


def test_node_with_link_down_fails_alone_then_completes(fresh_lab: Lab, tmp_path: Path):
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    faults.link_down(lab.node("n2"))
    try:
        code, doc, err = omw("apply", str(plan), "--section", "network", "--yes", state=state)
    finally:
        faults.link_up(lab.node("n2"))
    assert code == 1, err
    route = results(doc, "network.multicast-route")
    assert route["n2"]["status"] == "failed"
    assert route["n2"]["remedy"]
    assert "198.18.0.12" in route["n2"]["detail"]
    assert {route["n1"]["status"], route["n3"]["status"]} == {"changed"}
    ping = statuses(doc, "network.multicast-ping")
    assert ping == {"n1": "ok", "n2": "failed", "n3": "ok"}

    code, doc, err = omw("apply", str(plan), "--section", "network", "--yes", state=state)
    assert code == 0, err
    route = results(doc, "network.multicast-route")
    assert route["n2"]["status"] == "changed"
    assert route["n1"]["status"] == route["n3"]["status"] == "ok"
    assert not route["n1"]["changes"] and not route["n3"]["changes"]
    assert statuses(doc, "network.multicast-ping") == {"n1": "ok", "n2": "ok", "n3": "ok"}


def test_blocked_port_names_the_pair(fresh_lab: Lab, tmp_path: Path):
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    lab.node("n2").run("iptables -I INPUT -p tcp --dport 5701 -j DROP", check=True)
    code, doc, err = omw("check", str(plan), "--section", "preflight", state=tmp_path / "s")
    assert code == 1, err
    ports = results(doc, "preflight.ports")
    assert ports["n2"]["status"] == "failed"
    assert "n1 → n2 TCP 5701 (Hazelcast): filtered" in ports["n2"]["detail"]
    assert "n3 → n2 TCP 5701 (Hazelcast): filtered" in ports["n2"]["detail"]
    assert ports["n1"]["status"] == "failed" and "n1 → n2 TCP 5701" in ports["n1"]["detail"]
    assert "5636" not in ports["n2"]["detail"]  # the other ports are fine
    assert "TCP 5701" in ports["n2"]["remedy"] or "tcp --dport 5701" in ports["n2"]["remedy"]
    assert ports["db"]["status"] == "ok"


IFUPDOWN = """# interfaces(5) file used by ifup(8) and ifdown(8)
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
\taddress 198.18.0.11/24

"""

NETPLAN = """network:
  version: 2
  renderer: networkd
  ethernets:
    eth0:
      addresses: [198.18.0.12/24]
"""


def test_route_persistent_ifupdown_and_netplan(fresh_lab: Lab, tmp_path: Path):
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    n1, n2 = lab.node("n1"), lab.node("n2")
    n1.run(
        "mkdir -p /etc/network/interfaces.d && cat > /etc/network/interfaces",
        input=IFUPDOWN,
        check=True,
    )
    n2.run("mkdir -p /etc/netplan && cat > /etc/netplan/01-netcfg.yaml", input=NETPLAN, check=True)

    code, doc, err = omw("check", str(plan), "--section", "network", state=state)
    persistent = results(doc, "network.route-persistent")
    assert persistent["n1"]["status"] == "needs-change"
    assert "ifupdown" in persistent["n1"]["detail"]
    assert persistent["n2"]["status"] == "needs-change"
    assert "netplan" in persistent["n2"]["detail"]
    assert persistent["n3"]["status"] == "needs-change"  # the lab's own ifupdown stanza

    code, doc, err = omw("apply", str(plan), "--section", "network", "--yes", state=state)
    assert code == 0, err
    assert statuses(doc, "network.route-persistent") == {
        "n1": "changed",
        "n2": "changed",
        "n3": "changed",
    }
    text = n1.run(["cat", "/etc/network/interfaces"], check=True).stdout
    assert text.startswith(IFUPDOWN.rstrip("\n") + "\n\t# omwizard")
    assert "\tup ip route replace 224.0.0.0/4 dev eth0\n" in text
    assert "\tdown ip route del 224.0.0.0/4 dev eth0 || true\n" in text
    ours = n2.run(["cat", "/etc/netplan/60-omwizard-multicast.yaml"], check=True).stdout
    assert yaml.safe_load(ours) == {
        "network": {
            "version": 2,
            "ethernets": {"eth0": {"routes": [{"to": "224.0.0.0/4", "scope": "link"}]}},
        }
    }
    mode = n2.run(["stat", "-c", "%a", "/etc/netplan/60-omwizard-multicast.yaml"]).stdout
    assert mode.strip() == "600"

    code, doc, err = omw("check", str(plan), "--section", "network", state=state)
    assert code == 0, err

    code, doc, err = omw("rollback", str(plan), "--section", "network", "--yes", state=state)
    assert code == 0, err
    assert n1.run(["cat", "/etc/network/interfaces"], check=True).stdout == IFUPDOWN
    assert n2.run(["cat", "/etc/netplan/01-netcfg.yaml"], check=True).stdout == NETPLAN
    assert n2.run(["test", "-e", "/etc/netplan/60-omwizard-multicast.yaml"]).returncode == 1


def test_tcp_ip_join_skips_every_multicast_step(fresh_lab: Lab, tmp_path: Path):
    plan = fresh_lab.write_plan(tmp_path / "plan.yaml", network={"join": "tcp-ip"})
    code, doc, err = omw("check", str(plan), "--section", "network", state=tmp_path / "s")
    assert code == 0, err
    # The firewall step still judges the TCP paths a tcp-ip join needs; every other step of
    # the section is about multicast and is skipped.
    multicast = [r for r in doc["results"] if r["step"] != "firewall"]
    assert multicast and {r["status"] for r in multicast} == {"skipped"}
    firewall = [r for r in doc["results"] if r["step"] == "firewall"]
    assert firewall and {r["status"] for r in firewall} == {"ok"}  # the lab filters nothing
    n1 = [r for r in multicast if r["node"] == "n1"]
    assert all("network.join is tcp-ip" in r["detail"] for r in n1)
