"""The firewall between the nodes: what filters packets on a node, and whether the cluster's
own traffic passes it.

Read (declared facts, one round trip per node): `nft -j list ruleset`, `iptables-save`,
firewalld's state and rich rules, `ufw status`, and which persistence files exist. Judged
(pure): every path the cluster needs INTO this node (`required_openings`) is run through the
node's input chains as a new connection from the peer's address: pass, blocked (with the
chain that drops it) or unknown (a rule omwizard cannot evaluate, a named set, firewalld or
ufw without omwizard's own rules). omwizard's own rules carry the comment `omwizard:<cluster>`
(`tag`), so they are recognised, compared with what the plan wants now (a node added or
removed) and removed exactly.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omwizard.configs.firewall import firewalld_rich, ipt_persist, nft_persist, tag
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


# -- firewalld and ufw ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Firewalld:
    active: bool
    zone: str
    rich_rules: tuple[str, ...]  # runtime
    permanent: tuple[str, ...]


def parse_firewalld(output: str) -> Firewalld | None:
    """Our probe's output: `state: running`, `zone: public`, then `rich: ...`/`perm: ...`."""
    if "FIREWALLD-ABSENT" in output:
        return None
    state, zone, rich, perm = "", "", [], []
    for line in output.splitlines():
        key, _, value = line.partition(": ")
        if key == "state":
            state = value.strip()
        elif key == "zone":
            zone = value.strip()
        elif key == "rich" and value.strip():
            rich.append(value.strip())
        elif key == "perm" and value.strip():
            perm.append(value.strip())
    return Firewalld(state == "running", zone or "public", tuple(rich), tuple(perm))


@dataclass(frozen=True)
class Ufw:
    active: bool
    ours: frozenset[tuple[str, str, int, int]]


def parse_ufw(output: str, cluster: str = "") -> Ufw | None:
    """`ufw status`: active or not, and the atoms of rules commented `omwizard:<cluster>`."""
    if "UFW-ABSENT" in output:
        return None
    active = any(line.strip().lower() == "status: active" for line in output.splitlines())
    atoms: set[tuple[str, str, int, int]] = set()
    for line in output.splitlines():
        if not cluster or f"# {tag(cluster)}" not in line:
            continue
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or "/" not in words[0]:
            continue
        ports, proto = words[0].rsplit("/", 1)
        src = words[-1]
        for part in ports.split(","):
            lo, _, hi = part.partition(":")
            if lo.isdigit():
                atoms.add((proto, src, int(lo), int(hi or lo)))
    return Ufw(active, frozenset(atoms))


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
FIREWALLD_STATE: Fact[Firewalld | None] = Fact(
    "firewalld_state",
    lambda _p, _n: (
        "if command -v firewall-cmd >/dev/null 2>&1; then "
        "echo \"state: $(firewall-cmd --state 2>&1)\"; "
        "echo \"zone: $(firewall-cmd --get-default-zone 2>/dev/null)\"; "
        "firewall-cmd --list-rich-rules 2>/dev/null | sed 's/^/rich: /'; "
        "firewall-cmd --permanent --list-rich-rules 2>/dev/null | sed 's/^/perm: /'; "
        "else echo FIREWALLD-ABSENT; fi; true"),
    parse_firewalld,
)


def _ufw_fact(plan: Plan, _node: Node) -> str:
    return ("if command -v ufw >/dev/null 2>&1; then ufw status 2>&1; "
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
    stale = []
    chains: list[tuple[str, str, str]] = []
    if "nftables" in tools and view.nft is not None:
        ours = nft_ours(view.nft, cluster)
        if any(atoms != wanted for atoms in ours.values()):
            stale.append("nftables")
        chains = [(c.family, c.table, c.name) for c in view.nft.input_chains()
                  if c.where in ours or c in nft_blocking_chains(view.nft, openings)]
    if view.iptables is not None and has_ipt_ours(view.iptables, cluster) \
            and ipt_ours(view.iptables, cluster) != wanted:
        stale.append("iptables")
    if view.ufw is not None and view.ufw.ours and view.ufw.ours != wanted:
        stale.append("ufw")
    ipt = view.iptables is not None and (
        has_ipt_ours(view.iptables, cluster)
        or ("iptables" in tools and any(ipt_verdict(view.iptables, o)[0] != PASS
                                        for o in openings)))
    zone = view.firewalld.zone if view.firewalld is not None else ""
    return FirewallState(tools, tuple(paths), tuple(chains), tuple(stale), (), zone, ipt)


def _tool_verdict(view: FirewallView, tool: str, o: Opening, cluster: str) -> tuple[str, str]:
    if tool == "nftables" and view.nft is not None:
        return nft_verdict(view.nft, o)
    if tool == "iptables" and view.iptables is not None:
        return ipt_verdict(view.iptables, o)
    if tool == "firewalld" and view.firewalld is not None:
        rich = firewalld_rich(o.atom)
        if rich in view.firewalld.rich_rules:
            return PASS, "firewalld"
        return UNKNOWN, f"firewalld zone {view.firewalld.zone}"
    if tool == "ufw" and view.ufw is not None:
        return (PASS, "ufw") if o.atom in view.ufw.ours else (UNKNOWN, "ufw")
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
