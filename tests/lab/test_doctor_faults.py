"""Troubleshooting on the lab (issue 18): discover, the doctor's fault catalogue, the bundle.

One module-scoped cluster: first `discover` reads the lab as OpenMeetings leaves it
(half-configured: every join off, one shipped instance-name, the database on localhost), then
the rehearsal cluster is applied, and its members are restarted as systemd would start them
(the unit's JAVA_OPTS in the JVM). On that working cluster `doctor` finds nothing; each fault
then breaks it in one way on one node (n2), doctor must name that cause on n2 and nothing on
the others, and the fix the finding gives, applied, must clear it. The bundle and discover's
plan are scanned for every secret in every encoding.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from omwizard.lab import Lab, faults, hazelcast, services
from omwizard.plan.model import load_plan

pytestmark = pytest.mark.lab

PASSWORD = "Doctor pw; & <x> %41+'q"
ADMIN_PASSWORD = "Adm1n-Secret-Value"
TOKEN = "tok3n-Secret-Value"
HZ = "/opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
PERSISTENCE = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml"
PROPERTIES = "/opt/om/webapps/openmeetings/WEB-INF/classes/openmeetings.properties"
LIB = "/opt/om/webapps/openmeetings/WEB-INF/lib"
DROPIN = "/etc/systemd/system/openmeetings.service.d/omwizard.conf"
LOG = "/opt/om/logs/openmeetings.log"
FAULTY = "n2"


def omw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "omwizard", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900,
                          env={**os.environ, "OMW_DB_PASSWORD": PASSWORD, **(env or {})})


@dataclass
class Cluster:
    lab: Lab
    plan: Path
    state: str
    tmp: Path

    def doctor(self) -> dict:
        proc = omw("doctor", str(self.plan), "--json", "--state", self.state)
        assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(proc.stdout)

    def apply(self, *sections: str, node: str = FAULTY) -> None:
        args = [a for s in sections for a in ("--section", s)]
        proc = omw("apply", str(self.plan), *args, "--node", node, "--yes", "--json",
                   "--state", self.state)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def causes(doc: dict) -> dict[str, set[str]]:
    """node -> the cause codes of the doctor's typed data."""
    out: dict[str, set[str]] = {}
    for result in doc["results"]:
        for cause in (result.get("data") or {}).get("causes", []):
            out.setdefault(cause["node"], set()).add(cause["code"])
    return out


def cause_data(doc: dict, code: str) -> dict:
    for result in doc["results"]:
        for cause in (result.get("data") or {}).get("causes", []):
            if cause["code"] == code:
                return cause
    raise AssertionError(f"no cause {code}")


def edit(lab: Lab, path: str, change: Callable[[str], str], node: str = FAULTY) -> None:
    n = lab.node(node)
    text = n.run(["cat", path], check=True).stdout
    new = change(text)
    assert new != text, f"the fault changed nothing in {path}"
    n.write_file(path, new)


def sub(pattern: str, repl: str) -> Callable[[str], str]:
    return lambda text: re.sub(pattern, repl, text, count=1)


def properties(kuid: str, url: str = "ws://127.0.0.1:8888/kurento") -> str:
    return (f"# OpenMeetings settings (lab)\nkurento.ws.url={url}\nkurento.kuid={kuid}\n"
            f"# the operator's integration token\nsip.password={TOKEN}\n")


@pytest.fixture(scope="module")
def cluster(lab, lab_manager, tmp_path_factory) -> Cluster:  # noqa: ANN001
    lab_manager.get()
    lab.reset()
    services.ensure_lab_services(lab)
    tmp = tmp_path_factory.mktemp("doctor")
    plan = lab.write_plan(tmp / "plan.yaml")
    yield Cluster(lab, plan, str(tmp / "state"), tmp)
    lab.reset()


@pytest.fixture(scope="module")
def working(cluster: Cluster) -> Cluster:
    """The rehearsal cluster applied, run as systemd would run it, with Kurento settings."""
    lab = cluster.lab
    services.start_mariadb(lab.db)
    for node in lab.nodes.values():
        services.start_health_responder(node)
        node.run(["touch", f"{LIB}/hazelcast-5.7.0.jar"], check=True)  # what OM 9.1.0 ships
    applied = omw("apply", str(cluster.plan), "--yes", "--json", "--state", cluster.state)
    assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
    for node in lab.nodes.values():
        faults.honour_java_opts(node)
        node.write_file(PROPERTIES, properties(str(uuid.uuid4())))
        hazelcast.stop_member(node)
    sizes = {n: len(hazelcast.read_log(node)) for n, node in lab.nodes.items()}
    for node in lab.nodes.values():
        faults.start_om(node)
    for name, node in lab.nodes.items():
        hazelcast.wait_for_log(node, f"Members {{size:{len(lab.nodes)}, ver:", timeout=120,
                               start=sizes[name])
    return cluster


# -- discover -----------------------------------------------------------------------------------


def discover(cluster: Cluster, out: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    lab = cluster.lab
    hosts = [n.address for n in lab.nodes.values()] + [lab.db.address]
    target = cluster.tmp / out
    proc = omw("discover", *hosts, "-o", str(target), "--identity", str(lab.identity),
               "--known-hosts", str(lab.known_hosts), "--json", env={"OMW_DB_PASSWORD": ""})
    return proc, target


def test_discover_half_configured(cluster: Cluster) -> None:
    """OpenMeetings as installed, nothing clustered: a valid plan, and findings naming each
    missing piece on every node."""
    proc, target = discover(cluster, "half.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plan = load_plan(target, env={})
    assert len(plan.om_nodes) == 3
    report = json.loads(proc.stdout)["report"]
    found: dict[str, set[str]] = {}
    for f in report["findings"]:
        found.setdefault(f["node"], set()).add(f["cause"])
    names = [n.name for n in plan.om_nodes]
    assert names[0] == "server-1"  # the shipped instance-name, the others by host name
    for name in names:
        assert {"join-disabled", "no-data-dir", "remote-commit", "database-local",
                "server-url-loopback"} <= found[name], (name, found)
    assert "default-cluster-name" in found[names[0]]
    assert {"duplicate-instance"} <= found[names[1]] and "duplicate-instance" in found[names[2]]
    assert "Install-Pass-1" not in proc.stdout + target.read_text()  # the shipped password


def test_working_cluster_discovered_and_healthy(working: Cluster) -> None:
    """discover on the working cluster: a plan that validates, a check with nothing to change,
    a doctor with nothing found, and no secret anywhere in plan or report."""
    proc, target = discover(working, "found.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = target.read_text() + proc.stdout + proc.stderr
    for form in forms(PASSWORD):
        assert form not in text, form
    plan = load_plan(target, env={"OMW_DB_PASSWORD": PASSWORD})
    assert plan.cluster.name == "lab" and [n.name for n in plan.om_nodes] == ["n1", "n2", "n3"]
    assert plan.storage.path == "/opt/omdata" and plan.database.host == "198.18.0.10"
    assert yaml.safe_load(target.read_text())["database"]["password"] == "${OMW_DB_PASSWORD}"
    check = omw("check", str(target), "--json", "--state", str(working.tmp / "found-state"))
    summary = json.loads(check.stdout)["summary"]
    bad = [r for r in json.loads(check.stdout)["results"] if r["status"] not in ("ok", "skipped")]
    assert summary["needs_change"] == 0 and summary["failed"] == 0, bad
    doc = working.doctor()
    assert causes(doc) == {}, [r["detail"] for r in doc["results"] if r["status"] != "ok"]
    rows = {row["node"]: row for row in doc["matrix"]}
    assert set(rows) == {"n1", "n2", "n3"}
    assert all(r["hazelcast_version"] == "5.7.0" and r["om_version"] == "9.1.0"
               and r["url_answer"] == "200" and len(r["members_seen"]) == 3
               and any(f.startswith("-Dopenjpa.serialization.class.whitelist")
                       for f in r["live_flags"]) for r in rows.values()), rows


# -- the fault catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Break the working cluster on n2 one way; `code` is what doctor must name; fix does
    what the finding says (through `apply` where it says apply can)."""

    name: str
    code: str
    brk: Callable[[Cluster], None]
    fix: Callable[[Cluster, dict], None]
    by_apply: bool = False


def apply_nodes(c: Cluster, _doc: dict) -> None:
    c.apply("nodes")


def restart(c: Cluster, _doc: dict) -> None:
    faults.restart_om(c.lab, c.lab.node(FAULTY))


def node_run(script: str) -> Callable[[Cluster, dict], None]:
    return lambda c, _doc: c.lab.node(FAULTY).run(script, check=True) and None


def add_bridge(c: Cluster) -> None:
    c.lab.node(FAULTY).run("ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev "
                           "docker0 && ip link set docker0 up", check=True)
    edit(c.lab, HZ, sub(r"<interface>198\.18\.0\.\*</interface>", "<interface>*.*.*.*</interface>"))


def fix_bridge(c: Cluster, doc: dict) -> None:
    apply_nodes(c, doc)
    c.lab.node(FAULTY).run("ip link del docker0", check=True)


def fix_db_url(c: Cluster, _doc: dict) -> None:
    services_ok = services.mariadb_pid(c.lab.db) is not None
    assert services_ok
    c.apply("database")


def fix_kuid(c: Cluster, _doc: dict) -> None:
    edit(c.lab, PROPERTIES, sub(r"kurento\.kuid=.*", f"kurento.kuid={uuid.uuid4()}"))


def fix_kms(c: Cluster, _doc: dict) -> None:
    edit(c.lab, PROPERTIES, sub(r"kurento\.ws\.url=.*", "kurento.ws.url=ws://127.0.0.1:8888/kurento"))


def copy_kuid(c: Cluster) -> None:
    n1 = c.lab.node("n1").run(["cat", PROPERTIES], check=True).stdout
    kuid = re.search(r"kurento\.kuid=(.*)", n1).group(1)  # type: ignore[union-attr]
    edit(c.lab, PROPERTIES, sub(r"kurento\.kuid=.*", f"kurento.kuid={kuid}"))


def fix_version(c: Cluster, doc: dict) -> None:
    wanted = cause_data(doc, "hazelcast-version")["wanted"]
    c.lab.node(FAULTY).run(f"rm {LIB}/hazelcast-*.jar && touch {LIB}/hazelcast-{wanted}.jar",
                           check=True)


FAULTS = [
    Fault("every join method off", "join-disabled",
          lambda c: edit(c.lab, HZ, sub(r'<multicast enabled="true"',
                                        '<multicast enabled="false"')),
          apply_nodes, by_apply=True),
    Fault("the documentation's sample interface", "no-interface",
          lambda c: edit(c.lab, HZ, sub(r"<interface>198\.18\.0\.\*</interface>",
                                        "<interface>192.168.1.*</interface>")),
          apply_nodes, by_apply=True),
    Fault("an interface pattern matching Docker's bridge", "interface-bridge", add_bridge,
          fix_bridge, by_apply=True),
    Fault("two nodes with one instance-name", "duplicate-instance",
          lambda c: edit(c.lab, HZ, sub(r"<instance-name>n2</instance-name>",
                                        "<instance-name>n1</instance-name>")),
          apply_nodes, by_apply=True),
    Fault("name attribute differs from instance-name", "name-attribute",
          lambda c: edit(c.lab, HZ, sub(r'<attribute name="name">n2</attribute>',
                                        '<attribute name="name">om-two</attribute>')),
          apply_nodes, by_apply=True),
    Fault("another cluster name (Hazelcast's default dev)", "cluster-name",
          lambda c: edit(c.lab, HZ, sub(r"\s*<cluster-name>[^<]*</cluster-name>", "")),
          apply_nodes, by_apply=True),
    Fault("server.url naming another node", "server-url-other-node",
          lambda c: edit(c.lab, HZ, sub(r"http://198\.18\.0\.12:5080", "http://198.18.0.11:5080")),
          apply_nodes, by_apply=True),
    Fault("a stray hazelcast.xml where OM starts", "stray-hazelcast-xml",
          lambda c: c.lab.node(FAULTY).run(f"cp {HZ} /opt/om/hazelcast.xml", check=True) and None,
          node_run("rm /opt/om/hazelcast.xml")),
    Fault("-Dhazelcast.config naming another file", "hazelcast-config-override",
          lambda c: edit(c.lab, DROPIN, sub(r"-DDATA_DIR=", "-Dhazelcast.config=/etc/hz.xml "
                                                           "-DDATA_DIR=")),
          lambda c, _d: edit(c.lab, DROPIN, sub(r"-Dhazelcast\.config=/etc/hz\.xml ", ""))),
    Fault("a Hazelcast jar of another minor version", "hazelcast-version",
          lambda c: c.lab.node(FAULTY).run(f"mv {LIB}/hazelcast-5.7.0.jar "
                                           f"{LIB}/hazelcast-5.6.0.jar", check=True) and None,
          fix_version),
    Fault("another database in persistence.xml", "db-url",
          lambda c: edit(c.lab, PERSISTENCE, sub(r"jdbc:mysql://198\.18\.0\.10",
                                                 "jdbc:mysql://198.18.0.99")),
          fix_db_url, by_apply=True),
    Fault("\"DB seems to be down\" in the log", "db-down",
          lambda c: c.lab.node(FAULTY).run(
              f"echo '2026-12-01 12:00:00.000 [main] ERROR o.a.o.w.a.Application - DB seems to be "
              f"down' >> {LOG}", check=True) and None,
          restart),
    Fault("serialization lists in the file, not in the running JVM", "live-differs",
          lambda c: faults.restart_om(c.lab, c.lab.node(FAULTY), java_opts=""), restart),
    Fault("two nodes sharing one kurento.kuid", "kuid-shared", copy_kuid, fix_kuid),
    Fault("two nodes sharing one Kurento server", "kurento-shared",
          lambda c: edit(c.lab, PROPERTIES, sub(r"kurento\.ws\.url=.*",
                                                "kurento.ws.url=ws://198.18.0.11:8888/kurento")),
          fix_kms),
    Fault("TCP 5701 blocked", "port-blocked",
          lambda c: c.lab.node(FAULTY).run(
              "nft add table inet omwfault && nft add chain inet omwfault in "
              "'{ type filter hook input priority 0; }' && "
              "nft add rule inet omwfault in tcp dport 5701 drop", check=True) and None,
          node_run("nft delete table inet omwfault")),
    Fault("TCP 5636 (OpenJPA remote commits) blocked", "openjpa-port-blocked",
          lambda c: c.lab.node(FAULTY).run(
              "nft add table inet omwfault && nft add chain inet omwfault in "
              "'{ type filter hook input priority 0; }' && "
              "nft add rule inet omwfault in tcp dport 5636 drop", check=True) and None,
          node_run("nft delete table inet omwfault")),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.code for f in FAULTS])
def test_fault(working: Cluster, fault: Fault) -> None:
    fault.brk(working)
    doc = working.doctor()
    found = causes(doc)
    assert fault.code in found.get(FAULTY, set()), (fault.name, found)
    assert set(found) == {FAULTY}, f"{fault.name}: false findings elsewhere: {found}"
    cause = cause_data(doc, fault.code)
    assert (cause["apply_section"] is not None) == fault.by_apply, cause
    flagged = [r for r in doc["results"] if r["node"] == FAULTY and r["status"] != "ok"]
    assert all(r["remedy"] and r["evidence"] for r in flagged), flagged
    fault.fix(working, doc)
    after = causes(working.doctor())
    assert after == {}, f"{fault.name}: the fix did not clear it: {after}"


# -- the support bundle ---------------------------------------------------------------------------


def forms(secret: str) -> set[str]:
    """Every encoding a secret takes in the files: plain, XML-escaped, URL-encoded."""
    return {secret, html.escape(secret, quote=True), html.escape(secret, quote=False),
            html.escape(secret).replace("&#x27;", "&apos;"), urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret)}


KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
       "\nAAAAC3NzaC1lZDI1NTE5AAAAIPrivateKeyBody\n-----END OPENSSH PRIVATE KEY-----")


def test_bundle_redacts_every_secret(working: Cluster) -> None:
    lab = working.lab
    node = lab.node("n1")
    quoted = urllib.parse.quote(PASSWORD, safe="")
    node.run(f"cat >> {LOG}", check=True, input=(
        f"2026-12-01 12:00:01 INFO callback https://om:{quoted}@198.18.0.11/x?token={TOKEN}\n"
        f"2026-12-01 12:00:02 INFO admin login with {ADMIN_PASSWORD}\n{KEY}\n"))
    plan = working.tmp / "bundle-plan.yaml"
    lab.write_plan(plan, database={"admin_user": "root",
                                   "admin_password": "${OMW_ADMIN_PASSWORD}"})
    out = working.tmp / "support.tar.gz"
    proc = omw("bundle", str(plan), "-o", str(out), "--state", str(working.tmp / "bstate"),
               env={"OMW_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with tarfile.open(out) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                   for m in tar.getmembers() if m.isfile()}
    for name in ("check.json", "doctor.json", "plan.yaml", "nodes/n1/jvm-cmdline.txt",
                 "nodes/n1/log-tail.txt", "nodes/n2/health.txt",
                 f"nodes/n3/files/{PERSISTENCE.strip('/').replace('/', '%')}"):
        assert name in members, sorted(members)
    assert "HazelcastMemberStarter" in members["nodes/n1/jvm-cmdline.txt"]
    assert "200" in members["nodes/n2/health.txt"]
    persistence = members[f"nodes/n3/files/{PERSISTENCE.strip('/').replace('/', '%')}"]
    assert "Password=********" in persistence
    whole = "\n".join(members.values())
    for secret in (PASSWORD, ADMIN_PASSWORD, TOKEN, "PrivateKeyBody"):
        for form in forms(secret):
            assert form not in whole, (secret, form)
    assert PASSWORD not in proc.stdout + proc.stderr


# -- the TUI's "Troubleshoot an existing cluster" -------------------------------------------------


async def test_tui_troubleshoot_discovers_and_diagnoses(working: Cluster, tmp_path: Path) -> None:
    """Welcome > Troubleshoot: discover and the doctor run for real on the working cluster;
    the matrix shows every node, no finding, and the saved plan opens in the wizard."""
    import asyncio

    from textual.widgets import Checkbox, DataTable, Input

    from omwizard.tui.app import make_app
    from omwizard.tui.screens.doctor import DoctorScreen

    lab = working.lab
    app = make_app(None, env={}, state_base=tmp_path / "states")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DoctorScreen)
        screen.query_one("#d-hosts", Input).value = " ".join(
            n.address for n in lab.nodes.values())
        screen.query_one("#d-identity", Input).value = str(lab.identity)
        screen.query_one("#d-known", Input).value = str(lab.known_hosts)
        assert not screen.query_one("#d-accept", Checkbox).value
        screen.action_run()
        for _ in range(1200):
            await asyncio.sleep(0.1)
            if screen.results:
                break
        matrix = screen.query_one("#d-matrix", DataTable)
        assert len(matrix.columns) == 4, screen.query_one("#d-status").render()
        assert screen.query_one("#d-findings", DataTable).row_count == 0
        screen.query_one("#d-save", Input).value = str(tmp_path / "found.yaml")
        screen.action_save()
        await pilot.pause()
        assert (tmp_path / "found.yaml").is_file()
        assert PASSWORD not in (tmp_path / "found.yaml").read_text()
