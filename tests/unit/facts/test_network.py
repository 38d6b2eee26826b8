"""The pure parsers and decisions of preflight and network, on outputs seen on real hosts."""

from __future__ import annotations

import pytest
import yaml

from omwizard.configs import netconf
from omwizard.facts.network import (
    LINKS,
    MULTICAST_ROUTE,
    Capture,
    ClockSample,
    PingResult,
    Probe,
    clock_outliers,
    echo_requests,
    ifconfig_multicast,
    interface_for_address,
    listener_for,
    listener_ports,
    multicast_ping_verdicts,
    parse_date,
    parse_link,
    parse_listener_ready,
    parse_ping,
    parse_probe_results,
    parse_routes,
    path_verdict,
    plan_probes,
    route_commands,
    route_probe,
    route_to_net_mask,
    route_verdict,
    split_probe,
    worth_probing,
)
from omwizard.facts.preflight import (
    hazelcast_config_property,
    split_files,
    unit_working_directory,
    working_dir_candidates,
)

IP_ADDR = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever"
    " preferred_lft forever\n"
    "3: eth0    inet 198.18.0.11/24 scope global eth0\\       valid_lft forever"
    " preferred_lft forever\n"
    "4: ens19    inet 10.1.1.5/24 brd 10.1.1.255 scope global ens19:1\\       valid_lft"
    " forever\n"
)


def test_interface_for_address():
    assert interface_for_address(IP_ADDR, "198.18.0.11") == "eth0"
    assert interface_for_address(IP_ADDR, "10.1.1.5") == "ens19"
    assert interface_for_address(IP_ADDR, "198.18.0.1") is None


def test_parse_link_flags_and_state():
    up = parse_link(
        "3: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue "
        "state UP mode DEFAULT group default qlen 1000\\    link/ether ee:e2:96:18:c8:61"
    )
    assert up is not None and up.name == "eth0" and up.multicast and up.up and up.state == "UP"
    down = parse_link(
        "3: eth0@eth1: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN mode DEFAULT"
    )
    assert down is not None and down.multicast and not down.up and down.state == "DOWN"
    tun = parse_link(
        "5: tun0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UNKNOWN"
    )
    assert tun is not None and not tun.multicast
    assert parse_link('Device "eth9" does not exist.') is None


def test_ifconfig_multicast():
    text = (
        "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n        inet 10.1.1.1\n"
        "lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536\n"
    )
    assert ifconfig_multicast(text, "eth0") is True
    assert ifconfig_multicast(text, "lo") is False
    assert ifconfig_multicast(text, "eth1") is None


def test_route_verdicts():
    want = "224.0.0.0/4"
    ok = route_verdict(parse_routes("224.0.0.0/4 dev eth0 scope link \n"), want, "eth0")
    assert ok.state == "ok" and ok.detail == "224.0.0.0/4 dev eth0"
    other = route_verdict(parse_routes("224.0.0.0/4 dev eth1 scope link"), want, "eth0")
    assert other.state == "elsewhere" and other.other_dev == "eth1"
    missing = route_verdict([], want, "eth0", "RTNETLINK answers: Network is unreachable")
    assert missing.state == "missing" and "Network is unreachable" in missing.detail
    via_default = route_verdict(
        [], want, "eth0", "multicast 224.0.0.0 dev ens3 src 10.0.0.4 uid 0 \n    cache <mc>"
    )
    assert via_default.state == "missing" and "via ens3" in via_default.detail
    down = route_verdict(parse_routes("224.0.0.0/4 dev eth0 scope link linkdown"), want, "eth0")
    assert down.state == "ok" and "link down" in down.detail


def test_route_commands_follow_the_documentation():
    assert route_to_net_mask("224.0.0.0/4") == ("224.0.0.0", "240.0.0.0")
    add, undo = route_commands("224.0.0.0/4", "eth0", net_tools=True)
    assert " ".join(add) == "route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0"
    assert " ".join(undo) == "route -v delete -net 224.0.0.0 netmask 240.0.0.0 dev eth0"
    add, undo = route_commands("224.0.0.0/4", "eth0", net_tools=False)
    assert add == ["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"]
    assert undo == ["ip", "route", "del", "224.0.0.0/4", "dev", "eth0"]


def test_split_probe():
    parts = split_probe("@@have-route\n@@show\n224.0.0.0/4 dev eth0 scope link\n@@get\nx\ny")
    assert parts == {"have-route": "", "show": "224.0.0.0/4 dev eth0 scope link", "get": "x\ny"}


PING_SENT = """PING 224.0.0.0 (224.0.0.0) 56(84) bytes of data.

--- 224.0.0.0 ping statistics ---
2 packets transmitted, 0 received, 100% packet loss, time 1012ms
"""

TCPDUMP = """tcpdump: verbose output suppressed, use -v[v]... for full protocol decode
listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes
10:15:01.112233 IP 198.18.0.11 > 224.0.0.0: ICMP echo request, id 4242, seq 1, length 64
10:15:02.113344 IP 198.18.0.11 > 224.0.0.0: ICMP echo request, id 4242, seq 2, length 64
2 packets captured
2 packets received by filter
0 packets dropped by kernel
"""


def test_parse_ping():
    assert parse_ping(PING_SENT) == PingResult(2, False, "")
    unreachable = parse_ping("ping: connect: Network is unreachable")
    assert unreachable.transmitted == 0 and unreachable.unreachable
    assert unreachable.error == "ping: connect: Network is unreachable"


def test_tcpdump_lines():
    assert echo_requests(TCPDUMP, "224.0.0.0") == ["198.18.0.11", "198.18.0.11"]
    assert echo_requests(TCPDUMP, "239.1.1.1") == []


def test_multicast_ping_verdicts():
    sent = parse_ping(PING_SENT)
    caps = {
        "n1": Capture("n1", ("198.18.0.11", "198.18.0.11")),
        "n2": Capture("n2", ("198.18.0.11",)),
        "n3": Capture("n3", ()),
        "n4": Capture("n4", None, "tcpdump: eth0: No such device exists"),
    }
    ifaces = dict.fromkeys(caps, "eth0")
    v = multicast_ping_verdicts("n1", "198.18.0.11", "224.0.0.0", sent, caps, ifaces)
    assert v["n1"].ok and "sent 2 echo requests" in v["n1"].detail
    assert v["n2"].ok and "received 1 echo request(s) from n1" in v["n2"].detail
    assert not v["n3"].ok and "received none" in v["n3"].detail and "IGMP" in v["n3"].remedy
    assert not v["n4"].ok and "No such device" in v["n4"].detail
    # the sender's packets left through another interface: its own capture stays empty
    wrong = multicast_ping_verdicts(
        "n1", "198.18.0.11", "224.0.0.0", sent, {"n1": Capture("n1", ())}, {"n1": "eth0"}
    )
    assert not wrong["n1"].ok and "none left through eth0" in wrong["n1"].detail
    # no route on the sender: nobody is tested, the sender says why
    none = parse_ping("ping: connect: Network is unreachable")
    v = multicast_ping_verdicts(
        "n1",
        "198.18.0.11",
        "224.0.0.0",
        none,
        {"n1": Capture("n1", ()), "n2": Capture("n2", ())},
        ifaces,
    )
    assert "Network is unreachable" in v["n1"].detail and "not tested" in v["n2"].detail


def sample(node: str, offset: float, rtt: float = 0.02) -> ClockSample:
    return ClockSample(node, 1000.0, 1000.0 + rtt / 2 + offset, 1000.0 + rtt)


def test_clock_outliers():
    assert parse_date("1718000000.123456789\n") == 1718000000.123456789
    assert parse_date("date: invalid") is None
    assert sample("a", 1.5).offset == 1.5
    agree = [sample("a", 0.1), sample("b", 1.9), sample("c", -0.05)]
    assert clock_outliers(agree)[0] == set()
    skewed = [sample("a", 0.0), sample("b", 0.3), sample("c", 7.0)]
    outliers, reference = clock_outliers(skewed)
    assert outliers == {"c"} and abs(reference - 0.3) < 1e-9
    # 2.5 s apart but the round trips (1 s each) leave it possible they agree: not flagged
    assert clock_outliers([sample("a", 0.0, rtt=1.0), sample("b", 2.5, rtt=1.0)])[0] == set()


def test_plan_probes_cover_every_pair_and_the_database():
    probes = plan_probes([("n1", "10.0.0.1"), ("n2", "10.0.0.2")], ("db", "10.0.0.9", 3306), 54327)
    keys = {(p.src, p.dst_node, p.proto, p.port) for p in probes}
    assert keys == {
        ("n1", "n2", "tcp", 5701),
        ("n1", "n2", "tcp", 5636),
        ("n1", "n2", "udp", 54327),
        ("n2", "n1", "tcp", 5701),
        ("n2", "n1", "tcp", 5636),
        ("n2", "n1", "udp", 54327),
        ("n1", "db", "tcp", 3306),
        ("n2", "db", "tcp", 3306),
    }
    assert listener_ports(probes, "n1") == {"tcp": {5701: 1, 5636: 1}, "udp": {54327: 1}}
    assert listener_ports(probes, "db") == {"tcp": {3306: 2}}
    # DB on an OM node: that node does not probe itself; tcp-ip join: no UDP
    probes = plan_probes([("n1", "10.0.0.1"), ("n2", "10.0.0.2")], ("n1", "10.0.0.1", 5432), None)
    assert not [p for p in probes if p.proto == "udp"]
    assert [(p.src, p.port) for p in probes if p.dst_node == "n1" and p.port == 5432] == [
        ("n2", 5432)
    ]


def test_listener_and_prober_lines():
    ready = parse_listener_ready(
        'READY {"bound": {"tcp": [5701], "udp": []}, "busy": {"tcp": [3306], "udp": []}}'
    )
    assert ready == {"bound": {"tcp": [5701], "udp": []}, "busy": {"tcp": [3306], "udp": []}}
    assert parse_listener_ready("Traceback (most recent call last):") is None
    out = (
        '{"proto": "tcp", "host": "10.0.0.2", "port": 5701, "result": "filtered", "error": ""}\n'
        "garbage\n"
        '{"proto": "udp", "host": "10.0.0.2", "port": 54327, "result": "open", "error": ""}\n'
    )
    assert parse_probe_results(out) == {
        "tcp:10.0.0.2:5701": ("filtered", ""),
        "udp:10.0.0.2:54327": ("open", ""),
    }


def test_path_verdicts_tell_refused_from_filtered():
    tcp = Probe("n1", "n2", "10.0.0.2", "tcp", 5701, "Hazelcast")
    udp = Probe("n1", "n2", "10.0.0.2", "udp", 54327, "Hazelcast multicast")
    assert not path_verdict(tcp, "open", "", "ours").blocked
    assert not path_verdict(tcp, "refused", "", "none").blocked  # nothing listens: path open
    assert path_verdict(tcp, "refused", "", "ours").blocked  # our listener was up: REJECT
    assert path_verdict(tcp, "filtered", "", "ours").blocked
    assert path_verdict(tcp, "filtered", "", "busy").blocked  # a real service would answer
    assert not path_verdict(udp, "filtered", "", "busy").blocked  # UDP silence proves nothing
    assert path_verdict(udp, "filtered", "", "ours").blocked
    assert path_verdict(tcp, "error", "No route to host", "ours").blocked
    assert "n1 → n2 TCP 5701 (Hazelcast)" == tcp.describe("n2")


def test_udp_to_a_port_a_service_holds_is_not_probed():
    """A working cluster's multicast port is the member's: UDP silence there proves nothing,
    so the probe's timeout is not waited out (seconds per check), and the report says so."""
    tcp = Probe("n1", "n2", "10.0.0.2", "tcp", 5701, "Hazelcast")
    udp = Probe("n1", "n2", "10.0.0.2", "udp", 54327, "Hazelcast multicast")
    ready = {"n2": {"bound": {"tcp": [], "udp": []}, "busy": {"tcp": [5701], "udp": [54327]}}}
    assert listener_for(udp, ready) == "busy" and listener_for(tcp, ready) == "busy"
    assert listener_for(udp, {"n2": {"bound": {"udp": [54327]}, "busy": {}}}) == "ours"
    assert listener_for(udp, {}) == "none"
    assert not worth_probing(udp, "busy")
    assert worth_probing(tcp, "busy") and worth_probing(udp, "ours") and worth_probing(udp, "none")
    verdict = path_verdict(udp, "not-probed", "", "busy")
    assert not verdict.blocked and "not probed" in verdict.text and not verdict.probed
    assert path_verdict(udp, "filtered", "", "busy").probed


UNIT = """[Unit]
Description=Apache OpenMeetings server
[Service]
Type=forking
WorkingDirectory=/opt/openmeetings
Environment='JAVA_OPTS=-Djava.awt.headless=true'
"""


def test_unit_working_directory_and_overrides():
    files = split_files(
        "@@file /etc/systemd/system/openmeetings.service\n"
        + UNIT
        + "@@file /etc/systemd/system/openmeetings.service.d/override.conf\n"
        "[Service]\nWorkingDirectory=-/srv/om\n"
    )
    assert set(files) == {
        "/etc/systemd/system/openmeetings.service",
        "/etc/systemd/system/openmeetings.service.d/override.conf",
    }
    assert unit_working_directory(files) == "/srv/om"
    assert working_dir_candidates({}, "/opt/om") == ["/opt/om", "/opt/om/bin"]
    only = {"/lib/systemd/system/openmeetings.service": UNIT}
    assert working_dir_candidates(only, "/opt/om") == ["/opt/openmeetings"]
    assert hazelcast_config_property(only) is None
    setenv = {
        "/opt/om/bin/setenv.sh": 'JAVA_OPTS="$JAVA_OPTS -Dhazelcast.config=/etc/hz.xml"\n'
        "# -Dhazelcast.config=/x\n"
    }
    assert (
        hazelcast_config_property(setenv) == "/opt/om/bin/setenv.sh: -Dhazelcast.config=/etc/hz.xml"
    )


INTERFACES = """# interfaces(5)
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet static
    address 10.1.1.1/24
    gateway 10.1.1.254

iface eth0 inet6 auto
"""


def test_ifupdown_route_in_the_stanza():
    out = netconf.ifupdown_add_route(INTERFACES, "eth0", "224.0.0.0/4")
    assert out is not None
    assert (
        "    gateway 10.1.1.254\n    # " + netconf.MARK + "\n"
        "    up ip route replace 224.0.0.0/4 dev eth0\n"
        "    down ip route del 224.0.0.0/4 dev eth0 || true\n\niface eth0 inet6 auto\n"
    ) in out
    assert netconf.ifupdown_route_present(out, "eth0", "224.0.0.0/4")
    assert netconf.ifupdown_add_route(out, "eth0", "224.0.0.0/4") == out  # idempotent
    assert netconf.ifupdown_add_route(INTERFACES, "eth1", "224.0.0.0/4") is None
    assert netconf.ifupdown_add_route(None, "eth0", "224.0.0.0/4") is None
    hand = INTERFACES.replace(
        "gateway 10.1.1.254",
        "gateway 10.1.1.254\n    up route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0",
    )
    assert netconf.ifupdown_route_present(hand, "eth0", "224.0.0.0/4")


def test_ifupdown_stanza_in_a_sourced_file():
    files = {
        "/etc/network/interfaces": (
            "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n"
        ),
        "/etc/network/interfaces.d/eth0": "auto eth0\niface eth0 inet dhcp\n",
    }
    cfg = netconf.detect(files, "eth0", "224.0.0.0/4")
    assert (
        cfg.kind == "ifupdown" and cfg.path == "/etc/network/interfaces.d/eth0" and not cfg.present
    )
    assert (
        netconf.detect(
            {"/etc/network/interfaces": "auto lo\niface lo inet loopback\n"}, "eth0", "224.0.0.0/4"
        ).kind
        == "unknown"
    )


NETPLAN = """network:
  version: 2
  ethernets:
    lan:
      match: {macaddress: "52:54:00:12:34:56"}
      set-name: eth0
      dhcp4: true
"""


def test_netplan_file_uses_the_nodes_id():
    cfg = netconf.detect({"/etc/netplan/50-cloud-init.yaml": NETPLAN}, "eth0", "224.0.0.0/4")
    assert cfg.kind == "netplan" and cfg.path == netconf.NETPLAN_FILE and not cfg.present
    assert cfg.ident == "lan" and cfg.netplan_kind == "ethernets"
    text = netconf.netplan_text(cfg.ident, "224.0.0.0/4", cfg.netplan_kind)
    assert text.startswith("# " + netconf.MARK)
    assert yaml.safe_load(text) == {
        "network": {
            "version": 2,
            "ethernets": {"lan": {"routes": [{"to": "224.0.0.0/4", "scope": "link"}]}},
        }
    }
    both = {"/etc/netplan/50-cloud-init.yaml": NETPLAN, netconf.NETPLAN_FILE: text}
    assert netconf.detect(both, "eth0", "224.0.0.0/4").present
    bond = "network:\n  version: 2\n  bonds:\n    bond0:\n      interfaces: [eth0, eth1]\n"
    assert (
        netconf.detect({"/etc/netplan/01.yaml": bond}, "bond0", "224.0.0.0/4").netplan_kind
        == "bonds"
    )
    # netplan wins over the networkd files it generates
    assert (
        netconf.detect(
            {
                "/etc/netplan/01.yaml": NETPLAN,
                "/etc/systemd/network/10-eth0.network": "[Match]\nName=eth0\n",
            },
            "eth0",
            "224.0.0.0/4",
        ).kind
        == "netplan"
    )


def test_networkd_dropin():
    files = {
        "/etc/systemd/network/10-lan.network": "[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n",
        "/etc/systemd/network/20-wg.network": "[Match]\nName=wg0\n",
    }
    cfg = netconf.detect(files, "eth0", "224.0.0.0/4")
    assert cfg.kind == "networkd" and not cfg.present
    assert cfg.path == "/etc/systemd/network/10-lan.network.d/omwizard-multicast.conf"
    text = netconf.networkd_dropin_text("224.0.0.0/4")
    assert "[Route]\nDestination=224.0.0.0/4\nScope=link\n" in text
    files[cfg.path] = text
    assert netconf.detect(files, "eth0", "224.0.0.0/4").present


def test_networkmanager():
    assert netconf.nm_connection("GENERAL.CONNECTION:Wired connection 1\n") == "Wired connection 1"
    assert netconf.nm_connection("GENERAL.CONNECTION:--\n") is None
    assert netconf.nm_routes_have("10.0.0.0/8 10.1.1.254 100, 224.0.0.0/4", "224.0.0.0/4")
    assert not netconf.nm_routes_have("", "224.0.0.0/4")
    cfg = netconf.detect({}, "eth0", "224.0.0.0/4", nm_conn="Wired connection 1", nm_routes="")
    assert (
        cfg.kind == "networkmanager" and cfg.connection == "Wired connection 1" and not cfg.present
    )


# -- declared facts: LINKS and MULTICAST_ROUTE, from captured outputs ---------------------------

IP_O_LINK = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group "
    "default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    "2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode "
    "DEFAULT group default qlen 1000\\    link/ether 0a:58:c6:12:00:0b brd ff:ff:ff:ff:ff:ff "
    "link-netnsid 0\n"
    "3: tun0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UNKNOWN mode "
    "DEFAULT group default qlen 500\\    link/none\n"
)


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (IP_O_LINK, {"lo": (False, True), "eth0": (True, True), "tun0": (False, True)}),
        ("", {}),
        ('Device "eth9" does not exist.\n', {}),
    ],
)
def test_links_fact_parses_every_device(stdout: str, expected: dict[str, tuple[bool, bool]]):
    links = LINKS.parse(stdout)
    assert {name: (link.multicast, link.up) for name, link in links.items()} == expected


@pytest.mark.parametrize(
    ("stdout", "net_tools", "routes", "get"),
    [
        ("@@have-route\n@@show\n224.0.0.0/4 dev eth0 scope link \n@@get\n"
         "multicast 224.0.0.0 dev eth0 src 198.18.0.11 uid 0 \n    cache \n",
         True, [("224.0.0.0/4", "eth0")], "multicast 224.0.0.0 dev eth0"),
        ("@@show\n@@get\n224.0.0.0 via 198.18.0.1 dev eth0 src 198.18.0.11 uid 0 \n",
         False, [], "224.0.0.0 via 198.18.0.1"),
        ("@@show\nError: any valid prefix is expected rather than \"x\".\n@@get\n", False, [], ""),
    ],
)
def test_multicast_route_fact_from_captured_probe(stdout, net_tools, routes, get):
    probe = MULTICAST_ROUTE.parse(stdout)
    assert probe.net_tools is net_tools
    assert [(r.dest, r.dev) for r in probe.routes] == routes
    assert probe.get.startswith(get)


def test_route_fact_command_is_the_probe_for_the_plans_route():
    from types import SimpleNamespace

    network = SimpleNamespace(route="224.0.0.0/4", multicast_group="224.0.0.0")
    command = MULTICAST_ROUTE.command(SimpleNamespace(network=network), None)  # type: ignore[arg-type]
    assert command == route_probe("224.0.0.0/4", "224.0.0.0")
