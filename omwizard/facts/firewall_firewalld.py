"""firewalld: the default zone, its services and omwizard's ipset parsed from
firewall-cmd, and a new connection judged as firewalld applies the zone (pure)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omwizard.configs.firewall import firewalld_ipset
from omwizard.facts.firewall_paths import (
    Opening,
    Packet,
    in_source,
    judge_ports,
)

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


def _covers(ranges: Iterable[PortRange], proto: str, port: int) -> bool:
    return any(p == proto and lo <= port <= hi for p, lo, hi in ranges)


def _rich_match(rule: RichRule, fw: Firewalld, ours: str, pkt: Packet) -> bool | None:
    if rule.family == "ipv6":
        return False
    hit: bool | None = True
    if rule.source:
        got = in_source(rule.source, pkt.src)
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
    zone = f"firewalld zone {fw.zone}"
    return judge_ports(opening, lambda pkt: [(*_zone_walk(fw, ours, pkt), zone)])


def _zone_walk(fw: Firewalld, ours: str, pkt: Packet) -> tuple[str, str, set[str]]:
    """The packet through the default zone as firewalld applies it: drop/reject rich
    rules, then accepts, open ports and services, then the zone's target."""
    maybe: set[str] = set()
    outcome, at = "", ""
    if any(in_source(s, pkt.src) is not False for s in fw.sources):
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
    return outcome, at, maybe


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
