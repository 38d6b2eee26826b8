"""The lab's services, for real: databases on the db node, Hazelcast members, health responder.

Databases are administered over real SSH on the db node (as the database section will do)
and logged into from an OM node's own address; the members are real Hazelcast 5.x members
reading the node's hazelcast.xml and finding each other over the lab's multicast.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import urllib.error
import urllib.request

import pytest

from omwizard.lab import hazelcast
from omwizard.lab.services import (
    MARIADB_CNF,
    ensure_lab_services,
    mariadb_pid,
    mysql,
    psql,
    start_health_responder,
    start_mariadb,
    start_postgres,
)

pytestmark = pytest.mark.lab

DB = "198.18.0.10"
PASSWORD = "Lab-Pass-1"
ROUTE = "route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0"


@pytest.fixture(scope="module")
def services_lab(lab):
    """The session lab with the cluster-layer stand-in installed in every OM node."""
    ensure_lab_services(lab)
    return lab


@pytest.fixture
def slab(services_lab, fresh_lab):
    return fresh_lab


def ssh(lab, address: str, command: str) -> subprocess.CompletedProcess[str]:
    """One command on a node over the lab's real OpenSSH, with strict host-key checking."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={lab.known_hosts}", "-i", str(lab.identity),
         f"root@{address}", command],
        capture_output=True, text=True, timeout=120)


def mysql_login(node) -> subprocess.CompletedProcess[str]:
    return node.run(f"MYSQL_PWD={shlex.quote(PASSWORD)} mysql -h {DB} -u om -N -B "
                    "-e 'select user()' openmeetings")


def pg_login(node) -> subprocess.CompletedProcess[str]:
    return node.run(f"PGPASSWORD={shlex.quote(PASSWORD)} psql -X -At -h {DB} -U om "
                    "-d openmeetings -c 'select inet_client_addr()'")


def test_mariadb_is_administered_over_ssh_and_reached_from_an_om_node(slab):
    db, n1 = slab.db, slab.nodes["n1"]
    start_mariadb(db)
    assert mysql(db, "select 1").stdout.strip() == "1"
    # as Debian ships it: only loopback, so an OM node cannot even connect
    refused = mysql_login(n1)
    assert refused.returncode != 0 and "Can't connect" in refused.stderr

    q = shlex.quote
    out = ssh(slab, DB, f"sed -i 's/^bind-address.*/bind-address = {DB}/' {MARIADB_CNF} && "
                        "service mariadb restart")
    assert out.returncode == 0, out.stderr
    assert mysql(db, "select @@bind_address").stdout.strip() == DB
    # listening now, but no such user yet
    denied = mysql_login(n1)
    assert denied.returncode != 0 and "is not allowed to connect" in denied.stderr

    sql = ("CREATE DATABASE openmeetings; "
           f"CREATE USER 'om'@'198.18.0.%' IDENTIFIED BY '{PASSWORD}'; "
           "GRANT ALL ON openmeetings.* TO 'om'@'198.18.0.%';")
    out = ssh(slab, DB, f"mysql -e {q(sql)}")
    assert out.returncode == 0, out.stderr
    ok = mysql_login(n1)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"om@{n1.address}"


def test_mariadb_start_is_the_reset(slab):
    db = slab.db
    first = start_mariadb(db)
    assert mysql(db, "CREATE USER 'om'@'%' IDENTIFIED BY 'x'").returncode == 0
    second = start_mariadb(db)
    assert second != first and mariadb_pid(db) == second
    assert mysql(db, "select count(*) from mysql.user where user='om'").stdout.strip() == "0"
    assert mysql(db, "select @@bind_address").stdout.strip() == "127.0.0.1"


def test_postgres_is_administered_over_ssh_and_reached_from_an_om_node(slab):
    db, n1 = slab.db, slab.nodes["n1"]
    start_postgres(db)
    assert psql(db, "select 1").stdout.strip() == "1"
    refused = pg_login(n1)
    assert refused.returncode != 0 and "Connection refused" in refused.stderr

    q = shlex.quote
    conf = ssh(slab, DB, "sudo -u postgres psql -X -At -c 'show config_file'")
    hba = ssh(slab, DB, "su postgres -c \"psql -X -At -c 'show hba_file'\"")
    assert conf.returncode == 0 and hba.returncode == 0, conf.stderr + hba.stderr
    conf_file, hba_file = conf.stdout.strip(), hba.stdout.strip()
    assert conf_file == "/etc/postgresql/15/main/postgresql.conf"
    out = ssh(slab, DB, f"echo {q(f'listen_addresses = {chr(39)}{DB}{chr(39)}')} >> "
                        f"{q(conf_file)} && service postgresql restart")
    assert out.returncode == 0, out.stderr
    sql = f"CREATE USER om PASSWORD '{PASSWORD}'"
    out = ssh(slab, DB, f"sudo -u postgres psql -X -c {q(sql)} && "
                        "sudo -u postgres createdb -O om openmeetings")
    assert out.returncode == 0, out.stderr
    # listening and the user exists, but pg_hba.conf has no line for the OM nodes
    denied = pg_login(n1)
    assert denied.returncode != 0 and "no pg_hba.conf entry" in denied.stderr

    line = "host openmeetings om 198.18.0.0/24 scram-sha-256"
    out = ssh(slab, DB, f"echo {q(line)} >> {q(hba_file)} && pg_ctlcluster 15 main reload")
    assert out.returncode == 0, out.stderr
    ok = pg_login(n1)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == n1.address


def _clustered_xml(text: str) -> str:
    """The documentation's change, crudely: the commented multicast block replaces the
    disabled one (the real transform lives in omwizard.configs.hazelcast)."""
    start = text.index("<network>")
    end = text.index("</network>", start) + len("</network>")
    text = text[:start] + text[end:]
    text = text.replace("<!--network>", "<network>").replace("</network-->", "</network>")
    return text.replace("192.168.1.*", "198.18.0.*")


def _xml_path(node):
    return node.root / "opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"


def test_members_stay_alone_with_the_original_file(slab):
    nodes = [slab.nodes["n1"], slab.nodes["n2"]]
    for node in nodes:
        hazelcast.start_member(node)
    for node in nodes:
        hazelcast.wait_for_log(node, hazelcast.STANDALONE_LOG, timeout=90)
        hazelcast.wait_for_log(node, hazelcast.STARTED_RE, timeout=90)
        assert hazelcast.member_pid(node) is not None
    for node in nodes:
        log = hazelcast.read_log(node)
        assert "Loading configuration '/opt/om/webapps/openmeetings/WEB-INF/classes/" \
               "hazelcast.xml'" in log
        assert all(len(listed) < 2 for listed in hazelcast.members(log))
        hazelcast.stop_member(node)
        assert hazelcast.member_pid(node) is None


def test_members_cluster_over_multicast_with_the_documented_block_and_route(slab):
    nodes = [slab.nodes["n1"], slab.nodes["n2"]]
    for node in nodes:
        path = _xml_path(node)
        path.write_text(_clustered_xml(path.read_text()))
        node.run(ROUTE, check=True)
    for node in nodes:
        out = node.run(["/opt/om/bin/startup.sh"], check=True)
        assert "started" in out.stdout
    for node in nodes:
        hazelcast.wait_for_log(node, re.compile(r"Members \{size:2, ver:\d+\} \["), timeout=120)
    addresses = {n.address for n in nodes}
    for node in nodes:
        log = hazelcast.read_log(node)
        assert "Starting standalone" not in log
        assert any(set(listed) == addresses for listed in hazelcast.members(log))
    for node in nodes:
        out = node.run(["/opt/om/bin/shutdown.sh"], check=True)
        assert "stopped" in out.stdout
        assert hazelcast.member_pid(node) is None


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_responder_answers_as_openmeetings_does(slab):
    n1, n2 = slab.nodes["n1"], slab.nodes["n2"]
    start_health_responder(n1)
    start_health_responder(n2, healthy=False, version="8.1.0")
    base1 = f"http://{n1.address}:5080/openmeetings/services/info"
    assert _get(f"{base1}/health") == (
        200, {"health": {"inited": True, "installed": True, "dbOk": True}})
    status, body = _get(f"{base1}/version")
    assert status == 200 and body["info"]["version"] == "9.1.0"
    assert _get(f"http://{n1.address}:5080/openmeetings/nope")[0] == 404
    # from another node, as the verify section would reach it through SSH
    out = n1.run(["curl", "-sf", f"http://{n2.address}:5080/openmeetings/services/info/health"])
    assert json.loads(out.stdout) == {"health": {"inited": True, "installed": True,
                                                 "dbOk": False}}
