"""The doctor's facts and judgements: what an OpenMeetings node really runs, and what is wrong.

`check` judges a node against the plan's documented steps; the doctor looks for the failures
the page never mentions (issue 18): every join method off, an interface pattern that matches
nothing or Docker's bridge, Hazelcast versions or cluster names that refuse each other, two
nodes with one instance-name, a server.url naming another node, CVE-2024-54676's lists in a
file but not in the running JVM, a stray hazelcast.xml, nodes sharing a Kurento server or its
kuid, "DB seems to be down", TCP 5701 blocked.

One probe (`SNAPSHOT`) reads each node in one round trip: OM's config files, its jars, the
running JVM's command line, the addresses and link kinds, the log tail. `node_view` turns it
into the node's row of the matrix (`NodeView`, typed); every `judge_*` is a pure function of
the rows that returns `Problem`s (typed `Cause` + words for people). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from omwizard.configs import hazelcast as hzconf
from omwizard.configs import persistence as pconf
from omwizard.configs.javaopts import effective_java_opts, option_key
from omwizard.facts.base import Fact, StepData
from omwizard.facts.firewall_paths import OPENJPA_PORT
from omwizard.facts.verify import STANDALONE, read_log
from omwizard.om.layout import DROPIN_DIR, UNIT_FILES, OmLayout, version_from_jars, version_text

LOG_LINES = 3000
SERIALIZATION_KEYS = (
    "-Dopenjpa.serialization.class.blacklist",
    "-Dopenjpa.serialization.class.whitelist",
)
DATA_DIR_KEY = "-DDATA_DIR"
HAZELCAST_CONFIG_KEY = "-Dhazelcast.config"
DEFAULT_CLUSTER_NAME = "dev"
HAZELCAST_PORT = 5701
# the Hazelcast release each OpenMeetings release bundles (changelogs; the community edition
# refuses members of another minor version)
BUNDLED_HAZELCAST = {(8, 0): "5.5.0", (8, 1): "5.5.0", (9, 0): "5.6.0", (9, 1): "5.7.0"}
HAZELCAST_JAR = re.compile(r"(?:^|/)hazelcast-(\d+)\.(\d+)\.(\d+)(?:-[A-Za-z0-9.]+)?\.jar$")
PROPERTIES_FILE = "openmeetings.properties"
KURENTO_URL_KEY = "kurento.ws.url"
KURENTO_KUID_KEY = "kurento.kuid"
VIRTUAL_LINK_KINDS = ("bridge", "veth", "vxlan", "tun", "tap", "dummy")
VIRTUAL_NAMES = re.compile(r"^(docker\d*|br-[0-9a-f]+|virbr\d+|cni\d*|flannel\.\d+|kube-\w+|"
                           r"lxcbr\d+|podman\d+|vboxnet\d+|vmnet\d+)$")

# log lines since the member's latest start that name a cause (quoted as evidence)
LOG_CAUSES: tuple[tuple[str, str], ...] = (
    ("DB seems to be down", "db-down"),
    ("Duplicate cluster instance with name", "duplicate-instance"),
    ("No matching network interface found", "no-interface"),
    ("CANNOT start on this node", "no-interface"),
    (STANDALONE, "join-disabled"),
)


# -- the probe --------------------------------------------------------------------------------


def snapshot_command(om_home: str) -> str:
    """One read-only script: `@@file PATH B64`, `@@jars B64`, `@@proc PID CWD B64(argv)`,
    `@@stray PATH`, `@@addrs B64`, `@@links B64`, `@@log PATH B64`, `@@hostname NAME`."""
    lay = OmLayout(om_home)
    q = shlex.quote
    files = [lay.hazelcast_xml, lay.persistence_xml, f"{lay.classes}/{PROPERTIES_FILE}",
             *UNIT_FILES, f"{lay.bin}/setenv.sh"]
    return (
        f"h={q(om_home)}; "
        "f() { [ -f \"$1\" ] && printf '@@file %s %s\\n' \"$1\" \"$(base64 -w0 -- \"$1\")\"; "
        "true; }; "
        f"for p in {' '.join(q(p) for p in files)} {q(DROPIN_DIR)}/*.conf; do f \"$p\"; done; "
        f"printf '@@jars %s\\n' \"$(ls -1 {q(lay.lib)} 2>/dev/null | base64 -w0)\"; "
        "me=$(readlink /proc/self/ns/net); cwds=''; "
        "for p in $(pgrep -x java 2>/dev/null); do "
        "[ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ] || continue; "
        "c=$(tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null); d=$(readlink /proc/$p/cwd 2>/dev/null); "
        "case \" $c\" in *\"$h/\"*|*\"=$h \"*|*\"=$h\"*) ;; *) [ \"$d\" = \"$h\" ] || continue;; "
        "esac; cwds=\"$cwds $d\"; "
        "printf '@@proc %s %s %s\\n' \"$p\" \"$d\" \"$(tr '\\0' '\\n' </proc/$p/cmdline | "
        "base64 -w0)\"; done; "
        f"for d in \"$h\" \"$h/bin\" $cwds $(sed -n 's/^[[:space:]]*WorkingDirectory="
        f"[[:space:]]*-*//p' {' '.join(q(u) for u in UNIT_FILES)} {q(DROPIN_DIR)}/*.conf "
        "2>/dev/null); do [ -f \"$d/hazelcast.xml\" ] && printf '@@stray %s\\n' "
        "\"$d/hazelcast.xml\"; done; "
        "printf '@@addrs %s\\n' \"$(ip -o addr show 2>/dev/null | base64 -w0)\"; "
        "printf '@@links %s\\n' \"$(ip -o -d link show 2>/dev/null | base64 -w0)\"; "
        "for l in \"$h/logs/openmeetings.log\" \"$h/log/openmeetings.log\"; do "
        f"[ -f \"$l\" ] && {{ printf '@@log %s %s\\n' \"$l\" \"$(tail -n {LOG_LINES} -- \"$l\" "
        "| base64 -w0)\"; break; }; done; "
        "printf '@@hostname %s\\n' \"$(hostname 2>/dev/null)\"; true"
    )


@dataclass(frozen=True)
class Process:
    """A running JVM of OpenMeetings: pid, working directory, argv."""

    pid: int
    cwd: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Address:
    """One address of the node: interface, IP (no prefix), link kind (bridge, veth, ...)."""

    interface: str
    ip: str
    kind: str = ""

    @property
    def v6(self) -> bool:
        return ":" in self.ip


@dataclass(frozen=True)
class Snapshot:
    """What the probe read on one node (files as text; secrets included: never shown)."""

    files: dict[str, str] = field(default_factory=dict)
    jars: tuple[str, ...] = ()
    processes: tuple[Process, ...] = ()
    strays: tuple[str, ...] = ()
    addresses: tuple[Address, ...] = ()
    log_path: str | None = None
    log: str = ""
    hostname: str = ""


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text.strip() or b"").decode("utf-8", errors="replace")
    except ValueError:
        return ""


def parse_links(text: str) -> dict[str, str]:
    """`ip -o -d link show` -> {interface: kind} (bridge, veth, dummy, ... or "")."""
    kinds: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:", line)
        if not match:
            continue
        words = line.split()
        kind = next((k for k in VIRTUAL_LINK_KINDS if k in words), "")
        kinds[match.group(1)] = kind
    return kinds


def parse_addresses(addrs: str, links: Mapping[str, str]) -> tuple[Address, ...]:
    """`ip -o addr show` -> every inet/inet6 address with its interface and link kind."""
    out = []
    for line in addrs.splitlines():
        match = re.match(r"^\d+:\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F.:]+)/\d+", line)
        if match:
            name = match.group(1).split("@")[0]
            out.append(Address(name, match.group(3), links.get(name, "")))
    return tuple(out)


def parse_snapshot(output: str) -> Snapshot:
    files: dict[str, str] = {}
    jars: tuple[str, ...] = ()
    procs: list[Process] = []
    strays: list[str] = []
    addrs = links = ""
    log_path, log, hostname = None, "", ""
    for line in output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "@@file":
            path, _, data = rest.rpartition(" ")
            if path:
                files[path] = _b64(data)
        elif tag == "@@jars":
            jars = tuple(j for j in _b64(rest).splitlines() if j.strip())
        elif tag == "@@proc":
            parts = rest.split(" ")
            if len(parts) >= 3 and parts[0].isdigit():
                argv = tuple(a for a in _b64(parts[-1]).split("\n") if a)
                procs.append(Process(int(parts[0]), " ".join(parts[1:-1]), argv))
        elif tag == "@@stray":
            strays.append(rest)
        elif tag == "@@addrs":
            addrs = _b64(rest)
        elif tag == "@@links":
            links = _b64(rest)
        elif tag == "@@log":
            path, _, data = rest.rpartition(" ")
            log_path, log = path, _b64(data)
        elif tag == "@@hostname":
            hostname = rest.strip()
    return Snapshot(files, jars, tuple(procs), tuple(dict.fromkeys(strays)),
                    parse_addresses(addrs, parse_links(links)), log_path, log, hostname)


SNAPSHOT: Fact[Snapshot] = Fact(
    "doctor_snapshot", lambda plan, _node: snapshot_command(plan.cluster.om_home),
    parse_snapshot,
)


# -- a node's row of the matrix ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeView(StepData):
    """One node as the doctor sees it: the matrix row (no secret in it)."""

    kind = "doctor-node"
    node: str
    address: str
    installed: bool
    om_version: str | None = None
    hazelcast_version: str | None = None
    hazelcast_source: str | None = None  # "lib" (WEB-INF/lib) | "jvm" (running class path)
    instance_name: str | None = None
    name_attribute: str | None = None
    server_url: str | None = None
    cluster_name: str | None = None  # as Hazelcast uses it ("dev" when absent)
    join: tuple[str, ...] = ()
    interfaces_enabled: bool = False
    interfaces: tuple[str, ...] = ()
    db_url: str | None = None
    data_dir_live: str | None = None
    data_dir_configured: str | None = None
    running: bool = False
    pid: int | None = None
    live_flags: tuple[str, ...] = ()  # the JVM's -D options the doctor judges
    configured_flags: tuple[str, ...] = ()
    kurento_url: str | None = None
    kuid: str | None = None
    members_seen: tuple[str, ...] = ()
    standalone: bool = False
    strays: tuple[str, ...] = ()
    addresses: tuple[tuple[str, str, str], ...] = ()  # (interface, ip, link kind)
    log_causes: tuple[tuple[str, str], ...] = ()  # (cause code, the log line)
    url_answer: str | None = None  # "200", "no answer: ..." (the server-url probe)
    cert_names: tuple[str, ...] = ()


def hazelcast_from_jars(names: Iterable[str]) -> str | None:
    for name in names:
        match = HAZELCAST_JAR.search(name.strip())
        if match:
            return ".".join(match.groups())
    return None


def hazelcast_from_argv(argv: Iterable[str]) -> str | None:
    """The Hazelcast jar on a JVM's class path (-cp / -classpath / java.class.path)."""
    for arg in argv:
        for part in re.split(r"[:=\s]", arg):
            found = hazelcast_from_jars([part])
            if found:
                return found
    return None


def java_flags(argv: Iterable[str]) -> dict[str, str]:
    """{-Dkey: -Dkey=value} of a JVM's argv (the last one wins, as in the JVM)."""
    out: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("-D"):
            out[option_key(arg)] = arg
    return out


def configured_opts(files: Mapping[str, str], om_home: str) -> list[str]:
    """JAVA_OPTS as the files say: the unit, its drop-ins in name order, then setenv.sh."""
    unit = next((files[p] for p in UNIT_FILES if p in files), None)
    dropins = "\n".join(files[p] for p in sorted(files) if p.startswith(DROPIN_DIR + "/"))
    setenv = files.get(f"{OmLayout(om_home).bin}/setenv.sh")
    return effective_java_opts(unit, dropins if unit and dropins else None, setenv)


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties: key=value / key: value lines; comments and continuations simple."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            out[match.group(1)] = match.group(2).strip().replace("\\:", ":")
    return out


def _value(flag: str | None) -> str | None:
    return None if flag is None else flag.partition("=")[2]


def node_view(name: str, address: str, snap: Snapshot, om_home: str,
              om_addresses: Mapping[str, str] | None = None) -> NodeView:
    """The node's matrix row from its snapshot (pure)."""
    lay = OmLayout(om_home)
    hz_text = snap.files.get(lay.hazelcast_xml)
    addresses = tuple((a.interface, a.ip, a.kind) for a in snap.addresses)
    if hz_text is None:
        return NodeView(name, address, False, addresses=addresses)
    try:
        hz: hzconf.HazelcastFacts | None = hzconf.inspect(hz_text)
    except Exception:  # noqa: BLE001 - a broken file: judged as "no join" by the join step
        hz = None
    om = version_from_jars(list(snap.jars))
    proc = snap.processes[0] if snap.processes else None
    live = java_flags(proc.argv) if proc else {}
    conf = {option_key(t): t for t in configured_opts(snap.files, om_home) if t.startswith("-D")}
    hz_version, source = hazelcast_from_jars(snap.jars), "lib"
    if hz_version is None and proc is not None:
        hz_version, source = hazelcast_from_argv(proc.argv), "jvm"
    db_url = None
    if lay.persistence_xml in snap.files:
        try:
            db_url = pconf.inspect(snap.files[lay.persistence_xml]).url
        except Exception:  # noqa: BLE001 - unreadable persistence.xml: no Url to compare
            db_url = None
    props = parse_properties(snap.files.get(f"{lay.classes}/{PROPERTIES_FILE}", ""))
    log = read_log(snap.log) if snap.log else None
    since = snap.log.splitlines()[(log.started_line or 0) if log else 0:]
    causes = tuple((code, line.strip()[:300]) for line in since for text, code in LOG_CAUSES
                   if text in line)
    judged = (*SERIALIZATION_KEYS, DATA_DIR_KEY, HAZELCAST_CONFIG_KEY)
    cluster = None
    if hz is not None:
        cluster = hz.cluster_name or (DEFAULT_CLUSTER_NAME if (hz.schema or (5, 0)) >= (4, 0)
                                      else None)
    return NodeView(
        node=name, address=address, installed=True,
        om_version=version_text(om) if om else None,
        hazelcast_version=hz_version, hazelcast_source=source if hz_version else None,
        instance_name=hz.instance_name if hz else None,
        name_attribute=hz.attributes.get("name") if hz else None,
        server_url=hz.attributes.get("server.url") if hz else None,
        cluster_name=cluster,
        join=hz.join_methods if hz and not hz.has_disabled_join_block else (),
        interfaces_enabled=bool(hz and hz.interfaces_enabled),
        interfaces=hz.interfaces if hz else (),
        db_url=db_url,
        data_dir_live=_value(live.get(DATA_DIR_KEY)),
        data_dir_configured=_value(conf.get(DATA_DIR_KEY)),
        running=proc is not None, pid=proc.pid if proc else None,
        live_flags=tuple(live[k] for k in judged if k in live),
        configured_flags=tuple(conf[k] for k in judged if k in conf),
        kurento_url=props.get(KURENTO_URL_KEY), kuid=props.get(KURENTO_KUID_KEY),
        members_seen=log.block.addresses if log and log.block else (),
        standalone=bool(log and log.standalone),
        strays=tuple(s for s in snap.strays if s != lay.hazelcast_xml),
        addresses=addresses, log_causes=causes,
    )


# -- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause(StepData):
    """One thing wrong on one node: a stable code, the value judged and the value wanted,
    and the section whose `apply` fixes it (None: a fix by hand)."""

    kind = "doctor-cause"
    code: str
    node: str
    seen: str | None = None
    wanted: str | None = None
    apply_section: str | None = None


@dataclass(frozen=True)
class Diagnosis(StepData):
    """A doctor step's verdict on one node: its causes (empty = healthy) and the node's row."""

    kind = "diagnosis"
    causes: tuple[Cause, ...] = ()
    view: NodeView | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.causes)


@dataclass(frozen=True)
class Problem:
    """A cause with the words for people: what, why it matters, how to fix, evidence."""

    cause: Cause
    what: str
    why: str
    fix: str
    evidence: tuple[str, ...] = ()


Problems = dict[str, list[Problem]]


def _p(problems: Problems, node: str, code: str, what: str, why: str, fix: str, *,
       seen: str | None = None, wanted: str | None = None, section: str | None = None,
       evidence: Iterable[str] = ()) -> None:
    problems.setdefault(node, []).append(
        Problem(Cause(code, node, seen, wanted, section), what, why, fix, tuple(evidence)))


def apply_hint(section: str, node: str) -> str:
    return f"`omwizard apply PLAN --section {section} --node {node}` does it"


def minority(values: Mapping[str, str | None]) -> tuple[str | None, list[str]]:
    """(the value most nodes have, the nodes that differ); on a tie every node differs from
    the first-seen value, so no node is called right by chance. None values are ignored."""
    known = {n: v for n, v in values.items() if v is not None}
    if not known:
        return None, []
    counts = Counter(known.values()).most_common()
    top, n = counts[0]
    if len(counts) > 1 and counts[1][1] == n:
        return None, sorted(known)
    return top, [name for name, v in known.items() if v != top]


def _log_lines(view: NodeView, code: str) -> list[str]:
    return [f"log: {line}" for c, line in view.log_causes if c == code]


def judge_versions(views: Mapping[str, NodeView]) -> Problems:
    """OpenMeetings releases and Hazelcast minor versions must agree between members."""
    out: Problems = {}
    om = {n: v.om_version for n, v in views.items()}
    top, odd = minority(om)
    side = ", ".join(f"{n} {v or '?'}" for n, v in om.items())
    for node in odd:
        _p(out, node, "om-version", f"{node} runs OpenMeetings {om[node]}, the others {top}"
           if top else f"the nodes run different OpenMeetings releases: {side}",
           "members of different releases share one database and cluster: schema and "
           "serialized objects differ", "install the same OpenMeetings release on every node",
           seen=om[node], wanted=top, evidence=[side])
    hz = {n: v.hazelcast_version for n, v in views.items()}
    minor = {n: ".".join(v.split(".")[:2]) if v else None for n, v in hz.items()}
    top_minor, odd = minority(minor)
    side = ", ".join(f"{n} {v or '?'} ({views[n].hazelcast_source or '-'})" for n, v in hz.items())
    for node in odd:
        wanted = next((hz[n] for n in hz if minor[n] == top_minor), None)
        _p(out, node, "hazelcast-version",
           f"{node} has Hazelcast {hz[node]}, the others {wanted}" if top_minor
           else f"the nodes have different Hazelcast versions: {side}",
           "Hazelcast's community edition refuses members of another minor version: the "
           "node forms a cluster of its own",
           f"give {node} the Hazelcast jar the others have ({wanted}): install the same "
           "OpenMeetings release (8.x bundles 5.5.0, 9.0.0 5.6.0, 9.1.0 5.7.0) and remove "
           "stray hazelcast-*.jar files from WEB-INF/lib", seen=hz[node], wanted=wanted,
           evidence=[side])
    return out


def judge_join(view: NodeView) -> list[Problem]:
    out: Problems = {}
    if not view.join:
        _p(out, view.node, "join-disabled",
           "hazelcast.xml enables no join method (the file OpenMeetings ships since 4.0.1)",
           "Hazelcast logs \"No join method is enabled! Starting standalone.\": this node "
           "never sees the others", apply_hint("nodes", view.node) + ", then restart "
           "OpenMeetings (`--section verify`)", section="nodes",
           evidence=_log_lines(view, "join-disabled"))
    return out.get(view.node, [])


def interface_matches(pattern: str, ip: str) -> bool:
    """Hazelcast's interface pattern match: 10.3.16.*, 10.3.10.4-18, 192.168.1.3 (IPv4)."""
    parts, octets = pattern.strip().split("."), ip.split(".")
    if ":" in pattern or len(parts) != 4 or len(octets) != 4:
        return False
    for part, octet in zip(parts, octets, strict=True):
        if part == "*":
            continue
        low, dash, high = part.partition("-")
        try:
            value = int(octet)
            if dash:
                if not int(low) <= value <= int(high):
                    return False
            elif int(part) != value:
                return False
        except ValueError:
            return False
    return True


def _virtual(interface: str, kind: str) -> bool:
    virtual = kind in ("bridge", "dummy", "vxlan", "tun", "tap")
    return virtual or bool(VIRTUAL_NAMES.match(interface))


def judge_interfaces(view: NodeView) -> list[Problem]:
    """Which address Hazelcast's <interfaces> picks on this node, and whether it is right."""
    out: Problems = {}
    node = view.node
    v4 = [(i, ip, k) for i, ip, k in view.addresses if ":" not in ip and i != "lo"
          and not ip.startswith("127.")]
    shown = ", ".join(f"{i} {ip}{' (' + k + ')' if k else ''}" for i, ip, k in v4) or "none"
    if not view.interfaces_enabled:
        virtual = [(i, ip) for i, ip, k in v4 if _virtual(i, k)]
        if virtual:
            _p(out, node, "interface-unpinned",
               f"<interfaces> is off and {node} has a bridge address ({virtual[0][0]} "
               f"{virtual[0][1]}): Hazelcast may bind to it",
               "members then announce an address the others cannot reach",
               "enable <interfaces> with the cluster network's pattern; "
               + apply_hint("nodes", node), section="nodes", evidence=[f"addresses: {shown}"])
        return out.get(node, [])
    patterns = view.interfaces
    six = [p for p in patterns if ":" in p]
    if six:
        _p(out, node, "interface-ipv6", f"interface pattern {six[0]} is IPv6",
           "OpenMeetings' Hazelcast prefers IPv4 (java.net.preferIPv4Stack): an IPv6 pattern "
           "matches nothing it will use", "use the node's IPv4 network, e.g. "
           f"{'.'.join(view.address.split('.')[:3])}.*; " + apply_hint("nodes", node),
           seen=six[0], section="nodes")
    matched = [(i, ip, k) for i, ip, k in v4 if any(interface_matches(p, ip) for p in patterns)]
    evidence = [f"<interface> {', '.join(patterns) or '(none)'}; addresses: {shown}"]
    evidence += _log_lines(view, "no-interface")
    if not matched:
        _p(out, node, "no-interface",
           f"no address of {node} matches <interface> {', '.join(patterns) or '(empty)'}",
           "Hazelcast refuses to start: \"Hazelcast CANNOT start on this node. No matching "
           "network interface found.\" (the documentation's sample is 192.168.1.*)",
           f"set the pattern to the cluster network ({'.'.join(view.address.split('.')[:3])}.*)"
           "; " + apply_hint("nodes", node), seen=", ".join(patterns), wanted=view.address,
           section="nodes", evidence=evidence)
        return out.get(node, [])
    first = matched[0]
    virtual = [(i, ip) for i, ip, k in matched if _virtual(i, k)]
    if virtual:
        _p(out, node, "interface-bridge",
           f"<interface> {', '.join(patterns)} matches {virtual[0][0]} {virtual[0][1]} "
           "(a bridge, as Docker's for Kurento)",
           "Hazelcast may bind to the bridge and announce an address no other node reaches",
           f"narrow the pattern to {view.address}'s network; " + apply_hint("nodes", node),
           seen=f"{virtual[0][0]} {virtual[0][1]}", wanted=view.address, section="nodes",
           evidence=evidence)
    elif view.address not in [ip for _i, ip, _k in matched]:
        _p(out, node, "interface-wrong",
           f"<interface> picks {first[0]} {first[1]}, not the cluster address {view.address}",
           "the member announces an address the others do not expect",
           "set the pattern to the cluster network; " + apply_hint("nodes", node),
           seen=first[1], wanted=view.address, section="nodes", evidence=evidence)
    return out.get(node, [])


def judge_identity(views: Mapping[str, NodeView]) -> Problems:
    """instance-name set, unique, and equal to the member attribute `name`."""
    out: Problems = {}
    by_name: dict[str, list[str]] = {}
    for node, v in views.items():
        if v.instance_name:
            by_name.setdefault(v.instance_name, []).append(node)
        else:
            _p(out, node, "no-instance-name", f"{node}'s hazelcast.xml has no instance-name",
               "OpenMeetings keys its servers by it (Administration > Connections)",
               apply_hint("nodes", node), wanted=node, section="nodes")
    for name, nodes in by_name.items():
        if len(nodes) < 2:
            continue
        wrong = [n for n in nodes if n != name] or nodes[1:]
        for node in wrong:
            also = ", ".join(n for n in nodes if n != node)
            _p(out, node, "duplicate-instance",
               f"{node}'s instance-name {name!r} is also {also}'s",
               "Hazelcast refuses the second member (\"Duplicate cluster instance with name\") "
               "and OpenMeetings mixes up the two servers", apply_hint("nodes", node),
               seen=name, wanted=node, section="nodes",
               evidence=_log_lines(views[node], "duplicate-instance"))
    for node, v in views.items():
        if v.instance_name and v.name_attribute is not None and v.name_attribute != v.instance_name:
            _p(out, node, "name-attribute",
               f"member attribute name {v.name_attribute!r} differs from instance-name "
               f"{v.instance_name!r}", "OpenMeetings finds its own server entry by the "
               "attribute: room redirects and the connections list go wrong",
               apply_hint("nodes", node), seen=v.name_attribute, wanted=v.instance_name,
               section="nodes")
    return out


def judge_cluster_name(views: Mapping[str, NodeView]) -> Problems:
    out: Problems = {}
    names = {n: v.cluster_name for n, v in views.items()}
    top, odd = minority(names)
    side = ", ".join(f"{n} {v}" for n, v in names.items())
    for node in odd:
        _p(out, node, "cluster-name", f"{node}'s cluster-name is {names[node]!r}, the others "
           f"{top!r}" if top else f"cluster-names differ: {side}",
           "members with different cluster names refuse each other",
           apply_hint("nodes", node), seen=names[node], wanted=top, section="nodes",
           evidence=[side])
    for node, name in names.items():
        if name == DEFAULT_CLUSTER_NAME and node not in odd:
            _p(out, node, "default-cluster-name",
               f"{node} uses Hazelcast's default cluster-name 'dev'",
               "any other default Hazelcast on the network (a developer's, another product's) "
               "joins this cluster", "set a cluster-name of its own (network.cluster_name in the "
               "plan, or leave it out for omwizard-<cluster.name>); " + apply_hint("nodes", node),
               seen=name, section="nodes")
    return out


def url_host(url: str | None) -> str | None:
    try:
        return urlsplit(url or "").hostname
    except ValueError:
        return None


def judge_server_url(view: NodeView, others: Mapping[str, Iterable[str]]) -> list[Problem]:
    """server.url set, http(s), naming this node (not another), answering, with a
    certificate for its name. others: node -> the addresses/names that are that node."""
    out: Problems = {}
    node, url = view.node, view.server_url
    if not url:
        _p(out, node, "no-server-url", f"{node}'s hazelcast.xml has no member attribute "
           "server.url", "OpenMeetings builds invitation links and room redirects to this "
           "node from it", "set server_url for the node in the plan; "
           + apply_hint("nodes", node), section="nodes")
        return out[node]
    scheme = urlsplit(url).scheme
    host = url_host(url)
    if scheme not in ("http", "https") or not host:
        _p(out, node, "server-url-invalid", f"server.url {url!r} is not an http(s) URL",
           "links built from it do not work", apply_hint("nodes", node), seen=url,
           section="nodes")
        return out[node]
    if host in ("localhost", "::1") or host.startswith("127."):
        _p(out, node, "server-url-loopback", f"{node}'s server.url {url} names the loopback "
           "address", "invitation links and room redirects send users to their own machine",
           "set this node's public URL; " + apply_hint("nodes", node), seen=url,
           section="nodes")
        return out[node]
    owner = next((n for n, names in others.items() if n != node and host in set(names)), None)
    if owner is not None:
        _p(out, node, "server-url-other-node", f"{node}'s server.url {url} names {owner}",
           "invitation links and room redirects meant for this node go to " + owner,
           "set this node's own public URL; " + apply_hint("nodes", node), seen=url,
           section="nodes")
    answer = view.url_answer
    if answer is not None and not answer.startswith("2"):
        _p(out, node, "server-url-no-answer", f"{url} does not answer from {node}: {answer}",
           "users following links to this node get an error",
           "check that OpenMeetings runs and that the URL (proxy, port, DNS) reaches it",
           seen=answer, evidence=[f"GET {url.rstrip('/')}/services/info/health -> {answer}"])
    if scheme == "https" and view.cert_names and not any(
            _cert_covers(name, host) for name in view.cert_names):
        _p(out, node, "server-url-certificate",
           f"the certificate at {url} is for {', '.join(view.cert_names)}, not {host}",
           "browsers refuse the links to this node", "install a certificate for " + host,
           seen=", ".join(view.cert_names), wanted=host)
    return out.get(node, [])


def _cert_covers(name: str, host: str) -> bool:
    name, host = name.lower(), host.lower()
    if name.startswith("*."):
        return host.split(".", 1)[-1] == name[2:] and host.count(".") == name.count(".")
    return name == host


def parse_cert_names(text: str) -> tuple[str, ...]:
    """CN and DNS/IP names from `openssl x509 -noout -subject -ext subjectAltName`."""
    names = re.findall(r"(?:DNS|IP Address):([^,\s]+)", text)
    cn = re.search(r"CN\s*=\s*([^,/\n]+)", text)
    if cn:
        names.append(cn.group(1).strip())
    return tuple(dict.fromkeys(names))


def judge_live_jvm(view: NodeView, wanted_data_dir: str | None = None) -> list[Problem]:
    """What the running JVM has: what counts for CVE-2024-54676 and for DATA_DIR."""
    out: Problems = {}
    node = view.node
    if not view.running:
        _p(out, node, "not-running", f"no OpenMeetings JVM runs on {node}",
           "the node serves no one and is no cluster member",
           "start OpenMeetings (`systemctl start openmeetings` or bin/startup.sh)")
        return out[node]
    live = {option_key(f): f for f in view.live_flags}
    conf = {option_key(f): f for f in view.configured_flags}
    for key in (*SERIALIZATION_KEYS, DATA_DIR_KEY):
        if key in conf and live.get(key) != conf[key]:
            _p(out, node, "live-differs",
               f"{conf[key]} is in the configuration but the running JVM (pid {view.pid}) has "
               f"{live.get(key) or 'nothing'}",
               "the running process is what counts: the configuration takes effect only at "
               "the next start" + (" (CVE-2024-54676 stays open)" if key != DATA_DIR_KEY
                                   else ""),
               "restart OpenMeetings the way it is configured (`systemctl restart "
               "openmeetings`, not a hand-started bin/startup.sh)", seen=live.get(key),
               wanted=conf[key], evidence=[f"pid {view.pid}: {' '.join(view.live_flags)}"])
    if not any(k in live for k in SERIALIZATION_KEYS) and not any(k in conf for k in
                                                                  SERIALIZATION_KEYS):
        _p(out, node, "serialization-lists",
           "neither the configuration nor the running JVM has OpenJPA's serialization lists",
           "CVE-2024-54676: OpenJPA deserializes whatever a cluster peer sends",
           apply_hint("database", node) + " (openjpa-serialization), then restart",
           section="database")
    data_dir = view.data_dir_live
    if wanted_data_dir and data_dir != wanted_data_dir and DATA_DIR_KEY in live:
        _p(out, node, "data-dir", f"the running JVM's DATA_DIR is {data_dir}, the plan's "
           f"shared folder is {wanted_data_dir}",
           "uploads and recordings of this node are not shared with the others",
           apply_hint("storage", node) + ", then restart OpenMeetings", seen=data_dir,
           wanted=wanted_data_dir, section="storage")
    return out.get(node, [])


def judge_overrides(view: NodeView, om_home: str) -> list[Problem]:
    """A stray hazelcast.xml where the JVM starts, or -Dhazelcast.config naming another file."""
    out: Problems = {}
    node, own = view.node, OmLayout(om_home).hazelcast_xml
    for stray in view.strays:
        _p(out, node, "stray-hazelcast-xml", f"{stray} exists where OpenMeetings starts",
           "Hazelcast reads a hazelcast.xml in the working directory before OM's own: the "
           "edits to WEB-INF/classes/hazelcast.xml have no effect",
           f"remove or rename {stray}", seen=stray)
    for flags, where in ((view.live_flags, "the running JVM"),
                         (view.configured_flags, "JAVA_OPTS")):
        for flag in flags:
            if option_key(flag) == HAZELCAST_CONFIG_KEY and _value(flag) != own:
                _p(out, node, "hazelcast-config-override",
                   f"{where} has {flag}", f"it overrides {own}: the cluster settings there "
                   "are not used", f"remove {HAZELCAST_CONFIG_KEY} from JAVA_OPTS (unit, "
                   "drop-ins, setenv.sh) and restart", seen=flag, wanted=own)
                break
    uniq: dict[tuple[str, str | None], Problem] = {}
    for problem in out.get(node, []):
        uniq.setdefault((problem.cause.code, problem.cause.seen), problem)
    return list(uniq.values())


def judge_database(views: Mapping[str, NodeView]) -> Problems:
    out: Problems = {}
    urls = {n: v.db_url for n, v in views.items()}
    top, odd = minority(urls)
    for node in odd:
        _p(out, node, "db-url", f"{node}'s persistence.xml connects to {urls[node]}, the "
           f"others to {top}" if top else "the nodes connect to different databases",
           "the nodes then keep different users, rooms and recordings",
           f"set the same Url as the others ({top}); `omwizard apply PLAN --section database "
           f"--node {node}` does it when the plan names that database", seen=urls[node],
           wanted=top, section="database")
    for node, v in views.items():
        lines = _log_lines(v, "db-down")
        if lines:
            _p(out, node, "db-down", f"OpenMeetings on {node} logged that its database is down",
               "the node cannot serve anyone until it reaches the database",
               "check the database from that node (`omwizard check PLAN --section database "
               f"--node {node}`), then restart OpenMeetings", evidence=lines[-3:])
    return out


def judge_data_dir(views: Mapping[str, NodeView]) -> Problems:
    out: Problems = {}
    dirs = {n: v.data_dir_live or v.data_dir_configured for n, v in views.items()}
    top, odd = minority(dirs)
    for node in odd:
        _p(out, node, "data-dir-differs", f"{node}'s DATA_DIR is {dirs[node]}, the others "
           f"{top}" if top else "DATA_DIR differs between the nodes",
           "files uploaded on one node are missing on the others",
           "use one shared folder everywhere; " + apply_hint("storage", node),
           seen=dirs[node], wanted=top, section="storage")
    return out


def _kms_endpoint(view: NodeView) -> tuple[str | None, bool]:
    """(host:port the node's Kurento URL reaches, whether that is the node itself)."""
    url = view.kurento_url
    if not url:
        return None, False
    split = urlsplit(url)
    host = split.hostname or ""
    try:
        port = split.port or 8888
    except ValueError:
        port = 8888
    local = host in ("localhost", view.address) or (host.startswith("127.") or host == "::1")
    if local:
        host = view.address
    return f"{host}:{port}", local


def judge_kurento(views: Mapping[str, NodeView]) -> Problems:
    """One Kurento media server and one kuid per node."""
    out: Problems = {}
    endpoints = {n: _kms_endpoint(v) for n, v in views.items()}
    by_end: dict[str, list[str]] = {}
    for node, (end, _local) in endpoints.items():
        if end:
            by_end.setdefault(end, []).append(node)
    for end, nodes in by_end.items():
        if len(nodes) < 2:
            continue
        guests = [n for n in nodes if not endpoints[n][1]] or nodes[1:]
        for node in guests:
            _p(out, node, "kurento-shared", f"{node} uses the Kurento server at {end}, as "
               f"{', '.join(n for n in nodes if n != node)}",
               "each OpenMeetings node releases the pipelines it does not know: the other "
               "node's streams stop (MEDIA_OBJECT_NOT_FOUND)",
               f"give {node} a Kurento media server of its own (kurento.ws.url in "
               f"{PROPERTIES_FILE})", seen=views[node].kurento_url)
    by_kuid: dict[str, list[str]] = {}
    for node, v in views.items():
        if v.kuid:
            by_kuid.setdefault(v.kuid, []).append(node)
    for kuid, nodes in by_kuid.items():
        for node in nodes[1:]:
            _p(out, node, "kuid-shared", f"{node}'s kurento.kuid {kuid} is also "
               f"{nodes[0]}'s", "a node releases the other's pipelines as its own "
               "(MEDIA_OBJECT_NOT_FOUND)", f"give {node} its own kurento.kuid (a new UUID) in "
               f"{PROPERTIES_FILE} and restart it", seen=kuid)
    return out


def judge_members(views: Mapping[str, NodeView]) -> Problems:
    """Every running member sees every other OM node (Hazelcast's own view, from the log)."""
    out: Problems = {}
    expected = {n: v.address for n, v in views.items() if v.installed}
    for node, v in views.items():
        if not v.running:
            continue
        if v.standalone:
            _p(out, node, "standalone", f"{node}'s member started alone",
               "this node serves its own users only", "see doctor.join; then restart",
               evidence=_log_lines(v, "join-disabled"))
            continue
        missing = [n for n, a in expected.items() if a not in v.members_seen
                   and views[n].running]
        if missing:
            _p(out, node, "members-missing", f"{node}'s member sees "
               f"{', '.join(v.members_seen) or 'no one'}; missing {', '.join(missing)}",
               "the nodes do not share sessions, rooms and recordings",
               "read the other doctor findings (join, interfaces, cluster-name, versions, "
               "ports): one of them is the cause", seen=", ".join(v.members_seen),
               wanted=", ".join(expected.values()))
    return out


# -- ports ------------------------------------------------------------------------------------


def port_probe(targets: Iterable[str], port: int = HAZELCAST_PORT, seconds: int = 3) -> str:
    """From one node: `open|refused|filtered ADDRESS` for TCP port on each target."""
    q = shlex.quote
    inner = f'exec 3<>/dev/tcp/"$1"/{int(port)}'
    return (
        f"for t in {' '.join(q(t) for t in targets)}; do "
        f"timeout {int(seconds)} bash -c {q(inner)} _ \"$t\" 2>/dev/null; r=$?; "
        "if [ $r -eq 0 ]; then echo \"open $t\"; elif [ $r -eq 124 ]; then echo \"filtered $t\"; "
        "else echo \"refused $t\"; fi; done; true"
    )


def parse_port_probe(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        result, _, target = line.strip().partition(" ")
        if result in ("open", "refused", "filtered") and target:
            out[target] = result
    return out


def judge_ports(seen: Mapping[str, Mapping[str, str]], addresses: Mapping[str, str],
                running: Mapping[str, bool], port: int = HAZELCAST_PORT) -> Problems:
    """seen: source node -> {target address: open|refused|filtered}. A target is flagged when
    some node cannot reach its port (filtered: a firewall drops it; refused while others get
    through: a firewall rejects it); refused by all while it runs: nothing listens there."""
    out: Problems = {}
    for target, address in addresses.items():
        results = {src: got[address] for src, got in seen.items()
                   if src != target and address in got}
        if not results or all(r == "open" for r in results.values()):
            continue
        blocked = [s for s, r in results.items() if r == "filtered"]
        opened = [s for s, r in results.items() if r == "open"]
        shown = [f"{s} -> {address}:{port} {r}" for s, r in results.items()]
        if blocked or opened:
            froms = [s for s, r in results.items() if r != "open"]
            _p(out, target, "port-blocked", f"TCP {port} of {target} is blocked from "
               f"{', '.join(froms)}", "Hazelcast members talk over TCP 5701+: the node is "
               "cut off (and OpenJPA's remote commits, TCP 5636, likely too)",
               f"open TCP {port}-{port + 2} and 5636 between the cluster's nodes in {target}'s "
               "firewall (network.firewall: manage lets omwizard do it)",
               seen=",".join(froms), evidence=shown)
        elif running.get(target):
            _p(out, target, "port-closed", f"nothing accepts TCP {port} on {target}",
               "its Hazelcast member is not listening where the others look for it",
               "read doctor.interfaces and doctor.overrides for this node", evidence=shown)
    return out


def judge_openjpa_port(seen: Mapping[str, Mapping[str, str]],
                       addresses: Mapping[str, str]) -> Problems:
    """OpenJPA's remote commits (TCP 5636): a target some node cannot reach while a firewall
    drops it, or rejects it where others get through. Refused by every node says only that
    nothing listens (OpenMeetings not running, or the provider off: database.remote-commit
    says which), so it is not a finding here."""
    out: Problems = {}
    port = OPENJPA_PORT
    for target, address in addresses.items():
        results = {src: got[address] for src, got in seen.items()
                   if src != target and address in got}
        blocked = [s for s, r in results.items() if r == "filtered"]
        opened = [s for s, r in results.items() if r == "open"]
        if not (blocked or opened) or all(r == "open" for r in results.values()):
            continue
        froms = [s for s, r in results.items() if r != "open"]
        _p(out, target, "openjpa-port-blocked", f"TCP {port} (OpenJPA remote commits) of "
           f"{target} is blocked from {', '.join(froms)}",
           "OpenJPA tells the other nodes about each commit over TCP 5636: without it their "
           "caches serve stale rooms, users and settings",
           f"open TCP {port} between the cluster's nodes in {target}'s firewall "
           "(network.firewall: manage lets omwizard do it)",
           seen=",".join(froms), evidence=[f"{s} -> {address}:{port} {r}"
                                           for s, r in results.items()])
    return out
