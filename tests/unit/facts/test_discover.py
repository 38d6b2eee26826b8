"""discover's pure part on data: the plan built from what the real OpenMeetings files say."""

from __future__ import annotations

import dataclasses

import yaml

from omwizard.configs import hazelcast as hzconf
from omwizard.engine.discover import finish
from omwizard.facts import discover as fd
from omwizard.facts.doctor import Address, Process, Snapshot
from omwizard.lab import shared_dir
from omwizard.plan.model import plan_from_dict

FIXTURES = shared_dir() / "fixtures" / "openmeetings" / "9.1.0"
CLASSES = "/opt/om/webapps/openmeetings/WEB-INF/classes"
SSH = {"user": "root", "port": 22, "known_hosts": "/tmp/kh", "host_keys": "strict"}
DROPIN = ("[Service]\nEnvironment='JAVA_OPTS=-Dopenjpa.serialization.class.blacklist=* "
          "-DDATA_DIR=/opt/omdata'\n")


def seen(name: str, address: str, *, clustered: bool = True, data_dir: str = "/opt/omdata",
         db_host: str = "10.9.0.5") -> fd.Seen:
    hz = (FIXTURES / "hazelcast.xml").read_text()
    if clustered:
        hz = hzconf.transform(hz, hzconf.HazelcastSettings(
            name, f"https://{name}.example.org/openmeetings", "omwizard-prod", "multicast",
            interfaces=("10.9.0.*",)))
    persistence = (FIXTURES / "persistence.xml").read_text().replace("localhost", db_host)
    files = {f"{CLASSES}/hazelcast.xml": hz, f"{CLASSES}/META-INF/persistence.xml": persistence}
    if clustered:
        files["/etc/systemd/system/openmeetings.service"] = \
            (FIXTURES / "openmeetings.service").read_text()
        files["/etc/systemd/system/openmeetings.service.d/omwizard.conf"] = \
            DROPIN.replace("/opt/omdata", data_dir)
    snap = Snapshot(files, ("openmeetings-web-9.1.0.jar",),
                    (Process(10, "/opt/om", ("java", f"-DDATA_DIR={data_dir}")),),
                    (), (Address("eth0", address, "veth"),), None, "", name)
    return fd.Seen(name, address, "/opt/om", "unit", snap, "Europe/Berlin")


def test_clustered_nodes_make_the_plan_they_are() -> None:
    hosts = [seen("om1", "10.9.0.1"), seen("om2", "10.9.0.2"), seen("om3", "10.9.0.3")]
    found = fd.build_plan(hosts, SSH)
    plan = plan_from_dict(found.plan, env={})
    assert plan.cluster.name == "prod" and plan.cluster.timezone == "Europe/Berlin"
    assert [n.name for n in plan.nodes] == ["om1", "om2", "om3"]
    assert plan.node("om2").server_url == "https://om2.example.org/openmeetings"
    assert plan.node("om2").interface == "eth0"
    assert plan.database.host == "10.9.0.5" and plan.database.user == "om"
    assert plan.database.password.ref == "${OMW_DB_PASSWORD}"
    assert plan.storage.path == "/opt/omdata" and plan.network.interfaces == ("10.9.0.*",)
    assert found.disagreements == []
    codes = {m.code for m in found.missing}
    assert codes == {"remote-commit"}, found.missing  # the one piece the files lack


def test_disagreement_takes_the_majority_and_is_reported() -> None:
    hosts = [seen("om1", "10.9.0.1"), seen("om2", "10.9.0.2", data_dir="/srv/local"),
             seen("om3", "10.9.0.3")]
    found = fd.build_plan(hosts, SSH)
    assert found.plan["storage"]["path"] == "/opt/omdata"
    (d,) = [d for d in found.disagreements if d.key == "storage.path"]
    assert d.values["om2"] == "/srv/local" and d.chosen == "/opt/omdata"
    assert ("om2", "data-dir-differs") in {(m.node, m.code) for m in found.missing}


def test_half_configured_names_each_missing_piece_and_no_secret() -> None:
    hosts = [seen("a", "10.9.0.1", clustered=False, db_host="localhost"),
             seen("b", "10.9.0.2", clustered=False, db_host="localhost")]
    hosts = [dataclasses.replace(h, snapshot=dataclasses.replace(
        h.snapshot, processes=())) for h in hosts]
    done = finish(hosts, SSH)
    assert "Install-Pass-1" not in done.text
    assert done.plan.database.host == "localhost"
    found = {(f["node"], f["cause"]) for f in done.report["findings"]}
    first, second = (n.name for n in done.plan.nodes)
    assert first == "server-1"  # the shipped instance-name; the other is named by host
    for node in (first, second):
        for code in ("join-disabled", "no-data-dir", "remote-commit", "database-local",
                     "default-cluster-name"):
            assert (node, code) in found, (node, code)
    assert (second, "duplicate-instance") in found
    assert (first, "server-url-loopback") in found  # the shipped https://127.0.0.1:5443
    assert all(n.server_url is None for n in done.plan.nodes)
    assert yaml.safe_load(done.text)["database"]["password"] == "${OMW_DB_PASSWORD}"


def test_find_home_output() -> None:
    assert fd.parse_home("home unit /opt/openmeetings\n") == ("/opt/openmeetings", "unit")
    assert fd.parse_home("none\n") == (None, None)


def test_a_cluster_name_of_its_own_is_kept() -> None:
    hosts = [seen("om1", "10.9.0.1"), seen("om2", "10.9.0.2")]
    for i, h in enumerate(hosts):
        path = f"{CLASSES}/hazelcast.xml"
        files = {**h.snapshot.files, path: h.snapshot.files[path].replace("omwizard-prod", "acme")}
        hosts[i] = dataclasses.replace(h, snapshot=dataclasses.replace(h.snapshot, files=files))
    found = fd.build_plan(hosts, SSH)
    assert found.plan["cluster"]["name"] == "acme"
    assert found.plan["network"]["cluster_name"] == "acme"  # check keeps it (no rename)
    assert not any(m.code.startswith("cluster-name") for m in found.missing)
