"""hazelcast.xml transform on the real OpenMeetings files and hand-edited variants of them.

Each result must validate against the Hazelcast XSD the file names, change only the lines the
documentation's procedure touches, and be a fixed point of the transform.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from omwizard.configs.hazelcast import (
    NS,
    HazelcastSettings,
    inspect,
    problems,
    schema_version,
    transform,
    warnings,
)
from omwizard.lab import shared_dir
from tests.unit.configs.releases import OM, VERSIONS

XSD = shared_dir() / "fixtures" / "hazelcast"

SCHEMAS = {"4.0.11": (3, 9), "5.0.0": (4, 1), "6.3.0": (5, 0), "7.0.0": (5, 1),
           "8.1.0": (5, 5), "9.1.0": (5, 5)}
H = f"{{{NS}}}"

MULTICAST = HazelcastSettings(
    instance_name="om1",
    server_url="https://om1.example.org/openmeetings",
    cluster_name="omwizard-prod",
    join="multicast",
    multicast_group="224.0.0.0",
    multicast_port=54327,
    multicast_ttl=16,
    multicast_timeout=5,
    interfaces=("198.18.0.*",),
    members=("198.18.0.1", "198.18.0.2"),
)
TCP = HazelcastSettings(
    instance_name="om2",
    server_url="https://om2.example.org/openmeetings",
    cluster_name="omwizard-prod",
    join="tcp-ip",
    interfaces=("198.18.0.*", "10.1.1.*"),
    members=("198.18.0.1", "198.18.0.2", "198.18.0.3"),
)


def original(version: str) -> str:
    return (OM / version / "hazelcast.xml").read_text(encoding="utf-8")


@cache
def xsd(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD / f"hazelcast-config-{name}.xsd"))


def schema_for(text: str) -> xmlschema.XMLSchema | None:
    """The XSD a file names: 4.x files against 4.1, 5.x files against 5.5 (the README says
    OM 6.3-7.x files validate against it too); 3.x (OM 4.0.x) has no XSD here."""
    version = schema_version(text)
    assert version is not None
    if version[0] == 4:
        return xsd("4.1")
    if version[0] == 5:
        return xsd("5.5")
    return None


def assert_valid(text: str) -> None:
    schema = schema_for(text)
    assert schema is not None
    errors = [str(e.reason) + " at " + str(e.path) for e in schema.iter_errors(text)]
    assert errors == []


def root_of(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), etree.XMLParser(remove_comments=False))


def changed_lines(before: str, after: str) -> tuple[Counter, Counter]:
    """(removed, added) stripped lines, independent of how difflib aligns them."""
    old = Counter(line.strip() for line in before.splitlines())
    new = Counter(line.strip() for line in after.splitlines())
    return old - new, new - old


# --------------------------------------------------------------------------- the real files


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_version_of_each_release(version: str) -> None:
    assert schema_version(original(version)) == SCHEMAS[version]


@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "4.0.11"])
def test_fixture_is_valid_before_the_transform(version: str) -> None:
    """Control: the XSD choice and loading work (offline: the XSDs import nothing)."""
    assert_valid(original(version))


@pytest.mark.parametrize("plan", [MULTICAST, TCP], ids=["multicast", "tcp-ip"])
@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "4.0.11"])
def test_result_validates_and_is_a_fixed_point(version: str, plan: HazelcastSettings) -> None:
    out = transform(original(version), plan)
    assert_valid(out)
    assert transform(out, plan) == out
    assert problems(out, plan) == []
    assert 'xmlns=""' not in out and "ns0:" not in out


@pytest.mark.parametrize("version", VERSIONS)
def test_original_problems_are_reported(version: str) -> None:
    text = original(version)
    found = problems(text, MULTICAST)
    joined = "\n".join(found)
    assert "instance-name is 'server-1'" in joined
    assert "disabled <network><join> block" in joined
    assert "still commented out" in joined
    has_discovery = "hazelcast.discovery.enabled" in text
    assert ("hazelcast.discovery.enabled=false" in joined) == has_discovery
    modern = SCHEMAS[version] >= (4, 0)
    assert ("member attribute 'name' is 'server-1'" in joined) == modern
    assert ("cluster-name is None" in joined) == modern
    assert ("auto-detection" in joined) is False  # no active join yet: that line comes later


@pytest.mark.parametrize("version", VERSIONS)
def test_inspect_before_and_after(version: str) -> None:
    text = original(version)
    before = inspect(text)
    assert before.schema == SCHEMAS[version]
    assert before.instance_name == "server-1"
    assert before.has_disabled_join_block and before.has_commented_network_block
    assert before.network_count == 0 and before.join_methods == ()
    if SCHEMAS[version] >= (4, 0):
        assert before.attributes == {"name": "server-1",
                                     "server.url": "https://127.0.0.1:5443/openmeetings"}
    else:
        assert before.attributes == {}
    after = inspect(transform(text, MULTICAST))
    assert after.instance_name == "om1"
    assert not after.has_disabled_join_block and not after.has_commented_network_block
    assert after.network_count == 1 and after.join_methods == ("multicast",)
    assert (after.multicast_group, after.multicast_port, after.multicast_ttl,
            after.multicast_timeout) == ("224.0.0.0", "54327", "16", "5")
    assert after.interfaces_enabled and after.interfaces == ("198.18.0.*",)
    assert after.discovery_enabled is None
    if SCHEMAS[version] >= (4, 0):
        assert after.attributes == {"name": "om1", "server.url": MULTICAST.server_url}
        assert after.cluster_name == "omwizard-prod"
    tcp = inspect(transform(text, TCP))
    assert tcp.join_methods == ("tcp-ip",) and tcp.members == TCP.members
    assert tcp.interfaces == TCP.interfaces


def test_diff_of_9_1_touches_only_the_documented_lines() -> None:
    text = original("9.1.0")
    out = transform(text, MULTICAST)
    removed, added = changed_lines(text, out)
    assert removed == Counter([
        "<instance-name>server-1</instance-name><!-- MAKE SURE THIS ONE IS UNIQUE -->",
        '<attribute name="name">server-1</attribute><!-- MAKE SURE THIS ONE IS SAME AS ABOVE -->',
        '<attribute name="server.url">https://127.0.0.1:5443/openmeetings</attribute><!-- MAKE '
        "SURE THIS PUBLIC SERVER ADDRESS, USE IP with care: certificate may be not valid for IP"
        " -->",
        '<multicast enabled="false"/>', '<tcp-ip enabled="false"/>', '<aws enabled="false"/>',
        "<!--network>", "</network-->", "<join>", "</join>",  # two join blocks became one
        "<multicast-time-to-live>32</multicast-time-to-live>",
        "<multicast-timeout-seconds>2</multicast-timeout-seconds>",
        "<interface>192.168.1.*</interface>",
        '<property name="hazelcast.discovery.enabled">false</property>',
    ])
    assert added == Counter([
        "<cluster-name>omwizard-prod</cluster-name>",
        "<instance-name>om1</instance-name><!-- MAKE SURE THIS ONE IS UNIQUE -->",
        '<attribute name="name">om1</attribute><!-- MAKE SURE THIS ONE IS SAME AS ABOVE -->',
        '<attribute name="server.url">https://om1.example.org/openmeetings</attribute><!-- MAKE '
        "SURE THIS PUBLIC SERVER ADDRESS, USE IP with care: certificate may be not valid for IP"
        " -->",
        "<multicast-time-to-live>16</multicast-time-to-live>",
        "<multicast-timeout-seconds>5</multicast-timeout-seconds>",
        "<interface>198.18.0.*</interface>",
    ])
    # header, multi-line root start tag and the maps are byte for byte the original
    head = text[: text.index("\t<instance-name>")]
    assert out.startswith(head)
    assert "<hazelcast\n\t\txmlns:xsi=" in out
    assert out.endswith("\t</properties>\n</hazelcast>\n")


# lines of the original the transform may remove / the result may add (stripped); the
# disabled block's and the un-commented block's shared lines cancel out in the counters
MAY_REMOVE = re.compile(
    r"<instance-name>|<attribute name=|<(multicast|tcp-ip|aws|auto-detection) enabled=\"false\"/>"
    r"|<!--network>|</network-->|</?join>|<interface>|hazelcast\.discovery\.enabled|<multicast-"
    r"|</?multicast( enabled=\"true\")?>")
MAY_ADD = re.compile(
    r"<cluster-name>|<instance-name>|<attribute name=|<auto-detection enabled=\"false\"/>"
    r"|<interface>|<multicast-|<(multicast|tcp-ip) enabled=|</?(member-list|tcp-ip)>|<member>")


@pytest.mark.parametrize("plan", [MULTICAST, TCP], ids=["multicast", "tcp-ip"])
@pytest.mark.parametrize("version", VERSIONS)
def test_diff_touches_only_expected_regions(version: str, plan: HazelcastSettings) -> None:
    text = original(version)
    out = transform(text, plan)
    removed, added = changed_lines(text, out)
    assert removed and added
    assert [line for line in removed if not MAY_REMOVE.search(line)] == []
    assert [line for line in added if not MAY_ADD.search(line)] == []
    assert out.startswith(text[: text.index("\t<instance-name>")])
    # every comment but the un-commented block's survives, the license header first
    comments = [c.text for c in root_of(text).itersiblings(preceding=True)]
    assert comments and "Licensed to the Apache Software Foundation" in comments[0]
    assert out.count("<!--") == text.count("<!--") - 1


def test_4_0_11_gets_no_element_its_schema_lacks() -> None:
    text = original("4.0.11")
    out = transform(text, MULTICAST)
    root = root_of(out)
    assert root.find(f"{H}member-attributes") is None
    assert root.find(f"{H}cluster-name") is None
    assert root.find(f".//{H}auto-detection") is None
    assert root.findtext(f"{H}instance-name") == "om1"
    networks = root.findall(f"{H}network")
    assert len(networks) == 1
    multicast = networks[0].find(f"{H}join/{H}multicast")
    assert multicast is not None and multicast.get("enabled") == "true"
    assert multicast.findtext(f"{H}multicast-group") == "224.0.0.0"
    assert multicast.findtext(f"{H}multicast-time-to-live") == "16"
    assert [i.text for i in networks[0].iterfind(f"{H}interfaces/{H}interface")] == [
        "198.18.0.*"]
    assert transform(out, MULTICAST) == out
    assert problems(out, MULTICAST) == []
    notes = "\n".join(warnings(MULTICAST, text))
    assert "no member attributes" in notes and "server.url" in notes
    assert "no cluster-name" in notes
    assert warnings(MULTICAST, original("9.1.0")) == []


def test_auto_detection_only_where_the_xsd_has_it() -> None:
    """The 4.1 XSD rejects join/auto-detection: the negative control shows that the schema
    gate matters; 5.x results carry it disabled."""
    out5 = transform(original("5.0.0"), TCP)
    assert "auto-detection" not in out5
    tampered = out5.replace("<join>", '<join>\n\t\t\t<auto-detection enabled="false"/>', 1)
    assert not xsd("4.1").is_valid(tampered)
    out9 = root_of(transform(original("9.1.0"), TCP))
    auto = out9.find(f"{H}network/{H}join/{H}auto-detection")
    assert auto is not None and auto.get("enabled") == "false"


def test_tcp_ip_join_shape() -> None:
    root = root_of(transform(original("9.1.0"), TCP))
    join = root.find(f"{H}network/{H}join")
    multicast = join.find(f"{H}multicast")
    assert multicast.get("enabled") == "false" and len(multicast) == 0
    tcp = join.find(f"{H}tcp-ip")
    assert tcp.get("enabled") == "true"
    assert [m.text for m in tcp.iterfind(f"{H}member-list/{H}member")] == list(TCP.members)


def test_switching_join_both_ways_leaves_nothing_behind() -> None:
    start = original("8.1.0")
    tcp = transform(transform(start, MULTICAST), TCP)
    assert tcp == transform(start, TCP).replace("om2", "om2")  # same result either way round
    back = transform(tcp, MULTICAST)
    assert_valid(back)
    assert problems(back, MULTICAST) == []
    root = root_of(back)
    tcp_ip = root.find(f"{H}network/{H}join/{H}tcp-ip")
    assert tcp_ip is not None and tcp_ip.get("enabled") == "false"
    assert transform(back, MULTICAST) == back


# --------------------------------------------------------------------------- hand-edited files


def _uncommented(text: str) -> str:
    """What an operator following the documentation by hand leaves behind."""
    text = re.sub(r"\n\t<network>\n\t\t<join>.*?</join>\n\t</network>", "", text, count=1,
                  flags=re.S)
    text = text.replace("<!--network>", "<network>").replace("</network-->", "</network>")
    return re.sub(r"\n\t\t<property name=\"hazelcast.discovery.enabled\">false</property>", "",
                  text)


def _values_changed(text: str) -> str:
    return (_uncommented(text).replace("224.0.0.0", "239.1.1.1").replace("54327", "5701")
            .replace("192.168.1.*", "10.0.0.*</interface>\n\t\t\t<interface>10.0.1.*"))


def _comments_moved(text: str) -> str:
    """The commented block moved after <properties>, the instance-name comment on its own
    line, and a new comment inside the commented block's join."""
    block = re.search(r"\t<!--network>.*?</network-->\n", text, re.S).group(0)
    text = text.replace(block, "")
    text = text.replace("</properties>\n", "</properties>\n" + block) if "</properties>" in text \
        else text.replace("</hazelcast>", block + "</hazelcast>")
    return text.replace("</instance-name><!--", "</instance-name>\n\t<!--")


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def _attributes_reordered(text: str) -> str:
    start = text.index("<hazelcast")
    end = text.index(">", start) + 1
    tag = text[start:end]
    attrs = re.findall(r'\s+[\w:]+="[^"]*"', tag)
    reordered = "<hazelcast" + "".join(reversed(attrs)) + "\n>"
    return text[:start] + reordered + text[end:]


def _extra_whitespace(text: str) -> str:
    return (text.replace("<instance-name>server-1</instance-name>",
                         "<instance-name>  server-1  </instance-name>")
            .replace('<eviction eviction-policy="NONE"/>', "<eviction  eviction-policy = 'NONE' />")
            .replace("\t<map name=\"ROOMS_KEY\">", "\n\n\t<map name=\"ROOMS_KEY\"  >"))


def _four_spaces(text: str) -> str:
    return text.replace("\t", "    ")


def _no_network_at_all(text: str) -> str:
    text = re.sub(r"\t<!--network>.*?</network-->\n", "", text, flags=re.S)
    return re.sub(r"\n\t<network>\n\t\t<join>.*?</join>\n\t</network>", "", text, count=1,
                  flags=re.S)


def _disabled_block_commented_out(text: str) -> str:
    """The documentation allows commenting the disabled block out instead of deleting it."""
    uncommented = _uncommented(text)
    disabled = re.search(r"\t<network>\n\t\t<join>.*?</join>\n\t</network>", text, re.S).group(0)
    commented = "\t<!--" + disabled.strip()[1:-1] + "-->\n\t<network>"
    return uncommented.replace("\t<network>", commented, 1)


def _no_commented_block(text: str) -> str:
    """Only the disabled block is left: it becomes the network to edit."""
    return re.sub(r"\t<!--network>.*?</network-->\n", "", text, flags=re.S)


def _no_identity(text: str) -> str:
    """instance-name and member-attributes deleted by hand."""
    text = re.sub(r"\t<instance-name>.*\n", "", text)
    return re.sub(r"\t<member-attributes>.*?</member-attributes>\n", "", text, flags=re.S)


VARIANTS = {
    "no-commented-block": _no_commented_block,
    "no-identity": _no_identity,
    "uncommented": _uncommented,
    "values-changed": _values_changed,
    "comments-moved": _comments_moved,
    "crlf": _crlf,
    "attributes-reordered": _attributes_reordered,
    "extra-whitespace": _extra_whitespace,
    "four-spaces": _four_spaces,
    "no-network": _no_network_at_all,
    "disabled-commented-out": _disabled_block_commented_out,
}


@pytest.mark.parametrize("plan", [MULTICAST, TCP], ids=["multicast", "tcp-ip"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", ["5.0.0", "9.1.0"])
def test_hand_edited_variants(version: str, variant: str, plan: HazelcastSettings) -> None:
    text = VARIANTS[variant](original(version))
    assert text != original(version)
    assert_valid(text)  # the variant itself is a file Hazelcast would accept
    assert problems(text, plan)  # every variant still differs from the plan
    out = transform(text, plan)
    assert_valid(out)
    assert transform(out, plan) == out
    assert problems(out, plan) == []
    root = root_of(out)
    assert len(root.findall(f"{H}network")) == 1
    assert root.findtext(f"{H}instance-name") == plan.instance_name
    assert 'xmlns=""' not in out


def test_uncommented_block_is_edited_in_place() -> None:
    text = _values_changed(original("9.1.0"))
    out = transform(text, MULTICAST)
    removed, added = changed_lines(text, out)
    assert Counter(line for line in removed if "multicast" in line or "interface" in line) == \
        Counter(["<multicast-group>239.1.1.1</multicast-group>",
                 "<multicast-port>5701</multicast-port>",
                 "<multicast-time-to-live>32</multicast-time-to-live>",
                 "<multicast-timeout-seconds>2</multicast-timeout-seconds>",
                 "<interface>10.0.0.*</interface>", "<interface>10.0.1.*</interface>"])
    assert "\t\t\t<auto-detection enabled=\"false\"/>\n\t\t\t<multicast enabled=\"true\">" in out


def test_crlf_is_kept() -> None:
    text = _crlf(original("9.1.0"))
    out = transform(text, MULTICAST)
    assert "\n" not in out.replace("\r\n", "")
    assert out == _crlf(transform(original("9.1.0"), MULTICAST))


def test_reordered_root_attributes_and_whitespace_stay_as_written() -> None:
    text = _extra_whitespace(_attributes_reordered(original("9.1.0")))
    out = transform(text, MULTICAST)
    root_tag = text[text.index("<hazelcast"): text.index(">", text.index("<hazelcast")) + 1]
    assert root_tag in out and root_tag.startswith('<hazelcast\n\t\txsi:schemaLocation=')
    assert "<eviction  eviction-policy = 'NONE' />" in out
    assert '\n\n\t<map name="ROOMS_KEY"  >' in out
    removed, _ = changed_lines(text, out)
    assert not [line for line in removed if "map" in line or "eviction" in line]


def test_four_space_files_get_four_space_elements() -> None:
    out = transform(_four_spaces(original("9.1.0")), TCP)
    assert "\t" not in out
    assert "\n    <cluster-name>omwizard-prod</cluster-name>\n    <instance-name>" in out
    assert "\n                <member-list>\n                    <member>198.18.0.1</member>" in out


def test_network_is_created_when_missing() -> None:
    text = _no_network_at_all(original("9.1.0"))
    assert not inspect(text).has_commented_network_block
    assert "missing" in "\n".join(problems(text, MULTICAST))
    out = transform(text, MULTICAST)
    assert "\n\t<network>\n\t\t<join>\n\t\t\t<auto-detection enabled=\"false\"/>\n" in out
    assert "\n\t\t\t\t<multicast-group>224.0.0.0</multicast-group>\n" in out


def test_disabled_block_is_reused_when_nothing_else_exists() -> None:
    text = _no_commented_block(original("9.1.0"))
    out = transform(text, MULTICAST)
    removed, added = changed_lines(text, out)
    assert removed["<multicast enabled=\"false\"/>"] == 1
    assert added["<multicast enabled=\"true\">"] == 1
    assert added["<multicast-group>224.0.0.0</multicast-group>"] == 1
    assert '\t\t\t<tcp-ip enabled="false"/>\n\t\t\t<aws enabled="false"/>\n' in out
    assert "\t\t<interfaces enabled=\"true\">\n\t\t\t<interface>198.18.0.*</interface>" in out


def test_identity_elements_are_created() -> None:
    out = transform(_no_identity(original("9.1.0")), MULTICAST)
    assert "\t<cluster-name>omwizard-prod</cluster-name>\n\t<instance-name>om1</instance-name>\n" \
        "\t<member-attributes>\n\t\t<attribute name=\"name\">om1</attribute>\n" in out


def test_commented_disabled_block_is_not_uncommented() -> None:
    text = _disabled_block_commented_out(original("9.1.0"))
    out = transform(text, MULTICAST)
    assert '<!--network>\n\t\t<join>\n\t\t\t<auto-detection enabled="false"/>' in out
    assert inspect(out).join_methods == ("multicast",)


def test_no_server_url_leaves_the_attribute() -> None:
    plan = HazelcastSettings("om3", None, None, "multicast", interfaces=("198.18.0.*",))
    out = transform(original("7.0.0"), plan)
    assert "https://127.0.0.1:5443/openmeetings" in out
    assert "<cluster-name>" not in out
    assert problems(out, plan) == []
    assert any("server_url" in w for w in warnings(plan))


def test_empty_interfaces_remove_the_example_interface() -> None:
    plan = HazelcastSettings("om1", "https://om1.example.org/om", "c", "multicast")
    out = transform(original("9.1.0"), plan)
    assert "<interfaces" not in out and "192.168.1.*" not in out
    assert_valid(out)
    assert any("interfaces" in w for w in warnings(plan))


def test_warnings_on_settings() -> None:
    def url(value: str) -> list[str]:
        return warnings(HazelcastSettings("om1", value, "c", "multicast", interfaces=("a",)))

    assert any("bare IP" in w for w in url("https://10.1.1.1/openmeetings"))
    assert any("bare IP" in w for w in url("https://[2001:db8::1]:5443/openmeetings"))
    assert url("https://om1.example.org/openmeetings") == []
    assert url("http://10.1.1.1:5080/openmeetings") == []
    lonely = HazelcastSettings("om1", "https://a.example/om", "c", "tcp-ip")
    assert any("without members" in w for w in warnings(lonely))


def test_problems_name_each_wrong_value() -> None:
    out = transform(original("9.1.0"), MULTICAST)
    other = HazelcastSettings("om9", "https://om9.example.org/om", "omwizard-test", "tcp-ip",
                              interfaces=("10.9.9.*",), members=("10.9.9.1",))
    found = "\n".join(problems(out, other))
    for needle in ("instance-name is 'om1'", "member attribute 'name' is 'om1'",
                   "'server.url' is 'https://om1.example.org/openmeetings'",
                   "cluster-name is 'omwizard-prod'", "join methods enabled: multicast",
                   "tcp-ip members are []", "should be enabled with ['10.9.9.*']"):
        assert needle in found


# --------------------------------------------------------------------------- any plan values

names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
patterns = st.from_regex(r"(10|172|192)\.[0-9]{1,3}\.[0-9]{1,3}\.(\*|[0-9]{1,3})", fullmatch=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    host=names,
    query=st.text(alphabet="abc&<>\"'=", max_size=8),
    join=st.sampled_from(["multicast", "tcp-ip"]),
    port=st.integers(1024, 65535),
    ttl=st.integers(0, 255),
    interfaces=st.lists(patterns, max_size=3, unique=True),
    members=st.lists(patterns, min_size=1, max_size=4, unique=True),
    version=st.sampled_from(["5.0.0", "7.0.0", "9.1.0"]),
)
def test_any_plan_values_round_trip(name: str, host: str, query: str, join: str, port: int,
                                    ttl: int, interfaces: list[str], members: list[str],
                                    version: str) -> None:
    plan = HazelcastSettings(name, f"https://{host}.example.org/om?{query}", f"omwizard-{name}",
                             join, "224.0.0.0", port, ttl, 3, tuple(interfaces), tuple(members))
    out = transform(original(version), plan)
    assert_valid(out)
    assert transform(out, plan) == out
    assert problems(out, plan) == []
    facts = inspect(out)
    assert facts.attributes["server.url"] == plan.server_url  # escaped and read back
