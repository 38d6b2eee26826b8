"""iptables (legacy or -nft): `iptables-save` parsed, and a new connection walked through
INPUT (pure)."""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from omwizard.configs.firewall import tag
from omwizard.facts.firewall_paths import (
    Opening,
    Packet,
    Verdict,
    after_jump,
    judge_ports,
)

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


def _ipt_rule(words: tuple[str, ...], pkt: Packet) -> tuple[bool | None, str | None]:
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


def _ipt_eval(rs: IptRuleset, chain: str, pkt: Packet, depth: int = 0) -> Verdict:
    maybe: set[str] = set()
    for words in rs.rules.get(chain, ()):
        matched, target = _ipt_rule(words, pkt)
        if target is None or matched is False:
            continue
        if target in rs.policies and target not in ("INPUT", "FORWARD", "OUTPUT"):
            if depth > 16:
                maybe.add("unknown")
                continue
            decided = after_jump(matched, _ipt_eval(rs, target, pkt, depth + 1), maybe)
            if decided is not None:
                return decided
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
    """(pass | blocked | unknown, where) for a new connection through INPUT."""
    return judge_ports(opening, lambda pkt: [(*_ipt_eval(rs, "INPUT", pkt), "iptables INPUT")])


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
