"""nftables: `nft -j list ruleset` parsed, and a new connection walked through the input
hooks (pure)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omwizard.configs.firewall import tag
from omwizard.facts.firewall_paths import (
    PASS,
    Opening,
    Packet,
    Verdict,
    after_jump,
    judge_ports,
    settle,
)

# tables iptables-nft creates: judged through iptables-save, not as native nftables
XTABLES = {"filter", "nat", "mangle", "raw", "security"}
XT_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}

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


def _nft_match(m: Mapping[str, Any], pkt: Packet) -> bool | None:
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


def _nft_rule(expr: list[dict[str, Any]], pkt: Packet) -> tuple[bool | None, str | None, Any]:
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


def _nft_eval(rs: NftRuleset, chain: NftChain, pkt: Packet, depth: int = 0) -> Verdict:
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
            decided = after_jump(matched, _nft_eval(rs, target, pkt, depth + 1), maybe)
            if decided is not None:
                return decided
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


def nft_verdict(rs: NftRuleset, opening: Opening) -> tuple[str, str]:
    """(pass | blocked | unknown, where) for the opening's first port through every input
    base chain (a packet must be accepted by all of them)."""
    return judge_ports(opening, lambda pkt: [(*_nft_eval(rs, chain, pkt), f"nftables {chain.where}")
                                             for chain in rs.input_chains()])


def nft_blocking_chains(rs: NftRuleset, openings: Iterable[Opening]) -> list[NftChain]:
    """The input base chains where some opening is not surely accepted: ours go there."""
    out = []
    for chain in rs.input_chains():
        for o in openings:
            outcome, _, maybe = _nft_eval(rs, chain, Packet(o.address, o.proto, o.lo))
            if settle(outcome, maybe) != PASS:
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
