"""The doctor's probe, rows and judgements on data: the real OpenMeetings files from ../shared,
the probe run by a local shell on a tree laid out from them, and captured command outputs."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from omwizard.configs import hazelcast as hzconf
from omwizard.facts import doctor as dx
from omwizard.facts.base import StepData
from omwizard.lab import shared_dir

FIXTURES = shared_dir() / "fixtures" / "openmeetings"
CLASSES = "webapps/openmeetings/WEB-INF/classes"


def om_tree(tmp: Path, version: str = "9.1.0", log: str = "") -> Path:
    home = tmp / "om"
    (home / CLASSES / "META-INF").mkdir(parents=True)
    (home / "webapps/openmeetings/WEB-INF/lib").mkdir(parents=True)
    (home / "logs").mkdir()
    shutil.copy(FIXTURES / version / "hazelcast.xml", home / CLASSES / "hazelcast.xml")
    shutil.copy(FIXTURES / "9.1.0" / "persistence.xml",
                home / CLASSES / "META-INF" / "persistence.xml")
    for jar in (f"openmeetings-web-{version}.jar", "hazelcast-5.7.0.jar"):
        (home / "webapps/openmeetings/WEB-INF/lib" / jar).touch()
    (home / "logs" / "openmeetings.log").write_text(log)
    return home


def snapshot_of(home: Path) -> dx.Snapshot:
    out = subprocess.run(["sh", "-c", dx.snapshot_command(str(home))], capture_output=True,
                         text=True, check=True)
    return dx.parse_snapshot(out.stdout)


def test_probe_reads_the_shipped_install(tmp_path: Path) -> None:
    home = om_tree(tmp_path, log="x\nNo join method is enabled! Starting standalone.\n")
    (home / "hazelcast.xml").write_text("<hazelcast/>")  # a stray one where Tomcat starts
    snap = snapshot_of(home)
    view = dx.node_view("n1", "198.18.0.11", snap, str(home))
    assert view.installed and view.om_version == "9.1.0"
    assert (view.hazelcast_version, view.hazelcast_source) == ("5.7.0", "lib")
    assert view.cluster_name == "dev" and view.join == ()
    assert view.strays == (str(home / "hazelcast.xml"),)
    assert view.db_url is not None and "Install-Pass-1" not in repr(view)
    codes = [p.cause.code for p in dx.judge_join(view)]
    assert codes == ["join-disabled"]
    assert dx.judge_join(view)[0].evidence == (
        "log: No join method is enabled! Starting standalone.",)
    assert [p.cause.code for p in dx.judge_overrides(view, str(home))] == ["stray-hazelcast-xml"]


def test_no_install(tmp_path: Path) -> None:
    view = dx.node_view("n1", "198.18.0.11", snapshot_of(tmp_path / "none"), str(tmp_path))
    assert not view.installed


@pytest.mark.parametrize("version", ["4.0.11", "5.0.0", "6.3.0", "7.0.0", "8.1.0", "9.1.0"])
def test_shipped_files_of_every_release_join_nothing(tmp_path: Path, version: str) -> None:
    home = om_tree(tmp_path, version)
    view = dx.node_view("n1", "198.18.0.11", snapshot_of(home), str(home))
    assert [p.cause.code for p in dx.judge_join(view)] == ["join-disabled"], version


LISTS = ("-Dopenjpa.serialization.class.blacklist=*",
         "-Dopenjpa.serialization.class.whitelist=[B,java.util")


def view(name: str = "n1", address: str = "198.18.0.11", **kw: object) -> dx.NodeView:
    base = dict(installed=True, om_version="9.1.0", hazelcast_version="5.7.0",
                hazelcast_source="lib", instance_name=name, name_attribute=name,
                server_url=f"http://{address}:5080/openmeetings", cluster_name="omwizard-lab",
                join=("multicast",), interfaces_enabled=True, interfaces=("198.18.0.*",),
                db_url="jdbc:mysql://198.18.0.10:3306/openmeetings", running=True, pid=7,
                data_dir_live="/opt/omdata", data_dir_configured="/opt/omdata",
                live_flags=(*LISTS, "-DDATA_DIR=/opt/omdata"),
                configured_flags=(*LISTS, "-DDATA_DIR=/opt/omdata"),
                kurento_url="ws://127.0.0.1:8888/kurento", kuid=f"kuid-{name}",
                members_seen=("198.18.0.11", "198.18.0.12", "198.18.0.13"),
                addresses=(("lo", "127.0.0.1", ""), ("eth0", address, "veth")))
    base.update(kw)
    return dx.NodeView(name, address, **base)  # type: ignore[arg-type]


def three(**n2: object) -> dict[str, dx.NodeView]:
    return {"n1": view(), "n2": view("n2", "198.18.0.12", **n2),
            "n3": view("n3", "198.18.0.13")}


def codes(problems: dx.Problems) -> dict[str, set[str]]:
    return {n: {p.cause.code for p in ps} for n, ps in problems.items() if ps}


def test_healthy_cluster_has_no_problem() -> None:
    views = three()
    for judge in (dx.judge_versions, dx.judge_identity, dx.judge_cluster_name,
                  dx.judge_database, dx.judge_data_dir, dx.judge_kurento, dx.judge_members):
        assert codes(judge(views)) == {}, judge.__name__
    for v in views.values():
        assert not dx.judge_interfaces(v) and not dx.judge_join(v)
        assert not dx.judge_live_jvm(v, "/opt/omdata")


@pytest.mark.parametrize(("n2", "judge", "code"), [
    ({"hazelcast_version": "5.6.0"}, dx.judge_versions, "hazelcast-version"),
    ({"om_version": "9.0.0"}, dx.judge_versions, "om-version"),
    ({"instance_name": "n1", "name_attribute": "n1"}, dx.judge_identity, "duplicate-instance"),
    ({"name_attribute": "other"}, dx.judge_identity, "name-attribute"),
    ({"instance_name": None}, dx.judge_identity, "no-instance-name"),
    ({"cluster_name": "dev"}, dx.judge_cluster_name, "cluster-name"),
    ({"db_url": "jdbc:mysql://198.18.0.99/openmeetings"}, dx.judge_database, "db-url"),
    ({"log_causes": (("db-down", "ERROR DB seems to be down"),)}, dx.judge_database,
     "db-down"),
    ({"data_dir_live": "/srv/other"}, dx.judge_data_dir, "data-dir-differs"),
    ({"kuid": "kuid-n1"}, dx.judge_kurento, "kuid-shared"),
    ({"kurento_url": "ws://198.18.0.11:8888/kurento"}, dx.judge_kurento, "kurento-shared"),
    ({"members_seen": ("198.18.0.12",)}, dx.judge_members, "members-missing"),
    ({"standalone": True}, dx.judge_members, "standalone"),
])
def test_one_fault_names_that_node_only(n2: dict, judge, code: str) -> None:  # noqa: ANN001
    assert codes(judge(three(**n2))) == {"n2": {code}}


def test_members_missing_when_another_node_is_alone() -> None:
    views = three()
    views["n1"] = view(members_seen=("198.18.0.11", "198.18.0.13"))
    views["n3"] = view("n3", "198.18.0.13", members_seen=("198.18.0.11", "198.18.0.13"))
    views["n2"] = view("n2", "198.18.0.12", members_seen=("198.18.0.12",))
    assert set(codes(dx.judge_members(views))) == {"n1", "n2", "n3"}


def test_default_cluster_name_everywhere() -> None:
    views = {n: dataclasses.replace(v, cluster_name="dev") for n, v in three().items()}
    assert codes(dx.judge_cluster_name(views)) == {n: {"default-cluster-name"} for n in views}


def test_tie_blames_no_one_by_chance() -> None:
    assert dx.minority({"a": "1", "b": "2"}) == (None, ["a", "b"])
    assert dx.minority({"a": "1", "b": "1", "c": "2"}) == ("1", ["c"])
    assert dx.minority({"a": None}) == (None, [])


@pytest.mark.parametrize(("pattern", "ip", "ok"), [
    ("10.3.16.*", "10.3.16.5", True), ("10.3.10.4-18", "10.3.10.18", True),
    ("10.3.10.4-18", "10.3.10.19", False), ("192.168.1.*", "198.18.0.12", False),
    ("*.*.*.*", "172.17.0.1", True), ("fe80::*", "198.18.0.12", False),
])
def test_interface_patterns_as_hazelcast(pattern: str, ip: str, ok: bool) -> None:
    assert dx.interface_matches(pattern, ip) is ok


def test_interfaces() -> None:
    docker = (("lo", "127.0.0.1", ""), ("eth0", "198.18.0.12", "veth"),
              ("docker0", "172.17.0.1", "bridge"))
    sample = view("n2", "198.18.0.12", interfaces=("192.168.1.*",))
    assert [p.cause.code for p in dx.judge_interfaces(sample)] == ["no-interface"]
    wide = view("n2", "198.18.0.12", interfaces=("*.*.*.*",), addresses=docker)
    assert [p.cause.code for p in dx.judge_interfaces(wide)] == ["interface-bridge"]
    off = view("n2", "198.18.0.12", interfaces_enabled=False, addresses=docker)
    assert [p.cause.code for p in dx.judge_interfaces(off)] == ["interface-unpinned"]
    six = view("n2", "198.18.0.12", interfaces=("198.18.0.*", "fd00::*"))
    assert [p.cause.code for p in dx.judge_interfaces(six)] == ["interface-ipv6"]


def test_links_and_addresses_from_ip_output() -> None:
    links = ("1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT\\    "
             "link/loopback 00:00:00:00:00:00\n"
             "2: eth0@if9: <BROADCAST,UP> mtu 1500 \\    link/ether 2e:aa brd ff \\    veth "
             "addrgenmode eui64\n"
             "3: docker0: <NO-CARRIER,BROADCAST,UP> mtu 1500 \\    link/ether 02:42 \\    "
             "bridge forward_delay 1500\n")
    addrs = ("1: lo    inet 127.0.0.1/8 scope host lo\n"
             "2: eth0    inet 198.18.0.12/24 scope global eth0\n"
             "3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\n"
             "2: eth0    inet6 fe80::1/64 scope link\n")
    kinds = dx.parse_links(links)
    assert kinds == {"lo": "", "eth0": "veth", "docker0": "bridge"}
    got = dx.parse_addresses(addrs, kinds)
    assert dx.Address("docker0", "172.17.0.1", "bridge") in got and got[-1].v6


def test_live_jvm() -> None:
    lists = LISTS
    stale = view(configured_flags=lists, live_flags=())
    assert [p.cause.code for p in dx.judge_live_jvm(stale)] == ["live-differs", "live-differs"]
    assert [p.cause.code for p in dx.judge_live_jvm(view(running=False))] == ["not-running"]
    bare = view(configured_flags=(), live_flags=())
    assert [p.cause.code for p in dx.judge_live_jvm(bare)] == ["serialization-lists"]
    moved = view(live_flags=("-DDATA_DIR=/srv/x", *lists), configured_flags=lists,
                 data_dir_live="/srv/x")
    assert "data-dir" in [p.cause.code for p in dx.judge_live_jvm(moved, "/opt/omdata")]


def test_hazelcast_config_override_but_not_oms_own() -> None:
    own = "-Dhazelcast.config=/opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
    assert dx.judge_overrides(view(live_flags=(own,)), "/opt/om") == []
    other = view(configured_flags=("-Dhazelcast.config=/etc/hz.xml",))
    assert [p.cause.code for p in dx.judge_overrides(other, "/opt/om")] == [
        "hazelcast-config-override"]


def test_server_url() -> None:
    others = {"n1": {"198.18.0.11"}, "n2": {"198.18.0.12"}}
    wrong = view("n2", "198.18.0.12", server_url="http://198.18.0.11:5080/openmeetings")
    assert [p.cause.code for p in dx.judge_server_url(wrong, others)] == [
        "server-url-other-node"]
    silent = view(url_answer="no answer: refused")
    assert [p.cause.code for p in dx.judge_server_url(silent, others)] == [
        "server-url-no-answer"]
    cert = view(server_url="https://om1.example.org/openmeetings", url_answer="200",
                cert_names=("om2.example.org",))
    assert [p.cause.code for p in dx.judge_server_url(cert, others)] == [
        "server-url-certificate"]
    wild = dataclasses.replace(cert, cert_names=("*.example.org",))
    assert dx.judge_server_url(wild, others) == []
    assert [p.cause.code for p in dx.judge_server_url(view(server_url=None), others)] == [
        "no-server-url"]
    shipped = view(server_url="https://127.0.0.1:5443/openmeetings")
    assert [p.cause.code for p in dx.judge_server_url(shipped, others)] == [
        "server-url-loopback"]


def test_cert_names_from_openssl() -> None:
    out = ("subject=CN = om1.example.org\nX509v3 Subject Alternative Name: \n"
           "    DNS:om1.example.org, DNS:www.example.org, IP Address:10.1.1.1\n")
    assert dx.parse_cert_names(out) == ("om1.example.org", "www.example.org", "10.1.1.1")


def test_ports() -> None:
    addresses = {"n1": "198.18.0.11", "n2": "198.18.0.12", "n3": "198.18.0.13"}
    running = dict.fromkeys(addresses, True)
    seen = {"n1": dx.parse_port_probe("open 198.18.0.13\nfiltered 198.18.0.12\n"),
            "n3": dx.parse_port_probe("open 198.18.0.11\nfiltered 198.18.0.12\n"),
            "n2": dx.parse_port_probe("open 198.18.0.11\nopen 198.18.0.13\n")}
    assert codes(dx.judge_ports(seen, addresses, running)) == {"n2": {"port-blocked"}}
    seen["n1"]["198.18.0.12"] = seen["n3"]["198.18.0.12"] = "refused"
    assert codes(dx.judge_ports(seen, addresses, running)) == {"n2": {"port-closed"}}


def test_port_probe_runs_in_a_shell() -> None:
    out = subprocess.run(["bash", "-c", dx.port_probe(["127.0.0.1"], port=1, seconds=2)],
                         capture_output=True, text=True, check=True).stdout
    assert dx.parse_port_probe(out) == {"127.0.0.1": "refused"}


def test_properties_and_flags() -> None:
    props = dx.parse_properties("# c\nkurento.ws.url=ws\\://127.0.0.1:8888/kurento\n"
                                "kurento.kuid = abc\n")
    assert props == {"kurento.ws.url": "ws://127.0.0.1:8888/kurento", "kurento.kuid": "abc"}
    argv = ["java", "-DDATA_DIR=/a", "-cp", "/x/hazelcast-5.5.0.jar:/y.jar", "-DDATA_DIR=/b"]
    assert dx.java_flags(argv) == {"-DDATA_DIR": "-DDATA_DIR=/b"}
    assert dx.hazelcast_from_argv(argv) == "5.5.0"


def test_diagnosis_round_trips_as_json() -> None:
    cause = dx.Cause("join-disabled", "n2", None, None, "nodes")
    data = dx.Diagnosis((cause,), view("n2", "198.18.0.12"))
    again = StepData.from_json(data.to_json())
    assert again == data and isinstance(again, dx.Diagnosis) and again.codes == ("join-disabled",)


def test_inspect_of_a_clustered_file_is_what_the_row_shows() -> None:
    text = (FIXTURES / "9.1.0" / "hazelcast.xml").read_text()
    settings = hzconf.HazelcastSettings("n2", "http://198.18.0.12:5080/openmeetings",
                                        "omwizard-lab", "multicast", interfaces=("198.18.0.*",))
    snap = dx.Snapshot(files={"/opt/om/" + CLASSES + "/hazelcast.xml":
                              hzconf.transform(text, settings)})
    row = dx.node_view("n2", "198.18.0.12", snap, "/opt/om")
    assert (row.instance_name, row.name_attribute, row.cluster_name, row.join, row.interfaces) == (
        "n2", "n2", "omwizard-lab", ("multicast",), ("198.18.0.*",))
