"""The paths the cluster needs through a node's firewall, and the packet every tool's
walker is asked about (pure: shared by the nftables, iptables, firewalld and ufw readers)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan


HAZELCAST_PORTS = (5701, 5703)  # a member takes the first free of 5701-5703
OPENJPA_PORT = 5636  # OpenJPA's TCP remote commit provider
NFS_PORTS = (("tcp", 2049, 2049, "NFS"), ("tcp", 111, 111, "rpcbind"),
             ("udp", 111, 111, "rpcbind"))
PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"


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


@dataclass(frozen=True)
class Packet:
    """A new connection's first packet from `src` to `port`/`proto`, arriving on the wire."""

    src: str
    proto: str
    port: int


def settle(outcome: str, maybe: set[str]) -> str:
    final = PASS if outcome == "accept" else BLOCKED
    others = {PASS if m == "accept" else BLOCKED if m == "drop" else UNKNOWN for m in maybe}
    return final if others <= {final} else UNKNOWN


def in_source(source: str, address: str) -> bool | None:
    """Whether a source (an address or a network) holds the address; None: not an address."""
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(source, strict=False)
    except ValueError:
        return None  # a MAC address or an ipset of another kind


# (accept | drop | continue, where it was decided, outcomes an unreadable rule could have
# led to): one packet through one chain of a filter
Verdict = tuple[str, str, set[str]]


def after_jump(matched: bool | None, sub: Verdict, maybe: set[str]) -> Verdict | None:
    """A jump to a sub-chain, every tool's way: the sub-chain's decision when the jump surely
    matched and the sub-chain decided; else None (walk on), its outcomes added to `maybe`
    (all of them but "continue" when the jump's rule could not be read)."""
    got, where, more = sub
    if matched is None:
        maybe.update({got, *more} - {"continue"})
        return None
    maybe |= more
    return (got, where, maybe) if got != "continue" else None


# (outcome accept | drop, where it was decided, outcomes an unreadable rule could have led
# to, where to say "unknown") for one packet through one of the node's filters
Walked = tuple[str, str, set[str], str]


def judge_ports(opening: Opening, walk: Callable[[Packet], Iterable[Walked]]) -> tuple[str, str]:
    """(pass | blocked | unknown, where) of the opening's first and last port, every tool's
    way: a packet must get through every filter `walk` yields; one that blocks decides, one
    that cannot be read leaves the path unknown, never passed."""
    result, where = PASS, ""
    for port in sorted({opening.lo, opening.hi}):
        for outcome, at, maybe, vague in walk(Packet(opening.address, opening.proto, port)):
            got = settle(outcome, maybe)
            if got == BLOCKED:
                return BLOCKED, at
            if got == UNKNOWN and result == PASS:
                result, where = UNKNOWN, vague
    return result, where
