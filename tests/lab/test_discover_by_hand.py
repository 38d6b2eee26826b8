"""discover on a cluster an operator set up by hand (issue 18), without omwizard.

The test is the operator: on the lab's OpenMeetings 9.1.0 nodes it follows the clustering page
(fixtures/openmeetings/Clustering.xml) with shell commands and file edits - one MariaDB for all
nodes (one account 'om'@'198.18.0.%', as people write it), one time zone, persistence.xml
pointing at it with the remote commit provider uncommented, DATA_DIR in the unit's JAVA_OPTS,
the multicast route, hazelcast.xml's disabled join and discovery property removed and the
multicast block uncommented - leaving Hazelcast's cluster-name as shipped (absent: 'dev'), as
the page does. Then `discover` must write a plan that validates (keeping that cluster-name in
network.cluster_name) and `check` on it must find nothing to change and nothing failed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.lab import Lab, faults, hazelcast, services, set_timezone
from omwizard.plan.model import load_plan

pytestmark = pytest.mark.lab

PASSWORD = "Hand made; pw"
HZ = "/opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
PERSISTENCE = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml"
UNIT = "/etc/systemd/system/openmeetings.service"
LIB = "/opt/om/webapps/openmeetings/WEB-INF/lib"
DATA = "/opt/omdata"


def omw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "omwizard", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900,
                          env={**os.environ, "OMW_DB_PASSWORD": PASSWORD})


def hand_hazelcast(text: str, name: str, url: str) -> str:
    """What the page says to do to hazelcast.xml, done as a person edits it."""
    text = re.sub(r"<instance-name>[^<]*</instance-name>", f"<instance-name>{name}</instance-name>",
                  text, count=1)
    text = re.sub(r'<attribute name="name">[^<]*</attribute>',
                  f'<attribute name="name">{name}</attribute>', text, count=1)
    text = re.sub(r'<attribute name="server.url">[^<]*</attribute>',
                  f'<attribute name="server.url">{url}</attribute>', text, count=1)
    # delete the disabled join block, un-comment the multicast one with this LAN's interface
    text = re.sub(r"\s*<network>\s*<join>\s*(?:<[a-z-]+ enabled=\"false\"/>\s*)+</join>\s*"
                  r"</network>", "", text, count=1)
    text = text.replace("<!--network>", "<network>", 1).replace("</network-->", "</network>", 1)
    text = text.replace("<interface>192.168.1.*</interface>", "<interface>198.18.0.*</interface>")
    text = re.sub(r'\s*<property name="hazelcast.discovery.enabled">false</property>', "", text)
    return text


def hand_persistence(text: str) -> str:
    text = text.replace("jdbc:mysql://localhost:3306/", "jdbc:mysql://198.18.0.10:3306/")
    text = text.replace("Password=Install-Pass-1", f"Password={PASSWORD}")
    return re.sub(r'<!--(property name="openjpa.RemoteCommitProvider"[^>]*/)-->', r"<\1>", text)


@pytest.fixture(scope="module")
def by_hand(lab, lab_manager) -> Lab:  # noqa: ANN001
    lab_manager.get()
    lab.reset()
    services.ensure_lab_services(lab)
    db = lab.db
    services.start_mariadb(db)
    db.write_file(services.MARIADB_CNF, services.mariadb_config(db.root / "mariadb", "0.0.0.0"))
    db.run("service mariadb restart", check=True, timeout=120)
    made = services.mysql(db, "CREATE DATABASE openmeetings; "
                              f"CREATE USER 'om'@'198.18.0.%' IDENTIFIED BY '{PASSWORD}'; "
                              "GRANT ALL ON openmeetings.* TO 'om'@'198.18.0.%'; "
                              "FLUSH PRIVILEGES;")
    assert made.returncode == 0, made.stderr
    for node in lab.all_nodes:  # one time zone everywhere: the installer's (persistence.xml)
        set_timezone(node, "Europe/Berlin")
    for node in lab.nodes.values():
        url = f"http://{node.address}:5080/openmeetings"
        text = node.run(["cat", HZ], check=True).stdout
        node.write_file(HZ, hand_hazelcast(text, node.name, url))
        text = node.run(["cat", PERSISTENCE], check=True).stdout
        node.write_file(PERSISTENCE, hand_persistence(text))
        node.run("sed -i -e \"s|^Environment='JAVA_OPTS=|&"
                 f"-DDATA_DIR={DATA} |\" {UNIT}", check=True)
        node.run(f"mkdir -p {DATA} && chown nobody:nogroup {DATA}", check=True)
        # the page's multicast route, live and in the interface's ifupdown stanza
        node.run("ip route add 224.0.0.0/4 dev eth0", check=True)
        node.run("sed -i '/^iface eth0 /a\\    up route add -net 224.0.0.0 netmask 240.0.0.0 "
                 "dev eth0' /etc/network/interfaces", check=True)
        node.run(["touch", f"{LIB}/hazelcast-5.7.0.jar"], check=True)
        services.start_health_responder(node)
        faults.honour_java_opts(node)
    sizes = {n: len(hazelcast.read_log(node)) for n, node in lab.nodes.items()}
    for node in lab.nodes.values():
        faults.start_om(node)
    for name, node in lab.nodes.items():
        hazelcast.wait_for_log(node, f"Members {{size:{len(lab.nodes)}, ver:", timeout=120,
                               start=sizes[name])
    yield lab
    lab.reset()


def test_discover_then_check_finds_nothing_to_change(by_hand: Lab, tmp_path: Path) -> None:
    lab = by_hand
    hosts = [n.address for n in lab.nodes.values()] + [lab.db.address]
    target = tmp_path / "found.yaml"
    proc = omw("discover", *hosts, "-o", str(target), "--identity", str(lab.identity),
               "--known-hosts", str(lab.known_hosts), "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert PASSWORD not in target.read_text() + proc.stdout + proc.stderr
    plan = load_plan(target, env={"OMW_DB_PASSWORD": PASSWORD})
    assert [n.name for n in plan.om_nodes] == ["n1", "n2", "n3"]
    assert plan.network.cluster_name == "dev"  # as the nodes have it (the page never sets one)
    assert plan.database.host == "198.18.0.10" and plan.storage.path == DATA
    assert plan.cluster.timezone == "Europe/Berlin"
    findings = {(f["node"], f["cause"]) for f in json.loads(proc.stdout)["report"]["findings"]}
    assert {(n, "default-cluster-name") for n in ("n1", "n2", "n3")} <= findings, findings
    check = omw("check", str(target), "--json", "--state", str(tmp_path / "state"))
    out = json.loads(check.stdout)
    bad = [f'{r["node"]} {r.get("step")} {r["status"]}: {r["detail"]}' for r in out["results"]
           if r["status"] not in ("ok", "skipped")]
    assert out["summary"]["needs_change"] == 0 and out["summary"]["failed"] == 0, "\n".join(bad)
