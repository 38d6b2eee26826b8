"""The firewall between the nodes: what filters packets on a node, and whether the cluster's
own traffic passes it.

Read (declared facts, one round trip per node): `nft -j list ruleset`, `iptables-save`,
firewalld's default zone, services and omwizard's ipset, `ufw status verbose`, and which
persistence files exist. Judged (pure): every path the cluster needs INTO this node
(`required_openings`) is run through the node's input chains (ufw's rules in order, firewalld's
zone) as a new connection from the peer's address: pass, blocked (with the chain, rule or
default that drops it) or unknown (a rule omwizard cannot evaluate: a named set, an interface,
a rate limit). omwizard's own rules carry the comment `omwizard:<cluster>` (`tag`; firewalld:
their source is the cluster's ipset), so they are recognised, compared with what the plan
wants now (a node added or removed) and removed exactly.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omwizard.configs.firewall import firewalld_ipset, ipt_persist, nft_persist, tag
from omwizard.facts.base import Fact, StepData

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

HAZELCAST_PORTS = (5701, 5703)  # a member takes the first free of 5701-5703
OPENJPA_PORT = 5636  # OpenJPA's TCP remote commit provider
NFS_PORTS = (("tcp", 2049, 2049, "NFS"), ("tcp", 111, 111, "rpcbind"),
             ("udp", 111, 111, "rpcbind"))
NFT_FILES = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
IPTABLES_FILES = ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables")
PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"
# tables iptables-nft creates: judged through iptables-save, not as native nftables
XTABLES = {"filter", "nat", "mangle", "raw", "security"}
XT_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}




# -- what must pass -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """One path into a node: from `src` (its address) on proto ports lo..hi, for `what`."""

    src: str
    address: str
    proto: str  # tcp | udp
    lo: int
    hi: int
    what: str

    @property
    def ports(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"

    def describe(self, dst: str) -> str:
        return f"{self.src} → {dst} {self.proto.upper()} {self.ports} ({self.what})"

    @property
    def atom(self) -> tuple[str, str, int, int]:
        return (self.proto, self.address, self.lo, self.hi)


def required_openings(plan: Plan, node: Node) -> tuple[Opening, ...]:
    """Every path the cluster needs into `node`: Hazelcast 5701-5703/tcp, OpenJPA 5636/tcp and
    (join multicast) the multicast port/udp from the other OM nodes; the DB port from the OM
    nodes when this node is the DB host; NFS from the OM nodes when it is the NFS server."""
    out: list[Opening] = []
    peers = [n for n in plan.om_nodes if n.name != node.name]
    if node.is_om:
        for peer in peers:
            out.append(Opening(peer.name, peer.address, "tcp", *HAZELCAST_PORTS, "Hazelcast"))
            out.append(Opening(peer.name, peer.address, "tcp", OPENJPA_PORT, OPENJPA_PORT,
                               "OpenJPA remote commits"))
            if plan.network.join == "multicast":
                port = plan.network.multicast_port
                out.append(Opening(peer.name, peer.address, "udp", port, port,
                                   "Hazelcast multicast join"))
    db = plan.database
    if node.is_database and db.host in (node.address, node.host):
        for peer in peers:
            out.append(Opening(peer.name, peer.address, "tcp", db.port, db.port, "database"))
    if node.is_storage and plan.storage.kind == "nfs":
        for peer in peers:
            for proto, lo, hi, what in NFS_PORTS:
                out.append(Opening(peer.name, peer.address, proto, lo, hi, what))
    return tuple(out)


def wanted_atoms(openings: Iterable[Opening]) -> frozenset[tuple[str, str, int, int]]:
    return frozenset(o.atom for o in openings)


# -- nftables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NftChain:
    family: str
    table: str
    name: str
    hook: str | None
    policy: str
    rules: tuple[dict[str, Any], ...]  # each: {"expr": [...], "comment": str|None}

    @property
    def where(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True)
class NftRuleset:
    chains: tuple[NftChain, ...]

    def chain(self, family: str, table: str, name: str) -> NftChain | None:
        return next((c for c in self.chains
                     if (c.family, c.table, c.name) == (family, table, name)), None)

    def input_chains(self) -> list[NftChain]:
        """Base chains on the input hook that see IPv4, native (not iptables-nft's)."""
        return [c for c in self.chains if c.hook == "input" and c.family in ("inet", "ip")
                and not (c.family == "ip" and c.table in XTABLES and c.name in XT_CHAINS)]


def parse_nft(output: str) -> NftRuleset | None:
    """`nft -j list ruleset` -> NftRuleset; None when nft is absent or printed no JSON."""
    text = output.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    items = data.get("nftables", []) if isinstance(data, dict) else []
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "chain" in item:
            c = item["chain"]
            chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(
                {"expr": r.get("expr", []), "comment": r.get("comment")})
    return NftRuleset(tuple(
        NftChain(f, t, n, c.get("hook"), c.get("policy", "accept"),
                 tuple(rules.get((f, t, n), [])))
        for (f, t, n), c in chains.items()))


@dataclass(frozen=True)
class _Packet:
    """A new connection's first packet from `src` to `port`/`proto`, arriving on the wire."""

    src: str
    proto: str
    port: int


def _in_value(right: Any, probe: Any) -> bool | None:
    """Does `probe` match the right-hand side of an nft match (value, set, range, prefix)?"""
    if isinstance(right, dict):
        if "set" in right:
            got = [_in_value(v, probe) for v in right["set"]]
            if any(g is True for g in got):
                return True
            return None if any(g is None for g in got) else False
        if "range" in right:
            lo, hi = right["range"]
            if isinstance(probe, int) and isinstance(lo, int) and isinstance(hi, int):
                return lo <= probe <= hi
            return _addr_range(lo, hi, probe)
        if "prefix" in right:
            p = right["prefix"]
            try:
                net = ipaddress.ip_network(f"{p['addr']}/{p['len']}", strict=False)
                return ipaddress.ip_address(str(probe)) in net
            except ValueError:
                return None
        return None
    if isinstance(right, list):
        return any(_in_value(v, probe) is True for v in right)
    if isinstance(right, str) and right.startswith("@"):
        return None  # a named set: its elements are not in the rule
    if isinstance(probe, int):
        return right == probe
    return str(right) == str(probe)


def _addr_range(lo: Any, hi: Any, probe: Any) -> bool | None:
    try:
        first, got, last = (ipaddress.IPv4Address(str(v)) for v in (lo, probe, hi))
        return first <= got <= last
    except (ValueError, TypeError):
        return None


def _nft_match(m: Mapping[str, Any], pkt: _Packet) -> bool | None:
    """One `match` expression on the packet: True, False, or None (cannot tell)."""
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    if not isinstance(left, dict):
        return None
    probe: Any = None
    implied: bool = True  # a `tcp dport` match only matches tcp packets, whatever the op
    if "payload" in left:
        pl = left["payload"]
        proto, fld = pl.get("protocol"), pl.get("field")
        if proto == "ip" and fld == "saddr":
            probe = pkt.src
        elif proto == "ip" and fld == "protocol":
            probe = pkt.proto
        elif proto in ("tcp", "udp") and fld == "dport":
            implied = proto == pkt.proto
            probe = pkt.port
        elif proto == "th" and fld == "dport":
            probe = pkt.port
        else:
            return None
    elif "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto":
            probe = pkt.proto
        elif key == "nfproto":
            probe = "ipv4"
        elif key in ("iifname", "iif"):
            if right == "lo":
                return op == "!="
            return None
        else:
            return None
    elif "ct" in left and left["ct"].get("key") == "state":
        probe = "new"
    else:
        return None
    if not implied:
        return False
    hit = _in_value(right, probe)
    if hit is None:
        return None
    return (not hit) if op == "!=" else hit


IGNORED_STATEMENTS = {"counter", "log", "comment"}
VERDICTS = {"accept", "drop", "reject", "jump", "goto", "return"}


def _nft_rule(expr: list[dict[str, Any]], pkt: _Packet) -> tuple[bool | None, str | None, Any]:
    """(matches?, verdict name or None, verdict argument) for one rule."""
    matched: bool | None = True
    verdict: str | None = None
    arg: Any = None
    for e in expr:
        if not isinstance(e, dict) or not e:
            continue
        key = next(iter(e))
        if key == "match":
            got = _nft_match(e["match"], pkt)
            if got is False:
                matched = False
            elif got is None and matched is True:
                matched = None
        elif key in VERDICTS:
            verdict, arg = key, e[key]
        elif key not in IGNORED_STATEMENTS:
            if matched is True:
                matched = None  # limit, quota, xt, fib...: cannot tell
    return matched, verdict, arg


def _nft_eval(rs: NftRuleset, chain: NftChain, pkt: _Packet, depth: int = 0
              ) -> tuple[str, str, set[str]]:
    """(accept | drop | continue, where, outcomes an unreadable rule could have led to)."""
    maybe: set[str] = set()
    for rule in chain.rules:
        matched, verdict, arg = _nft_rule(rule["expr"], pkt)
        if verdict is None or matched is False:
            continue
        if verdict in ("jump", "goto"):
            target = rs.chain(chain.family, chain.table, str((arg or {}).get("target", "")))
            if target is None or depth > 16:
                maybe.add("unknown")
                continue
            got, where, more = _nft_eval(rs, target, pkt, depth + 1)
            if matched is None:
                maybe.update({got, *more} - {"continue"})
                continue
            maybe |= more
            if got != "continue":
                return got, where, maybe
            continue
        outcome = {"accept": "accept", "return": "continue"}.get(verdict, "drop")
        if matched is None:
            maybe.add(outcome)
            continue
        return outcome, f"nftables {chain.where} ({verdict} rule)", maybe
    if chain.hook is None:
        return "continue", "", maybe
    outcome = "accept" if chain.policy == "accept" else "drop"
    return outcome, f"nftables {chain.where} (policy {chain.policy})", maybe


def _settle(outcome: str, maybe: set[str]) -> str:
    final = PASS if outcome == "accept" else BLOCKED
    others = {PASS if m == "accept" else BLOCKED if m == "drop" else UNKNOWN for m in maybe}
    return final if others <= {final} else UNKNOWN


def nft_verdict(rs: NftRuleset, opening: Opening) -> tuple[str, str]:
    """(pass | blocked | unknown, where) for the opening's first port through every input
    base chain (a packet must be accepted by all of them)."""
    result, where = PASS, ""
    for port in sorted({opening.lo, opening.hi}):
        pkt = _Packet(opening.address, opening.proto, port)
        for chain in rs.input_chains():
            outcome, at, maybe = _nft_eval(rs, chain, pkt)
            got = _settle(outcome, maybe)
            if got == BLOCKED:
                return BLOCKED, at
            if got == UNKNOWN and result == PASS:
                result, where = UNKNOWN, f"nftables {chain.where}"
    return result, where


def nft_blocking_chains(rs: NftRuleset, openings: Iterable[Opening]) -> list[NftChain]:
    """The input base chains where some opening is not surely accepted: ours go there."""
    out = []
    for chain in rs.input_chains():
        for o in openings:
            outcome, _, maybe = _nft_eval(rs, chain, _Packet(o.address, o.proto, o.lo))
            if _settle(outcome, maybe) != PASS:
                out.append(chain)
                break
    return out


def nft_ours(rs: NftRuleset, cluster: str) -> dict[str, frozenset[tuple[str, str, int, int]]]:
    """{chain where: the atoms (proto, source, lo, hi) of omwizard's rules in it}."""
    out: dict[str, frozenset[tuple[str, str, int, int]]] = {}
    for chain in rs.chains:
        atoms: set[tuple[str, str, int, int]] = set()
        for rule in chain.rules:
            if rule.get("comment") != tag(cluster):
                continue
            atoms |= _nft_atoms(rule["expr"])
        if atoms or any(r.get("comment") == tag(cluster) for r in chain.rules):
            out[chain.where] = frozenset(atoms)
    return out


def _values(right: Any) -> list[Any]:
    if isinstance(right, dict) and "set" in right:
        return list(right["set"])
    return [right]


def _nft_atoms(expr: list[dict[str, Any]]) -> set[tuple[str, str, int, int]]:
    """The atoms of one rule of the shape omwizard writes: ip saddr SET proto dport SET."""
    srcs: list[str] = []
    proto = ""
    ports: list[tuple[int, int]] = []
    for e in expr:
        m = e.get("match") if isinstance(e, dict) else None
        if not m or not isinstance(m.get("left"), dict):
            continue
        pl = m["left"].get("payload", {})
        if pl.get("field") == "saddr":
            srcs = [str(v) for v in _values(m["right"])]
        elif pl.get("field") == "dport":
            proto = str(pl.get("protocol"))
            for v in _values(m["right"]):
                if isinstance(v, dict) and "range" in v:
                    ports.append((int(v["range"][0]), int(v["range"][1])))
                else:
                    ports.append((int(v), int(v)))
    return {(proto, s, lo, hi) for s in srcs for lo, hi in ports}


# -- iptables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IptRuleset:
    """The filter table of `iptables-save`: chain policies and rules (as argv words)."""

    policies: Mapping[str, str]
    rules: Mapping[str, tuple[tuple[str, ...], ...]]

    @property
    def filters_input(self) -> bool:
        return self.policies.get("INPUT", "ACCEPT") != "ACCEPT" or bool(self.rules.get("INPUT"))


def parse_iptables_save(output: str) -> IptRuleset | None:
    """`iptables-save` -> IptRuleset of its *filter table; None when iptables is absent."""
    if "IPTABLES-ABSENT" in output:
        return None
    policies: dict[str, str] = {}
    rules: dict[str, list[tuple[str, ...]]] = {}
    table = None
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table != "filter" or not line or line.startswith("#"):
            continue
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            policies[name] = policy
            rules.setdefault(name, [])
        elif line.startswith("-A "):
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            rules.setdefault(words[1], []).append(tuple(words[2:]))
    return IptRuleset(policies, {k: tuple(v) for k, v in rules.items()})


def _ipt_rule(words: tuple[str, ...], pkt: _Packet) -> tuple[bool | None, str | None]:
    """(matches?, target) for one rule's words (after `-A CHAIN`)."""
    matched: bool | None = True
    target = None
    i, negate = 0, False

    def hit(value: bool | None) -> None:
        nonlocal matched, negate
        if value is not None and negate:
            value = not value
        negate = False
        if value is False:
            matched = False
        elif value is None and matched is True:
            matched = None

    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "!":
            negate = True
            i += 1
            continue
        if w in ("-j", "-g"):
            target = nxt
            i += 2
            continue
        if w in ("-s", "--source"):
            try:
                hit(any(ipaddress.ip_address(pkt.src) in ipaddress.ip_network(p, strict=False)
                        for p in nxt.split(",")))
            except ValueError:
                hit(None)
        elif w in ("-p", "--protocol"):
            hit(nxt in (pkt.proto, "all"))
        elif w in ("--dport", "--destination-port"):
            hit(_ipt_ports(nxt, pkt.port))
        elif w in ("--dports", "--destination-ports"):
            hit(_ipt_ports(nxt, pkt.port))
        elif w in ("-i", "--in-interface"):
            hit(False if nxt == "lo" else None)
        elif w in ("--ctstate", "--state"):
            hit("NEW" in nxt.split(","))
        elif w == "-m" and nxt in ("tcp", "udp", "multiport", "comment", "conntrack", "state"):
            pass
        elif w == "--comment":
            pass
        elif w.startswith("--reject-with") or w.startswith("--log"):
            pass
        else:
            hit(None)
            i += 1
            continue
        i += 2
    if target is None:
        return matched, None
    return matched, target


def _ipt_ports(spec: str, port: int) -> bool | None:
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition(":")
            if int(lo) <= port <= int(hi or lo):
                return True
    except ValueError:
        return None
    return False


def _ipt_eval(rs: IptRuleset, chain: str, pkt: _Packet, depth: int = 0
              ) -> tuple[str, str, set[str]]:
    maybe: set[str] = set()
    for words in rs.rules.get(chain, ()):
        matched, target = _ipt_rule(words, pkt)
        if target is None or matched is False:
            continue
        if target in rs.policies and target not in ("INPUT", "FORWARD", "OUTPUT"):
            if depth > 16:
                maybe.add("unknown")
                continue
            got, where, more = _ipt_eval(rs, target, pkt, depth + 1)
            if matched is None:
                maybe.update({got, *more} - {"continue"})
                continue
            maybe |= more
            if got != "continue":
                return got, where, maybe
            continue
        outcome = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "drop",
                   "RETURN": "continue"}.get(target)
        if outcome is None:  # LOG, a target this code does not know: not a decision
            if target not in ("LOG", "NFLOG"):
                maybe.add("unknown")
            continue
        if matched is None:
            maybe.add(outcome)
            continue
        return outcome, f"iptables {chain} ({target} rule)", maybe
    if chain != "INPUT":
        return "continue", "", maybe
    policy = rs.policies.get("INPUT", "ACCEPT")
    return ("accept" if policy == "ACCEPT" else "drop"), f"iptables INPUT (policy {policy})", maybe


def ipt_verdict(rs: IptRuleset, opening: Opening) -> tuple[str, str]:
    result, where = PASS, ""
    for port in sorted({opening.lo, opening.hi}):
        outcome, at, maybe = _ipt_eval(rs, "INPUT", _Packet(opening.address, opening.proto, port))
        got = _settle(outcome, maybe)
        if got == BLOCKED:
            return BLOCKED, at
        if got == UNKNOWN:
            result, where = UNKNOWN, "iptables INPUT"
    return result, where


def ipt_ours(rs: IptRuleset, cluster: str) -> frozenset[tuple[str, str, int, int]]:
    """The atoms of omwizard's rules in INPUT (`-m comment --comment omwizard:<cluster>`)."""
    atoms: set[tuple[str, str, int, int]] = set()
    for words in rs.rules.get("INPUT", ()):
        if tag(cluster) not in words:
            continue
        opts = dict(zip(words[::1], words[1::1], strict=False))
        src = opts.get("-s", "").removesuffix("/32")
        proto = opts.get("-p", "")
        for part in opts.get("--dports", opts.get("--dport", "")).split(","):
            lo, _, hi = part.partition(":")
            if lo.isdigit():
                atoms.add((proto, src, int(lo), int(hi or lo)))
    return frozenset(atoms)


def has_ipt_ours(rs: IptRuleset, cluster: str) -> bool:
    return any(tag(cluster) in words for words in rs.rules.get("INPUT", ()))


# -- firewalld -----------------------------------------------------------------------------------
# Judged in the default zone, as firewalld applies it to a new connection: a rich rule that
# drops or rejects, else an accept (rich rule, zone port or service), else the zone's target.
# omwizard's rich rules take their sources from the cluster's ipset (configs.firewall).

FIREWALLD_SECTIONS = ("state", "runtime", "permanent", "ipset", "permanent ipset", "services")
PortRange = tuple[str, int, int]  # (proto, lo, hi)


@dataclass(frozen=True)
class RichRule:
    """The parts of a firewalld rich rule the judgement reads; `other`: parts it cannot."""

    text: str
    family: str = ""
    source: str = ""  # address or network
    ipset: str = ""
    invert: bool = False  # source NOT ...
    port: PortRange | None = None
    service: str = ""
    verdict: str = ""  # accept | reject | drop | "" (log/audit only)
    other: bool = False


def parse_rich(text: str) -> RichRule:
    """One line of `firewall-cmd --list-rich-rules` (`man firewalld.richlanguage`)."""
    try:
        words = shlex.split(text)
    except ValueError:
        return RichRule(text, other=True)
    f: dict[str, Any] = {"text": text}
    element, other = "", False
    proto, ports = "", ""
    for w in words:
        key, eq, value = w.partition("=")
        if not eq:
            if w in ("accept", "reject", "drop"):
                f["verdict"], element = w, w
            elif w == "NOT" and element == "source":
                f["invert"] = True
            elif w in ("rule", "source", "port", "service", "log", "audit", "limit", "mark",
                       "destination", "protocol", "icmp-block", "icmp-type", "masquerade",
                       "forward-port", "source-port"):
                element = w
                if w not in ("rule", "source", "port", "service", "log", "audit", "limit"):
                    other = True
            else:
                other = True
            continue
        if element == "rule" and key == "family":
            f["family"] = value
        elif element == "rule" and key == "priority":
            other = other or value != "0"
        elif element == "source" and key == "address":
            f["source"] = value
        elif element == "source" and key == "ipset":
            f["ipset"] = value
        elif element == "port" and key == "port":
            ports = value
        elif element == "port" and key == "protocol":
            proto = value
        elif element == "service" and key == "name":
            f["service"] = value
        elif element in ("log", "audit", "limit", "reject"):
            continue  # log prefix/level, limit value, reject type: not the verdict's reach
        else:
            other = True
    if ports:
        lo, _, hi = ports.partition("-")
        if lo.isdigit() and (hi or lo).isdigit():
            f["port"] = (proto, int(lo), int(hi or lo))
        else:
            other = True
    return RichRule(**f, other=other)


def _port_list(value: str) -> tuple[PortRange, ...]:
    """`5701-5703/tcp 8080/tcp` (a zone's or a service's ports)."""
    out = []
    for item in value.split():
        ports, _, proto = item.partition("/")
        lo, _, hi = ports.partition("-")
        if lo.isdigit() and (hi or lo).isdigit():
            out.append((proto, int(lo), int(hi or lo)))
    return tuple(out)


@dataclass(frozen=True)
class Firewalld:
    """The default zone as firewalld runs it (and as it is configured permanently), and
    omwizard's ipset of the cluster (None: it does not exist)."""

    active: bool
    zone: str
    rich_rules: tuple[str, ...] = ()  # runtime
    permanent: tuple[str, ...] = ()  # permanent rich rules
    target: str = "default"
    ports: tuple[PortRange, ...] = ()
    services: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # sources bound to the zone
    service_ports: Mapping[str, tuple[PortRange, ...] | None] = field(default_factory=dict)
    ipset: tuple[str, ...] | None = None  # runtime entries of omwizard's ipset
    permanent_ipset: tuple[str, ...] | None = None
    in_sync: bool = True  # the runtime zone is the permanent one (a reload loses nothing)


def _sections(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("== ") and line[3:].strip() in FIREWALLD_SECTIONS:
            current = line[3:].strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def _zone_fields(lines: list[str]) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """`firewall-cmd --list-all`: (zone name, its `key: value` lines, rich rules)."""
    name = lines[0].split()[0] if lines and lines[0].strip() else ""
    fields: dict[str, str] = {}
    rich: list[str] = []
    in_rich = False
    for line in lines[1:]:
        if in_rich and line.startswith("\t"):
            rich.append(line.strip())
            continue
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value.strip()
            in_rich = key == "rich rules"
    return name, fields, tuple(r for r in rich if r)


def _ipset_entries(lines: list[str]) -> tuple[str, ...] | None:
    """`firewall-cmd --info-ipset=NAME`; None when firewalld says INVALID_IPSET."""
    if not lines or "INVALID_IPSET" in " ".join(lines) or not lines[0].strip():
        return None
    for line in lines[1:]:
        key, sep, value = line.strip().partition(":")
        if sep and key == "entries":
            return tuple(value.split())
    return ()


def _service_ports(lines: list[str]) -> dict[str, tuple[PortRange, ...] | None]:
    """`firewall-cmd --info-service=S` for each service: its ports; None when a service says
    more than ports (a destination, includes, protocols, helpers): judged unknown."""
    out: dict[str, tuple[PortRange, ...] | None] = {}
    v6only: set[str] = set()
    name = ""
    for line in lines:
        if line and not line.startswith(" "):
            name = line.strip()
            out[name] = ()
            continue
        key, sep, value = line.strip().partition(":")
        if not sep or not name:
            continue
        if key == "ports":
            current = out.get(name)
            if current is not None:
                out[name] = current + _port_list(value)
        elif key == "destination" and value.split() and all(
                d.startswith("ipv6:") for d in value.split()):
            v6only.add(name)  # an IPv6-only service (dhcpv6-client): nothing for IPv4 peers
        elif key in ("destination", "includes", "protocols", "source-ports", "helpers") \
                and value.strip():
            out[name] = None
    return {k: (() if k in v6only and v is not None else v) for k, v in out.items()}


def parse_firewalld(output: str) -> Firewalld | None:
    """Our probe's sections: `--state`, the default zone's `--list-all` (runtime and
    permanent), omwizard's ipset (`--info-ipset`, runtime and permanent), `--info-service`."""
    if "FIREWALLD-ABSENT" in output:
        return None
    sec = _sections(output)
    state = " ".join(sec.get("state", [])).strip()
    zone, fields, rich = _zone_fields(sec.get("runtime", []))
    pzone, pfields, prich = _zone_fields(sec.get("permanent", []))
    return Firewalld(
        active=state == "running",
        zone=zone or pzone or "public",
        rich_rules=rich,
        permanent=prich,
        target=fields.get("target", "default"),
        ports=_port_list(fields.get("ports", "")),
        services=tuple(fields.get("services", "").split()),
        sources=tuple(fields.get("sources", "").split()),
        service_ports=_service_ports(sec.get("services", [])),
        ipset=_ipset_entries(sec.get("ipset", [])),
        permanent_ipset=_ipset_entries(sec.get("permanent ipset", [])),
        # firewalld lists a zone's rich rules in no fixed order
        in_sync=(zone, fields, sorted(rich)) == (pzone, pfields, sorted(prich)),
    )


def _in_source(source: str, address: str) -> bool | None:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(source, strict=False)
    except ValueError:
        return None  # a MAC address or an ipset of another kind


def _covers(ranges: Iterable[PortRange], proto: str, port: int) -> bool:
    return any(p == proto and lo <= port <= hi for p, lo, hi in ranges)


def _rich_match(rule: RichRule, fw: Firewalld, ours: str, pkt: _Packet) -> bool | None:
    if rule.family == "ipv6":
        return False
    hit: bool | None = True
    if rule.source:
        got = _in_source(rule.source, pkt.src)
        hit = None if got is None else (got != rule.invert)
    elif rule.ipset:
        entries = fw.ipset if rule.ipset == ours else None
        hit = None if entries is None else ((pkt.src in entries) != rule.invert)
    if hit is False:
        return False
    if rule.port is not None:
        if not _covers((rule.port,), pkt.proto, pkt.port):
            return False
    elif rule.service:
        ports = fw.service_ports.get(rule.service)
        if ports is None:
            hit = None
        elif not _covers(ports, pkt.proto, pkt.port):
            return False
    elif not rule.source and not rule.ipset:
        hit = None  # a rule of elements this judgement does not read
    return None if rule.other else hit


def firewalld_verdict(fw: Firewalld, opening: Opening, cluster: str) -> tuple[str, str]:
    """(pass | blocked | unknown, where) for a new connection into the default zone."""
    ours = firewalld_ipset(cluster)
    result, where = PASS, ""
    for port in sorted({opening.lo, opening.hi}):
        pkt = _Packet(opening.address, opening.proto, port)
        maybe: set[str] = set()
        outcome, at = "", ""
        if any(_in_source(s, pkt.src) is not False for s in fw.sources):
            maybe.add("unknown")  # a source bound to this zone: firewalld may route it elsewhere
        for rule in map(parse_rich, fw.rich_rules):
            if not rule.verdict:
                continue
            got = _rich_match(rule, fw, ours, pkt)
            verdict = "accept" if rule.verdict == "accept" else "drop"
            if got is None:
                maybe.add(verdict)
            elif got and verdict == "drop":
                outcome, at = "drop", f"firewalld zone {fw.zone} (rich rule {rule.text})"
                break
            elif got and not outcome:
                outcome, at = "accept", f"firewalld zone {fw.zone} (rich rule)"
        if not outcome and _covers(fw.ports, pkt.proto, pkt.port):
            outcome, at = "accept", f"firewalld zone {fw.zone} (port)"
        if not outcome:
            for service in fw.services:
                ports = fw.service_ports.get(service)
                if ports is None:
                    maybe.add("accept")
                elif _covers(ports, pkt.proto, pkt.port):
                    outcome, at = "accept", f"firewalld zone {fw.zone} (service {service})"
        if not outcome:
            outcome = "accept" if fw.target == "ACCEPT" else "drop"
            at = f"firewalld zone {fw.zone} (target {fw.target})"
        got_verdict = _settle(outcome, maybe)
        if got_verdict == BLOCKED:
            return BLOCKED, at
        if got_verdict == UNKNOWN and result == PASS:
            result, where = UNKNOWN, f"firewalld zone {fw.zone}"
    return result, where


def firewalld_ours(fw: Firewalld, cluster: str, permanent: bool = False
                   ) -> frozenset[tuple[str, str, int, int]]:
    """The atoms omwizard's rich rules open: their ports times the cluster ipset's entries."""
    ours = firewalld_ipset(cluster)
    entries = (fw.permanent_ipset if permanent else fw.ipset) or ()
    rules = fw.permanent if permanent else fw.rich_rules
    atoms: set[tuple[str, str, int, int]] = set()
    for rule in map(parse_rich, rules):
        if rule.ipset == ours and rule.port is not None and rule.verdict == "accept":
            proto, lo, hi = rule.port
            atoms |= {(proto, src, lo, hi) for src in entries}
    return frozenset(atoms)


def has_firewalld_ours(fw: Firewalld, cluster: str) -> bool:
    ours = firewalld_ipset(cluster)
    return (fw.ipset is not None or fw.permanent_ipset is not None
            or any(parse_rich(r).ipset == ours for r in (*fw.rich_rules, *fw.permanent)))


# -- ufw -----------------------------------------------------------------------------------------
# Judged from `ufw status verbose` the way ufw applies it: its user rules in order, the first
# that matches decides, else the default incoming policy. ufw's before/after rules files (stock:
# replies, loopback, ICMP, DHCP, mDNS) let no new connection to the cluster's ports through.

_UFW_LINE = re.compile(r"^(?P<to>.+?)\s+(?P<action>ALLOW|DENY|REJECT|LIMIT)"
                       r"(?:\s(?P<dir>IN|OUT|FWD))?(?:\s+(?P<src>.*))?$")
_PAREN = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)")


@dataclass(frozen=True)
class UfwRule:
    """One rule line of `ufw status verbose`, as ufw prints it."""

    to: str
    action: str  # allow | deny | reject | limit
    direction: str  # in | out | fwd
    source: str
    comment: str = ""

    @property
    def v6(self) -> bool:
        return "(v6)" in self.to or "(v6)" in self.source

    @property
    def text(self) -> str:
        return f"{self.to} {self.action.upper()} {self.direction.upper()} {self.source}"

    def ports(self) -> tuple[str, tuple[tuple[int, int], ...]] | None:
        """(proto or "" for both, port ranges) of a plain `PORTS/proto` or `PORTS` To column
        (omwizard's shape); None for anything else."""
        words = _PAREN.sub("", self.to).split()
        return _ufw_ports(words[0]) if len(words) == 1 else None

    def match(self, pkt: _Packet) -> bool | None:
        """Does the rule take this new incoming connection? None: it may (an interface, a
        destination address, an application name, a source port)."""
        words = _PAREN.sub("", self.to).split()
        unsure = "on" in words  # `80/tcp on eth0`: bound to an interface
        if unsure:
            words = words[:words.index("on")]
        spec = None
        for word in words:
            if word == "Anywhere":
                continue
            got = _ufw_ports(word)
            if got is not None:
                spec = got
            else:
                unsure = True  # a destination address (`198.18.0.11 443/tcp`) or an app name
        if spec is not None:
            proto, ranges = spec
            if (proto and proto != pkt.proto) or not any(lo <= pkt.port <= hi
                                                         for lo, hi in ranges):
                return False
        src = _PAREN.sub("", self.source).split()
        if src and src[0] != "Anywhere":
            got_src = _in_source(src[0], pkt.src)
            if got_src is False:
                return False
            unsure = unsure or got_src is None
        unsure = unsure or len(src) > 1  # a source port or an interface
        return None if unsure else True


def _ufw_ports(word: str) -> tuple[str, tuple[tuple[int, int], ...]] | None:
    """`5636,5701:5703/tcp` -> ("tcp", ((5636, 5636), (5701, 5703))); `3306` -> ("", ...)."""
    spec, _, proto = word.partition("/")
    if proto not in ("", "tcp", "udp"):
        return None
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        if not (lo.isdigit() and (hi or lo).isdigit()):
            return None
        out.append((int(lo), int(hi or lo)))
    return proto, tuple(out)


@dataclass(frozen=True)
class Ufw:
    active: bool
    ours: frozenset[tuple[str, str, int, int]]
    default_in: str = ""  # deny | reject | allow ("" when inactive)
    rules: tuple[UfwRule, ...] = ()

    def our_rules(self, cluster: str) -> tuple[UfwRule, ...]:
        return tuple(r for r in self.rules if r.comment == tag(cluster))


def ufw_atoms(rule: UfwRule) -> set[tuple[str, str, int, int]]:
    """The atoms of a rule of the shape omwizard writes (PORTS/proto from one IPv4 source)."""
    spec = rule.ports()
    src = rule.source.split()
    if spec is None or not spec[0] or len(src) != 1 or rule.v6:
        return set()
    return {(spec[0], src[0], lo, hi) for lo, hi in spec[1]}


def parse_ufw(output: str, cluster: str = "") -> Ufw | None:
    """`ufw status verbose` (LC_ALL=C): active or not, the default incoming policy, the rules in
    order, and the atoms of the rules commented `omwizard:<cluster>`."""
    if "UFW-ABSENT" in output:
        return None
    lines = output.splitlines()
    active = any(line.strip().lower() == "status: active" for line in lines)
    default_in = ""
    rules: list[UfwRule] = []
    table = False
    for line in lines:
        if line.startswith("Default:"):
            m = re.search(r"(\w+) \(incoming\)", line)
            default_in = m.group(1) if m else ""
        elif line.startswith("--"):
            table = True
        elif table and line.strip():
            body, _, comment = line.partition(" # ")
            m = _UFW_LINE.match(body.rstrip())
            if m:
                rules.append(UfwRule(m["to"].strip(), m["action"].lower(),
                                     (m["dir"] or "IN").lower(), (m["src"] or "").strip(),
                                     comment.strip()))
    atoms: set[tuple[str, str, int, int]] = set()
    for rule in rules:
        if cluster and rule.comment == tag(cluster):
            atoms |= ufw_atoms(rule)
    return Ufw(active, frozenset(atoms), default_in, tuple(rules))


def ufw_verdict(ufw: Ufw, opening: Opening) -> tuple[str, str]:
    """(pass | blocked | unknown, where): ufw's incoming rules in order, then its default."""
    result, where = PASS, ""
    for port in sorted({opening.lo, opening.hi}):
        pkt = _Packet(opening.address, opening.proto, port)
        maybe: set[str] = set()
        outcome, at = "", ""
        for rule in ufw.rules:
            if rule.direction != "in" or rule.v6 != (":" in pkt.src):
                continue
            got = rule.match(pkt)
            if got is False:
                continue
            verdict = {"allow": "accept", "limit": "unknown"}.get(rule.action, "drop")
            if got is None or verdict == "unknown":
                maybe.add(verdict)
                continue
            outcome, at = verdict, f"ufw rule '{rule.text}'"
            break
        if not outcome:
            outcome = "accept" if ufw.default_in == "allow" else "drop"
            at = f"ufw (default {ufw.default_in or 'deny'} incoming)"
        got_verdict = _settle(outcome, maybe)
        if got_verdict == BLOCKED:
            return BLOCKED, at
        if got_verdict == UNKNOWN and result == PASS:
            result, where = UNKNOWN, "ufw"
    return result, where


# -- the facts ----------------------------------------------------------------------------------


NFT_RULESET: Fact[NftRuleset | None] = Fact(
    "nft_ruleset",
    lambda _p, _n: "if command -v nft >/dev/null 2>&1; then nft -j list ruleset; "
                   "else echo NFT-ABSENT; fi",
    parse_nft,
)
IPTABLES_RULES: Fact[IptRuleset | None] = Fact(
    "iptables_rules",
    lambda _p, _n: "if command -v iptables-save >/dev/null 2>&1; then iptables-save 2>/dev/null;"
                   " else echo IPTABLES-ABSENT; fi; true",
    parse_iptables_save,
)
def _firewalld_fact(plan: Plan, _node: Node) -> str:
    ipset = shlex.quote(f"--info-ipset={firewalld_ipset(plan.cluster.name)}")
    return (
        "if command -v firewall-cmd >/dev/null 2>&1; then export LC_ALL=C; "
        "s=$(firewall-cmd --state 2>&1); printf '== state\\n%s\\n' \"$s\"; "
        "if [ \"$s\" = running ]; then "  # installed but stopped: nothing more to read
        "echo '== runtime'; firewall-cmd --list-all 2>&1; "
        "echo '== permanent'; firewall-cmd --permanent --list-all 2>&1; "
        f"echo '== ipset'; firewall-cmd {ipset} 2>&1; "
        f"echo '== permanent ipset'; firewall-cmd --permanent {ipset} 2>&1; "
        "echo '== services'; for s in $(firewall-cmd --list-services 2>/dev/null); do "
        "firewall-cmd --info-service=\"$s\" 2>&1; done; fi; "
        "else echo FIREWALLD-ABSENT; fi; true")


FIREWALLD_STATE: Fact[Firewalld | None] = Fact("firewalld_state", _firewalld_fact,
                                               parse_firewalld)


def _ufw_fact(plan: Plan, _node: Node) -> str:
    return ("if command -v ufw >/dev/null 2>&1; then LC_ALL=C ufw status verbose 2>&1; "
            "else echo UFW-ABSENT; fi; true")


UFW_STATUS: Fact[str] = Fact("ufw_status", _ufw_fact, lambda out: out)


# -- the judgement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PathCheck:
    """One required path into the node and what the node's firewall does with it."""

    opening: Opening
    verdict: str  # pass | blocked | unknown
    by: str = ""  # the chain (or tool) that decided


@dataclass(frozen=True)
class FirewallView:
    """Everything read of one node's packet filters."""

    nft: NftRuleset | None
    iptables: IptRuleset | None
    firewalld: Firewalld | None
    ufw: Ufw | None

    @property
    def tools(self) -> tuple[str, ...]:
        """What filters packets here, in the order omwizard would manage it."""
        if self.firewalld is not None and self.firewalld.active:
            return ("firewalld",)
        if self.ufw is not None and self.ufw.active:
            return ("ufw",)
        out = []
        if self.nft is not None and self.nft.input_chains():
            out.append("nftables")
        if self.iptables is not None and self.iptables.filters_input:
            out.append("iptables")
        return tuple(out)


@dataclass(frozen=True)
class FirewallState(StepData):
    """The firewall check's judgement: the tools that filter, each required path's verdict,
    where omwizard's rules go (nft chains), whether its rules are stale (a node added or
    removed since) and which persistence files lack them."""

    kind = "network-firewall"
    tools: tuple[str, ...]
    paths: tuple[PathCheck, ...]
    nft_chains: tuple[tuple[str, str, str], ...] = ()  # (family, table, chain) to open in
    stale: tuple[str, ...] = ()  # tools holding omwizard rules that differ from the plan
    unpersisted: tuple[str, ...] = ()  # persistence files whose omwizard block is out of date
    zone: str = ""
    iptables: bool = False  # omwizard's rules belong in iptables INPUT (needed or there)
    stale_sources: tuple[str, ...] = ()  # addresses omwizard's rules open to, not in the plan
    # firewalld: omwizard's ipset must be created (permanent, then a reload) while the running
    # zone differs from the permanent one: the reload would drop those runtime-only changes
    reload_loses: bool = False

    @property
    def blocked(self) -> tuple[PathCheck, ...]:
        return tuple(p for p in self.paths if p.verdict == BLOCKED)

    @property
    def unknown(self) -> tuple[PathCheck, ...]:
        return tuple(p for p in self.paths if p.verdict == UNKNOWN)


def judge_firewall(view: FirewallView, openings: tuple[Opening, ...], cluster: str
                   ) -> FirewallState:
    """Each required path through every tool that filters (blocked in one: blocked)."""
    tools = view.tools
    wanted = wanted_atoms(openings)
    paths = []
    for o in openings:
        verdict, by = PASS, ""
        for tool in tools:
            got, at = _tool_verdict(view, tool, o, cluster)
            if got == BLOCKED:
                verdict, by = BLOCKED, at
                break
            if got == UNKNOWN and verdict == PASS:
                verdict, by = UNKNOWN, at
        paths.append(PathCheck(o, verdict, by))
    stale: list[str] = []
    ours_atoms: set[tuple[str, str, int, int]] = set()
    chains: list[tuple[str, str, str]] = []
    if "nftables" in tools and view.nft is not None:
        ours = nft_ours(view.nft, cluster)
        if any(atoms != wanted for atoms in ours.values()):
            stale.append("nftables")
        ours_atoms.update(*ours.values())
        chains = [(c.family, c.table, c.name) for c in view.nft.input_chains()
                  if c.where in ours or c in nft_blocking_chains(view.nft, openings)]
    if view.iptables is not None and has_ipt_ours(view.iptables, cluster):
        ours_atoms |= ipt_ours(view.iptables, cluster)
        if ipt_ours(view.iptables, cluster) != wanted:
            stale.append("iptables")
    if view.ufw is not None and view.ufw.ours:
        ours_atoms |= view.ufw.ours
        if view.ufw.ours != wanted:
            stale.append("ufw")
    fw = view.firewalld
    reload_loses = False
    if fw is not None and fw.active and has_firewalld_ours(fw, cluster):
        live, kept = firewalld_ours(fw, cluster), firewalld_ours(fw, cluster, permanent=True)
        ours_atoms |= live | kept
        if live != wanted or kept != wanted:
            stale.append("firewalld")
    if fw is not None and "firewalld" in tools and fw.ipset is None and not fw.in_sync:
        reload_loses = True
    ipt = view.iptables is not None and (
        has_ipt_ours(view.iptables, cluster)
        or ("iptables" in tools and any(ipt_verdict(view.iptables, o)[0] != PASS
                                        for o in openings)))
    zone = fw.zone if fw is not None else ""
    sources = {a[1] for a in wanted}
    gone = sorted({a[1] for a in ours_atoms} - sources)
    return FirewallState(tools, tuple(paths), tuple(chains), tuple(stale), (), zone, ipt,
                         tuple(gone), reload_loses)


def _tool_verdict(view: FirewallView, tool: str, o: Opening, cluster: str) -> tuple[str, str]:
    if tool == "nftables" and view.nft is not None:
        return nft_verdict(view.nft, o)
    if tool == "iptables" and view.iptables is not None:
        return ipt_verdict(view.iptables, o)
    if tool == "firewalld" and view.firewalld is not None:
        return firewalld_verdict(view.firewalld, o, cluster)
    if tool == "ufw" and view.ufw is not None:
        return ufw_verdict(view.ufw, o)
    return PASS, ""


def persistence_gaps(state: FirewallState, files: Mapping[str, str | None],
                     openings: Iterable[Opening], cluster: str) -> tuple[str, ...]:
    """The persistence files of the tools omwizard manages here whose omwizard block is not
    what the plan wants now (absent files, and files that do not define the table, are not
    gaps: there is nothing omwizard can persist into)."""
    wanted = sorted(wanted_atoms(openings))
    gaps = []
    for path in NFT_FILES:
        text = files.get(path)
        if text is None:
            continue
        for fam, table, chain in state.nft_chains:
            if nft_persist(text, wanted, fam, table, chain, cluster) != text:
                gaps.append(path)
                break
    if state.iptables:
        for path in IPTABLES_FILES:
            text = files.get(path)
            if text is not None and ipt_persist(text, wanted, cluster) != text:
                gaps.append(path)
    return tuple(gaps)
