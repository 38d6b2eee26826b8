"""ufw: `ufw status verbose` parsed, and a new connection judged by its rules in order,
then the default incoming policy (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from omwizard.configs.firewall import tag
from omwizard.facts.firewall_paths import (
    Opening,
    Packet,
    in_source,
    judge_ports,
)

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

    def match(self, pkt: Packet) -> bool | None:
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
            got_src = in_source(src[0], pkt.src)
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
    return judge_ports(opening, lambda pkt: [(*_ufw_walk(ufw, pkt), "ufw")])


def _ufw_walk(ufw: Ufw, pkt: Packet) -> tuple[str, str, set[str]]:
    """The packet through ufw's incoming rules, the first that matches deciding."""
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
    return outcome, at, maybe
