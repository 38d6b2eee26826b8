"""The lab itself: real namespaces, real sshd, real multicast, faults and reset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omwizard.lab import (
    Lab,
    LabBusy,
    LabNode,
    add_user,
    build_lab,
    cleanup_leftovers,
    faults,
    set_timezone,
)
from omwizard.lab import netns as lab_netns
from omwizard.lab.lab import BASE_DIR
from omwizard.plan.model import plan_from_dict
from tests.conftest import LAB_WAIT

pytestmark = pytest.mark.lab


def ssh(lab: Lab, node: LabNode, command: str, user: str = "root",
        timeout: int = 3) -> subprocess.CompletedProcess[str]:
    """The OpenSSH client with the lab's key and strict host-key checking."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "StrictHostKeyChecking=yes",
         "-o", f"ConnectTimeout={timeout}", "-i", str(lab.identity),
         f"{user}@{node.address}", command],
        capture_output=True, text=True, timeout=60)


def lab_processes(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists()
            and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]


def wait_listening(proc: subprocess.Popen) -> bool:
    """tcpdump says "listening on" on stderr once it captures; EOF means it ended."""
    return any("listening on" in line for line in iter(proc.stderr.readline, ""))


@pytest.mark.lab_build
def test_build_and_teardown_leave_nothing(own_lab_slot, tmp_path):
    small = build_lab(n_nodes=2, om_versions=["4.0.11", "5.0.0"], with_db=False,
                      wait=LAB_WAIT)
    try:
        n1, n2 = small.nodes["n1"], small.nodes["n2"]
        pids = [n.pid for n in (n1, n2)] + [n.sshd_pid for n in (n1, n2)]
        spawned = n1.spawn(["sleep", "300"])
        pids.append(spawned.pid)
        assert lab_processes(pids) == pids
        # 4.0.11: no systemd unit, a Tomcat setenv.sh and the mysql template as persistence.xml
        meta = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF"
        assert n1.run(["test", "-e", "/etc/systemd/system/openmeetings.service"]).returncode == 1
        assert "JAVA_OPTS" in n1.run(["cat", "/opt/om/bin/setenv.sh"], check=True).stdout
        assert "derby" not in n1.run(["cat", f"{meta}/persistence.xml"], check=True).stdout
        jars = n1.run(["ls", "/opt/om/webapps/openmeetings/WEB-INF/lib"], check=True).stdout
        assert "openmeetings-web-4.0.11.jar" in jars and "openmeetings-db-4.0.11.jar" in jars
        # 5.0.0: the installed persistence.xml and the unit, pointed at /opt/om
        unit = n2.run(["cat", "/etc/systemd/system/openmeetings.service"], check=True).stdout
        assert "ExecStart=/opt/om/bin/startup.sh" in unit
        assert "Install-Pass-1" in n2.run(["cat", f"{meta}/persistence.xml"], check=True).stdout
        assert not Path("/etc/systemd/system/openmeetings.service").exists()
        assert ssh(small, n2, "hostname").stdout.strip() == "n2"
        assert lab_netns.lab_namespaces() == ["omwlab-n1", "omwlab-n2"]
        workdir = small.workdir
    finally:
        small.teardown()
    spawned.wait()
    assert lab_netns.lab_namespaces() == []
    assert lab_netns.lab_links() == []
    assert lab_processes(pids) == []
    assert not workdir.exists()
    small.teardown()  # idempotent


CRASHING_LAB = (
    "from omwizard.lab import build_lab\n"
    "lab = build_lab(n_nodes=2, with_db=False, wait={wait})\n"
    "lab.nodes['n1'].spawn(['sleep', '300'])\n"
    "print('up', flush=True)\n"
    "import time; time.sleep(600)\n"
)


@pytest.mark.lab_build
def test_cleanup_after_a_crashed_run(own_lab_slot):
    crashed = subprocess.Popen([sys.executable, "-c", CRASHING_LAB.format(wait=LAB_WAIT)],
                               stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        assert crashed.stdout is not None and crashed.stdout.readline() == "up\n"
    finally:
        crashed.kill()
        crashed.wait()
    pidfiles = list((BASE_DIR / "pids").glob("*.pid"))
    pids = [int(p.read_text()) for p in pidfiles]
    assert len(lab_processes(pids)) == 5  # 2 holders, 2 sshd, 1 sleep outlived the crash
    assert lab_netns.lab_namespaces() == ["omwlab-n1", "omwlab-n2"]
    cleanup_leftovers()
    assert lab_processes(pids) == []
    assert lab_netns.lab_namespaces() == [] and lab_netns.lab_links() == []
    assert not BASE_DIR.exists()


def test_only_one_lab_per_machine(lab: Lab):
    with pytest.raises(LabBusy):
        build_lab(n_nodes=2, with_db=False)
    assert lab.nodes["n1"].run(["true"]).returncode == 0  # the live lab was left alone


def test_multicast_unreachable_without_route(fresh_lab: Lab):
    proc = fresh_lab.nodes["n1"].run(["ping", "-t", "1", "-c", "2", "224.0.0.0"])
    assert proc.returncode != 0
    assert "Network is unreachable" in proc.stderr


def test_multicast_reaches_other_nodes_after_route(fresh_lab: Lab):
    nodes = list(fresh_lab.nodes.values())
    for node in nodes:
        node.run("route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0", check=True)
    sender, listeners = nodes[0], nodes[1:]
    dumps = []
    for node in listeners:
        proc = node.spawn(["timeout", "10", "tcpdump", "-ni", "eth0", "-c", "2",
                           "host", "224.0.0.0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_listening(proc), proc.args
        dumps.append(proc)
    # the documentation's ping; -W 1 only shortens its 10 s wait for replies that never come
    ping = sender.run(["ping", "-t", "1", "-c", "2", "-W", "1", "224.0.0.0"])
    assert "Network is unreachable" not in ping.stderr
    for proc in dumps:
        out, _ = proc.communicate(timeout=30)
        requests = [line for line in out.splitlines()
                    if f"{sender.address} > 224.0.0.0: ICMP echo request" in line]
        assert len(requests) == 2, out


def test_fstab_change_over_ssh_stays_in_its_node(fresh_lab: Lab):
    n1, n2 = fresh_lab.nodes["n1"], fresh_lab.nodes["n2"]
    host_fstab = Path("/etc/fstab").read_bytes()
    before = n2.run(["cat", "/etc/fstab"], check=True).stdout
    done = ssh(fresh_lab, n1, "set -e; cp /etc/fstab /etc/fstab.tmp; "
                              "echo '198.18.0.11:/opt/omdata /opt/omdata nfs defaults 0 0' "
                              ">> /etc/fstab.tmp; mv /etc/fstab.tmp /etc/fstab; cat /etc/fstab")
    assert done.returncode == 0, done.stderr
    assert "198.18.0.11:/opt/omdata" in done.stdout
    assert "198.18.0.11:/opt/omdata" in n1.run(["cat", "/etc/fstab"], check=True).stdout
    assert n2.run(["cat", "/etc/fstab"], check=True).stdout == before
    assert Path("/etc/fstab").read_bytes() == host_fstab
    fresh_lab.reset()
    assert n1.run(["cat", "/etc/fstab"], check=True).stdout == before


def test_sudo_users_nopasswd_and_password(fresh_lab: Lab):
    n1, n2 = fresh_lab.nodes["n1"], fresh_lab.nodes["n2"]
    add_user(n1, "alice", nopasswd=True)
    add_user(n1, "bob", password="Lab-Pass-1")
    alice = ssh(fresh_lab, n1, "id -un; sudo -n id -u", user="alice")
    assert alice.stdout.split() == ["alice", "0"], alice.stderr
    bob = ssh(fresh_lab, n1, "sudo -n true", user="bob")
    assert bob.returncode == 1 and "a password is required" in bob.stderr
    bob = ssh(fresh_lab, n1, "echo Lab-Pass-1 | sudo -S -p '' id -u", user="bob")
    assert bob.stdout.strip() == "0", bob.stderr
    assert ssh(fresh_lab, n2, "true", user="alice").returncode == 255  # n1's user only
    fresh_lab.reset()
    assert ssh(fresh_lab, n1, "true", user="alice").returncode == 255


def test_link_down_breaks_ssh_and_link_up_restores(fresh_lab: Lab):
    n2 = fresh_lab.nodes["n2"]
    faults.link_down(n2)
    down = ssh(fresh_lab, n2, "true", timeout=2)
    assert down.returncode == 255
    faults.link_up(n2)
    assert ssh(fresh_lab, n2, "true").returncode == 0


def test_stopped_sshd_refuses_and_restarts(fresh_lab: Lab):
    n3 = fresh_lab.nodes["n3"]
    faults.stop_sshd(n3)
    refused = ssh(fresh_lab, n3, "true")
    assert refused.returncode == 255 and "refused" in refused.stderr
    faults.start_sshd(n3)
    assert ssh(fresh_lab, n3, "true").returncode == 0


def test_readonly_and_full_file_systems(fresh_lab: Lab):
    n1 = fresh_lab.nodes["n1"]
    faults.readonly(n1, "/etc")
    ro = ssh(fresh_lab, n1, "touch /etc/omw-probe")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    faults.writable(n1, "/etc")
    assert ssh(fresh_lab, n1, "touch /etc/omw-probe").returncode == 0
    faults.fill(n1, "/opt/om/logs")
    full = n1.run("echo data > /opt/om/logs/new.log")
    assert full.returncode != 0
    assert n1.run("df --output=avail /opt/om/logs | tail -1").stdout.strip() == "0"
    faults.readonly(n1, "/opt/om")
    fresh_lab.reset()
    assert n1.run("echo data > /opt/om/logs/new.log").returncode == 0
    assert n1.run(["test", "-e", "/etc/omw-probe"]).returncode == 1


def test_reset_restores_node_state(fresh_lab: Lab):
    n1, n2 = fresh_lab.nodes["n1"], fresh_lab.nodes["n2"]
    stray = n1.spawn(["sleep", "300"])
    kept = n2.spawn(["sleep", "300"])
    n2.keep(kept.pid)
    over_ssh = ssh(fresh_lab, n1, "nohup sleep 301 >/dev/null 2>&1 & echo $!")
    ssh_pid = int(over_ssh.stdout.strip())
    set_timezone(n1, "Asia/Tokyo")
    n1.run("route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0; hostname other; "
           "echo junk > /opt/om/logs/openmeetings.log; rm /opt/om/bin/startup.sh; "
           "touch /tmp/scratch /home/scratch", check=True)
    fresh_lab.reset()
    assert stray.wait(timeout=10) is not None
    assert not lab_processes([ssh_pid])
    assert kept.poll() is None
    assert n1.run(["cat", "/etc/timezone"], check=True).stdout.strip() == "UTC"
    assert n1.run(["ip", "route"], check=True).stdout.strip() == (
        "198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.11")
    assert n1.run(["hostname"], check=True).stdout.strip() == "n1"
    assert n1.run("ls -A /tmp /home /opt/om/logs", check=True).stdout.split() == [
        "/home:", "root", "/opt/om/logs:", "/tmp:"]  # root's node-private home, empty
    assert n1.run(["test", "-x", "/opt/om/bin/startup.sh"]).returncode == 0
    n2.unkeep(kept.pid)
    fresh_lab.reset()
    assert kept.wait(timeout=10) is not None


def test_timezone_seen_over_ssh(fresh_lab: Lab):
    set_timezone(fresh_lab.nodes["n2"], "Asia/Tokyo")
    assert ssh(fresh_lab, fresh_lab.nodes["n2"], "date +%Z").stdout.strip() == "JST"
    assert ssh(fresh_lab, fresh_lab.nodes["n1"], "date +%Z").stdout.strip() == "UTC"
    with pytest.raises(ValueError):
        set_timezone(fresh_lab.nodes["n2"], "Nowhere/Atlantis")


def test_storage_folder_is_shared_between_om_nodes(fresh_lab: Lab):
    n1, n2, n3 = (fresh_lab.nodes[n] for n in ("n1", "n2", "n3"))
    assert ssh(fresh_lab, n1, "echo from-n1 > /opt/omdata/probe").returncode == 0
    for node in (n2, n3):
        assert node.run(["cat", "/opt/omdata/probe"], check=True).stdout == "from-n1\n"
    assert fresh_lab.db is not None
    assert fresh_lab.db.run(["test", "-e", "/opt/omdata/probe"]).returncode == 1


def test_nodes_have_an_openmeetings_install(fresh_lab: Lab):
    n1 = fresh_lab.nodes["n1"]
    classes = "/opt/om/webapps/openmeetings/WEB-INF/classes"
    listing = n1.run(["ls", f"{classes}/META-INF"], check=True).stdout.split()
    assert {"persistence.xml", "mysql_persistence.xml", "postgresql_persistence.xml"} <= set(
        listing)
    assert "<hazelcast" in n1.run(["cat", f"{classes}/hazelcast.xml"], check=True).stdout
    assert n1.run(["test", "-f", "/etc/systemd/system/openmeetings.service"]).returncode == 0
    for sub in ("bin/startup.sh", "bin/shutdown.sh", "logs", "conf",
                "webapps/openmeetings/WEB-INF/lib/openmeetings-web-9.1.0.jar"):
        assert n1.run(["test", "-e", f"/opt/om/{sub}"]).returncode == 0, sub


def test_plan_describes_the_lab(lab: Lab, lab_plan: Path):
    plan = yaml.safe_load(lab_plan.read_text())
    assert plan["omwizard"] == 1 and plan["cluster"]["timezone"] == "Europe/Berlin"
    assert [n["host"] for n in plan["nodes"]] == [
        "198.18.0.11", "198.18.0.12", "198.18.0.13", "198.18.0.10"]
    assert plan["nodes"][0]["roles"] == ["om"]
    assert plan["nodes"][-1] == {"name": "db", "host": "198.18.0.10",
                                 "address": "198.18.0.10", "interface": "eth0",
                                 "roles": ["database"]}
    assert plan["ssh"]["identity"] == str(lab.identity)
    assert os.path.exists(plan["ssh"]["known_hosts"])
    assert plan["database"]["password"] == "${OMW_DB_PASSWORD}"
    assert plan["storage"] == {"kind": "existing", "path": "/opt/omdata"}
    assert lab.plan_dict(storage={"kind": "nfs"})["nodes"][0]["roles"] == ["om", "storage"]
    loaded = plan_from_dict(plan, env={"OMW_DB_PASSWORD": "lab-db-pass"})
    assert [n.name for n in loaded.om_nodes] == ["n1", "n2", "n3"]
    changed = lab.plan_dict(ssh={"user": "alice"}, cluster={"name": "other"})
    assert changed["ssh"]["user"] == "alice" and changed["ssh"]["port"] == 22
    assert changed["cluster"] == {"name": "other", "timezone": "Europe/Berlin",
                                  "om_home": "/opt/om"}
