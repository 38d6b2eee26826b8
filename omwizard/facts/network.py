"""Pure facts and decisions for the network checks: parse what `ip`, `ping`, `tcpdump`, `date`
and the port probes printed, and decide. No I/O here, so every decision is unit-tested on
real outputs (tests/unit/facts/test_network.py) and the steps stay thin.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omwizard.facts.base import Fact, StepData

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

# -- interfaces -------------------------------------------------------------------------------


def interface_for_address(ip_o_addr: str, address: str) -> str | None:
    """The interface that carries `address`, from `ip -o -4 addr show` lines.

    `3: eth0    inet 198.18.0.11/24 scope global eth0\\ ...`; an alias label (`eth0:1`) is
    reduced to the device, which is what routes and tcpdump need.
    """
    for line in ip_o_addr.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] != "inet":
            continue
        if parts[3].split("/", 1)[0] == address:
            return parts[1].split("@", 1)[0].split(":", 1)[0]
    return None


@dataclass(frozen=True)
class Link:
    """One line of `ip -o link show`: the device name, its flags and its state."""

    name: str
    flags: frozenset[str]
    state: str

    @property
    def multicast(self) -> bool:
        return "MULTICAST" in self.flags

    @property
    def up(self) -> bool:
        return "UP" in self.flags


LINK_LINE = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$")


def parse_link(ip_o_link: str) -> Link | None:
    """`2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ... state UP ...` -> Link."""
    for line in ip_o_link.splitlines():
        match = LINK_LINE.match(line.strip())
        if not match:
            continue
        rest = match.group(3).split()
        state = rest[rest.index("state") + 1] if "state" in rest[:-1] else "UNKNOWN"
        return Link(match.group(1), frozenset(f for f in match.group(2).split(",") if f), state)
    return None


def parse_links(ip_o_link: str) -> dict[str, Link]:
    """Every line of `ip -o link show` -> {device name: Link}."""
    links = {}
    for line in ip_o_link.splitlines():
        link = parse_link(line)
        if link is not None:
            links[link.name] = link
    return links


LINKS: Fact[dict[str, Link]] = Fact(
    "links", lambda _plan, _node: "ip -o link show", parse_links, sudo=False
)


def ifconfig_multicast(ifconfig_a: str, iface: str) -> bool | None:
    """Whether `ifconfig -a` shows MULTICAST for iface (None: iface not listed).

    The documentation's own command, used where iproute2 is missing.
    """
    current = None
    for line in ifconfig_a.splitlines():
        if line and not line[0].isspace():
            current = line.split(":", 1)[0].split()[0]
            if current == iface:
                return "MULTICAST" in line
    return None


# -- routes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One line of `ip route show`: destination prefix, device and the remaining words."""

    dest: str
    dev: str | None
    words: tuple[str, ...] = ()

    @property
    def linkdown(self) -> bool:
        return "linkdown" in self.words


def parse_routes(ip_route: str) -> list[Route]:
    """`224.0.0.0/4 dev eth0 scope link` lines -> Routes (`multicast`/`unicast` prefix kept off)."""
    routes = []
    for line in ip_route.splitlines():
        words = line.split()
        if not words or words[0].startswith(("RTNETLINK", "Error")):
            continue
        if words[0] in {"unicast", "multicast", "broadcast", "local"} and len(words) > 1:
            words = words[1:]
        dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
        routes.append(Route(_normal_prefix(words[0]), dev, tuple(words[1:])))
    return routes


def _normal_prefix(text: str) -> str:
    if text == "default":
        return "0.0.0.0/0"
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def route_to_net_mask(route: str) -> tuple[str, str]:
    """224.0.0.0/4 -> ("224.0.0.0", "240.0.0.0"): the documentation's `route -net .. netmask`."""
    net = ipaddress.IPv4Network(route, strict=False)
    return str(net.network_address), str(net.netmask)


@dataclass(frozen=True)
class RouteVerdict:
    """What the multicast-route check concluded: ok | missing | elsewhere."""

    state: str
    detail: str
    other_dev: str | None = None


def route_verdict(
    routes: Iterable[Route], want: str, iface: str, get_output: str = ""
) -> RouteVerdict:
    """Is the plan's route (exact prefix) on iface? `get_output` (`ip route get GROUP`) only
    colours the detail: where the group goes today."""
    want_n = _normal_prefix(want)
    same = [r for r in routes if r.dest == want_n]
    for r in same:
        if r.dev == iface:
            note = " (link down)" if r.linkdown else ""
            return RouteVerdict("ok", f"{want_n} dev {iface}{note}")
    if same:
        dev = same[0].dev
        return RouteVerdict(
            "elsewhere", f"{want_n} is routed via {dev}, not {iface}", other_dev=dev
        )
    now = "no route to the group (Network is unreachable)"
    if "unreachable" not in get_output.lower():
        got = parse_routes(get_output)
        if got and got[0].dev:
            now = f"the group goes via {got[0].dev} today (another route)"
    return RouteVerdict("missing", f"no route {want_n} on {iface}: {now}")


# -- ping and tcpdump -------------------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    transmitted: int
    unreachable: bool
    error: str = ""


PING_STATS = re.compile(r"(\d+) packets transmitted")


def parse_ping(output: str) -> PingResult:
    """`ping -c 2 GROUP` output: how many echo requests left, or why none could.

    Replies are not counted: Linux ignores echo requests to multicast addresses by default
    (icmp_echo_ignore_broadcasts), so the proof is in the other nodes' captures.
    """
    unreachable = "network is unreachable" in output.lower()
    match = PING_STATS.search(output)
    transmitted = int(match.group(1)) if match else 0
    error = ""
    if transmitted == 0:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        error = next(
            (line for line in lines if line.lower().startswith("ping:")), lines[-1] if lines else ""
        )
    return PingResult(transmitted, unreachable, error)


CAPTURE_LINE = re.compile(
    r"\bIP (?P<src>\d+\.\d+\.\d+\.\d+) > (?P<dst>\d+\.\d+\.\d+\.\d+): ICMP echo request"
)


def echo_requests(tcpdump_out: str, group: str) -> list[str]:
    """Sources of the ICMP echo requests to `group` in tcpdump -n lines, one entry per packet."""
    return [m.group("src") for m in CAPTURE_LINE.finditer(tcpdump_out) if m.group("dst") == group]


@dataclass(frozen=True)
class Capture:
    """What one node's capture gave: None sources = the capture never ran (error text)."""

    node: str
    sources: tuple[str, ...] | None
    error: str = ""


@dataclass(frozen=True)
class PingVerdict:
    node: str
    ok: bool
    detail: str
    remedy: str = ""


def multicast_ping_verdicts(
    sender: str,
    sender_address: str,
    group: str,
    ping: PingResult,
    captures: Mapping[str, Capture],
    iface: Mapping[str, str],
) -> dict[str, PingVerdict]:
    """Per node: did it see the sender's echo requests to the group?

    The sender's own capture counts for the sender: tcpdump sees outgoing packets, so it
    proves the pings left through the planned interface (with a route on another device the
    capture stays empty). The receivers are ok when they saw at least one request from the
    sender's address; both requests are asked for (`-c 2`) but one is proof enough.
    """
    out: dict[str, PingVerdict] = {}
    for node, cap in captures.items():
        dev = iface.get(node, "?")
        if cap.sources is None:
            out[node] = PingVerdict(
                node,
                False,
                f"capture on {dev} did not run: {cap.error}",
                "check that tcpdump is installed (package tcpdump) and the interface exists",
            )
            continue
        seen = sum(1 for s in cap.sources if s == sender_address)
        others = sorted({s for s in cap.sources if s != sender_address})
        if node == sender:
            if ping.transmitted == 0:
                why = (
                    "Network is unreachable: no multicast route" if ping.unreachable else ping.error
                )
                out[node] = PingVerdict(
                    node,
                    False,
                    f"ping {group} from {node} sent nothing: {why}",
                    f"add the route (network.multicast-route), then check again from {node}",
                )
            elif seen:
                out[node] = PingVerdict(
                    node, True, f"sent {ping.transmitted} echo requests to {group} out of {dev}"
                )
            else:
                out[node] = PingVerdict(
                    node,
                    False,
                    f"ping sent {ping.transmitted} requests but none left through {dev}",
                    f"the route to {group} uses another interface; fix multicast-route on {node}",
                )
            continue
        if ping.transmitted == 0:
            out[node] = PingVerdict(
                node,
                False,
                f"not tested: {sender} could not send to {group}",
                f"fix {sender} first (see its result), then check again",
            )
        elif seen:
            out[node] = PingVerdict(
                node, True, f"received {seen} echo request(s) from {sender} on {dev}"
            )
        else:
            extra = f" (saw requests from {', '.join(others)} only)" if others else ""
            out[node] = PingVerdict(
                node,
                False,
                f"received none of {sender}'s {ping.transmitted} echo requests to {group} "
                f"on {dev}{extra}",
                f"check that {node} is on the same network segment as {sender}, that the switch "
                "passes multicast (IGMP snooping without a querier drops it), and that "
                f"{dev} is the interface on that segment",
            )
    return out


# -- clocks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockSample:
    """One `date +%s.%N` on a node, stamped with the wizard's clock before and after."""

    node: str
    before: float
    remote: float
    after: float

    @property
    def offset(self) -> float:
        """Node clock minus wizard clock, at the midpoint of the round trip."""
        return self.remote - (self.before + self.after) / 2

    @property
    def uncertainty(self) -> float:
        return max(0.0, (self.after - self.before) / 2)


def parse_date(output: str) -> float | None:
    for line in output.split():
        try:
            return float(line)
        except ValueError:
            continue
    return None


def clock_outliers(
    samples: Iterable[ClockSample], tolerance: float = 2.0
) -> tuple[set[str], float]:
    """The nodes outside the largest group whose clocks agree within `tolerance` seconds,
    and that group's median offset (the reference).

    The majority is the reference, not the wizard's clock: the documentation's concern is
    that the servers agree with each other. A sample's round-trip uncertainty is given to it
    (two clocks are apart only if they are apart for sure).
    """
    items = sorted(samples, key=lambda s: s.offset)
    if not items:
        return set(), 0.0
    best: list[ClockSample] = []
    for i, first in enumerate(items):
        group = [
            s
            for s in items[i:]
            if s.offset - first.offset - s.uncertainty - first.uncertainty <= tolerance
        ]
        if len(group) > len(best):
            best = group
    offsets = sorted(s.offset for s in best)
    median = offsets[len(offsets) // 2]
    chosen = {s.node for s in best}
    return {s.node for s in items if s.node not in chosen}, median


# -- ports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One path to test: from node `src` to `dst_node` (None: not a plan node) at addr:port."""

    src: str
    dst_node: str | None
    address: str
    proto: str  # tcp | udp
    port: int
    what: str  # "Hazelcast", "OpenJPA commit provider", "database", "Hazelcast multicast"

    @property
    def key(self) -> str:
        return f"{self.proto}:{self.address}:{self.port}"

    def describe(self, dst_name: str) -> str:
        return f"{self.src} → {dst_name} {self.proto.upper()} {self.port} ({self.what})"


def plan_probes(
    om_nodes: Iterable[tuple[str, str]],
    db: tuple[str | None, str, int] | None,
    multicast_port: int | None,
) -> list[Probe]:
    """Every path the cluster needs: TCP 5701 and 5636 both ways between OM nodes, the DB port
    from every OM node to the DB host, and the multicast port (UDP) when join is multicast.

    om_nodes: (name, address); db: (node name or None, host, port).
    """
    nodes = list(om_nodes)
    probes = []
    for src, _ in nodes:
        for dst, addr in nodes:
            if src == dst:
                continue
            probes.append(Probe(src, dst, addr, "tcp", 5701, "Hazelcast"))
            probes.append(Probe(src, dst, addr, "tcp", 5636, "OpenJPA commit provider"))
            if multicast_port:
                probes.append(Probe(src, dst, addr, "udp", multicast_port, "Hazelcast multicast"))
        if db is not None:
            db_node, host, port = db
            if db_node != src:
                probes.append(Probe(src, db_node, host, "tcp", port, "database"))
    return probes


def listener_ports(probes: Iterable[Probe], node: str) -> dict[str, dict[int, int]]:
    """{proto: {port: how many probes will arrive}} for the short-lived listener on `node`."""
    want: dict[str, dict[int, int]] = {}
    for p in probes:
        if p.dst_node == node:
            ports = want.setdefault(p.proto, {})
            ports[p.port] = ports.get(p.port, 0) + 1
    return want


def parse_listener_ready(line: str) -> dict[str, list[int]] | None:
    """The listener's first line: `READY {"bound": {...}, "busy": {...}}`; busy = already used."""
    if not line.startswith("READY "):
        return None
    try:
        data = json.loads(line[6:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def parse_probe_results(output: str) -> dict[str, tuple[str, str]]:
    """The prober's JSON lines -> {probe key: (result, error)}.

    result: open | refused | filtered | error."""
    out: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
            out[f"{d['proto']}:{d['host']}:{d['port']}"] = (d["result"], d.get("error", ""))
        except (ValueError, KeyError, TypeError):
            continue
    return out


@dataclass(frozen=True)
class PortsRun:
    """One node's ports script (facts.preflight.PORTS_PY), parsed: its listener's READY data
    (None: it never said READY), its probes' {key: (result, error)}, and how the listener
    ended (DONE: every expected probe came; STOPPED: its window ended first; None: unknown)."""

    ready: dict | None
    results: dict[str, tuple[str, str]]
    end: str | None


def parse_ports_run(output: str) -> PortsRun:
    ready = None
    end = None
    for line in output.splitlines():
        line = line.strip()
        info = parse_listener_ready(line)
        if info is not None and ready is None:
            ready = info
        elif line in ("DONE", "STOPPED"):
            end = line
    return PortsRun(ready, parse_probe_results(output), end)


@dataclass
class PathVerdict:
    probe: Probe
    blocked: bool
    text: str
    probed: bool = True  # False: judged without a probe (see worth_probing)


def listener_for(probe: Probe, ready: dict[str, dict]) -> str:
    """"ours", "busy" or "none": what listened at the probe's far end (from READY lines)."""
    info = ready.get(probe.dst_node or "")
    if info is None:
        return "none"
    if probe.port in info.get("busy", {}).get(probe.proto, []):
        return "busy"
    return "ours"


def worth_probing(probe: Probe, listener: str) -> bool:
    """False for UDP to a port a running service holds: it stays silent whatever the path,
    so the probe could only wait out its timeout (seconds, on a working cluster) to learn
    nothing. TCP connects or not, so it is always probed."""
    return not (probe.proto == "udp" and listener == "busy")


def path_verdict(probe: Probe, result: str, error: str, listener: str) -> PathVerdict:
    """Open path or firewall? listener: "ours" (our listener was bound), "busy" (a real service
    holds the port), "none" (no listener could be started: not a plan node or not reachable).

    TCP: open = connected; refused = RST: with no listener that is a path that works, with our
    listener bound it is a firewall REJECT; timeout = something drops the packets.
    UDP: our listener answers every datagram, so silence means dropped; refused is an ICMP
    port unreachable (path open if nobody listens, REJECT if ours does); with a busy port or
    no listener, silence proves nothing.
    """
    if result == "error":
        return PathVerdict(probe, True, f"probe failed: {error}")
    if result == "not-probed":
        return PathVerdict(
            probe, False, "not probed: a running service holds it (UDP cannot be told apart "
            "without omwizard's listener)", probed=False
        )
    if result == "open":
        how = "reaches the running service" if listener == "busy" else "open"
        return PathVerdict(probe, False, how)
    if result == "refused":
        if listener == "ours":
            return PathVerdict(
                probe, True, "rejected although omwizard's listener was up: a firewall REJECT rule"
            )
        return PathVerdict(probe, False, "refused: nothing listens yet, the path is open")
    # filtered (timeout)
    if probe.proto == "udp" and listener != "ours":
        return PathVerdict(
            probe, False, "no answer (cannot tell for UDP without omwizard's listener)"
        )
    return PathVerdict(probe, True, "filtered: no answer within the timeout, a firewall drops it")


# -- what the steps hand on --------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInterface(StepData):
    """The interface that carries the node's multicast (interface-multicast)."""

    kind = "interface"
    interface: str


@dataclass(frozen=True)
class RouteState(StepData):
    """multicast-route's check for its apply: the interface, and whether net-tools' `route`
    is there (the documentation's command) or iproute2 must do."""

    kind = "multicast-route"
    interface: str
    net_tools: bool


@dataclass(frozen=True)
class PingRound(StepData):
    """Which node sent the pings of a multicast-ping round."""

    kind = "multicast-ping"
    sender: str


@dataclass(frozen=True)
class RouteConfig(StepData):
    """Where the node's network configuration keeps routes (route-persistent's check for its
    apply): config is netplan | ifupdown | networkd | networkmanager | unknown."""

    kind = "route-persistent"
    interface: str
    config: str
    path: str | None = None
    connection: str | None = None
    netplan_kind: str | None = None
    ident: str | None = None


# -- fact commands -----------------------------------------------------------------------------


def addresses(ip_o_addr: str) -> list[str]:
    """Every address in `ip -o -4 addr show` lines (to say what a node has)."""
    return [w[3] for w in (line.split() for line in ip_o_addr.splitlines()) if len(w) > 3]


# `ip -o -4 addr show` as it printed it (interface_for_address reads it for a node's address)
IPV4_ADDRESSES: Fact[str] = Fact(
    "ipv4_addresses", lambda _plan, _node: "ip -o -4 addr show", str, sudo=False, stable=True
)


def route_probe(route: str, group: str) -> str:
    q = shlex.quote
    return (
        "command -v route >/dev/null 2>&1 && echo @@have-route; echo @@show; "
        f"ip route show {q(route)} 2>&1; echo @@get; ip route get {q(group)} 2>&1; true"
    )


@dataclass(frozen=True)
class RouteProbe:
    """What route_probe read: net-tools' `route` present, the plan's routes, the group's way."""

    net_tools: bool
    routes: tuple[Route, ...]
    get: str


def parse_route_probe(output: str) -> RouteProbe:
    parts = split_probe(output)
    return RouteProbe(
        "have-route" in parts, tuple(parse_routes(parts.get("show", ""))), parts.get("get", "")
    )


MULTICAST_ROUTE: Fact[RouteProbe] = Fact(
    "multicast_route",
    lambda plan, _node: route_probe(plan.network.route, plan.network.multicast_group),
    parse_route_probe,  # through sudo like the route's files: one command when read again
)


def split_probe(output: str) -> dict[str, str]:
    """`@@name` marker lines -> {name: the text under it}."""
    parts: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            parts.setdefault(current, [])
        else:
            parts.setdefault(current, []).append(line)
    return {k: "\n".join(v) for k, v in parts.items()}


def capture_argv(iface: str, group: str, seconds: int) -> list[str]:
    """tcpdump bounded twice: -c 2 (the two pings) and timeout (nothing arrives)."""
    return ["timeout", str(seconds), "tcpdump", "-l", "-n", "-i", iface, "-c", str(PING_COUNT),
            f"icmp and dst host {group}"]


PID_MARK = "@@pid "  # a process's pid line, as benchmarks/run.py's floor still reads it


def parse_pid(line: str) -> int | None:
    """A `@@pid N` line's pid (or None for any other line)."""
    if not line.startswith(PID_MARK):
        return None
    text = line[len(PID_MARK):].strip()
    return int(text) if text.isdigit() else None


PING_COUNT = 2  # the documentation's `ping -c 2`
PING_INTERVAL = 0.2  # seconds between the requests (the shortest any user may ask for)
PING_LINGER = 0.2  # seconds ping waits for replies that never come (multicast echo is ignored)


def ping_command(group: str) -> str:
    """The documentation's ping, quick: PING_COUNT requests PING_INTERVAL apart, waiting only
    PING_LINGER for replies (none come: Linux ignores echo requests to multicast). An older
    ping that takes no fractional wait gets -W 1 instead."""
    base = ["ping", "-t", "1", "-c", str(PING_COUNT), "-i", str(PING_INTERVAL)]
    fast = shlex.join([*base, "-W", str(PING_LINGER), group])
    slow = shlex.join([*base, "-W", "1", group])
    return (f"out=$({fast} 2>&1); rc=$?; case $out in *'bad linger'*|*'invalid argument'*"
            f"|*'bad timing'*) exec {slow} 2>&1;; esac; printf '%s\\n' \"$out\"; exit $rc")


# -- the multicast proof as one script per node (issue 21) ---------------------------------------

MULTICAST_CAPTURE_SECONDS = 12  # tcpdump's own bound, should the script not end it
MULTICAST_LISTEN_BOUND = 5.0  # s a capture may take to say "listening on"
MULTICAST_SETTLE = 0.5  # s the sender waits, once its own capture listens, for the others'
MULTICAST_MARGIN = 1.0  # s after the pings' own time, for the last to cross (node start skew)
_TICK = 0.05


def multicast_ping_time() -> float:
    """How long the pings take: PING_COUNT requests PING_INTERVAL apart, then PING_LINGER."""
    return (PING_COUNT - 1) * PING_INTERVAL + PING_LINGER


def multicast_script(iface: str, group: str, send: bool) -> str:
    """One node's round of the documentation's test, in one command (run as root): the
    capture in the background; once it says "listening on" (`@@listening`, else
    `@@not-listening`), the sender waits MULTICAST_SETTLE for the other captures and pings
    (`@@ping RC` and ping's output); the capture ends by itself after PING_COUNT requests,
    else it is stopped (`@@stopped`) once the pings could have arrived: the sender's right
    after its ping plus the margin, a receiver's after the settle, the pings' time and the
    margin. Last `@@capture RC` and what the capture printed."""
    q = shlex.quote
    capture = shlex.join(capture_argv(iface, group, MULTICAST_CAPTURE_SECONDS))
    listen_ticks = int(MULTICAST_LISTEN_BOUND / _TICK)
    if send:
        after = MULTICAST_MARGIN
        ping = (f'sleep {MULTICAST_SETTLE}; p=$( ( {ping_command(group)} ) 2>&1 ); '
                'echo "@@ping $?"; printf \'%s\\n\' "$p"; ')
    else:
        after = MULTICAST_SETTLE + multicast_ping_time() + MULTICAST_MARGIN
        ping = ""
    wait_ticks = int(round(after / _TICK))
    return (
        # whatever ends the script (its output channel gone, a signal) ends the capture too
        'd=$(mktemp -d) || exit 70; t=; '
        'trap \'[ -n "$t" ] && kill -TERM $t 2>/dev/null; rm -rf "$d"\' EXIT; '
        "trap 'exit 129' HUP PIPE INT TERM; "
        f'{capture} >"$d/cap" 2>"$d/err" & t=$!; n=0; '
        f'while [ $n -lt {listen_ticks} ] && kill -0 $t 2>/dev/null '
        f'&& ! grep -q {q("listening on ")} "$d/err"; do sleep {_TICK}; n=$((n+1)); done; '
        f'if kill -0 $t 2>/dev/null && grep -q {q("listening on ")} "$d/err"; then '
        f"echo @@listening; {ping}else echo @@not-listening; fi; n=0; "
        f"while [ $n -lt {wait_ticks} ] && kill -0 $t 2>/dev/null; do sleep {_TICK}; "
        "n=$((n+1)); done; "
        "kill -0 $t 2>/dev/null && { kill -TERM $t; echo @@stopped; }; "
        'wait $t; r=$?; t=; echo "@@capture $r"; cat "$d/cap" "$d/err"'
    )


@dataclass(frozen=True)
class MulticastRun:
    """One node's multicast_script output: whether its capture listened, the ping (exit
    status, output; None: this node did not ping), the capture's exit status (None: the
    script was cut short) and text, and whether the script had to stop it."""

    listening: bool
    ping: tuple[int | None, str] | None
    capture_status: int | None
    capture: str
    stopped: bool

    @property
    def capture_ran(self) -> bool:
        """The capture ran to its end: by itself (0), its bound (124), or stopped by us (an
        ended `timeout` reports tcpdump's 0, or 143 when it went down with the signal)."""
        ok = (0, 124, 143) if self.stopped else (0, 124)
        return self.capture_status in ok


def parse_multicast_run(output: str) -> MulticastRun:
    listening = False
    stopped = False
    ping: tuple[int | None, list[str]] | None = None
    capture_status: int | None = None
    capture: list[str] | None = None
    into: list[str] | None = None
    for line in output.splitlines():
        if line in ("@@listening", "@@not-listening"):
            listening, into = line == "@@listening", None
        elif line == "@@stopped":
            stopped, into = True, None
        elif line.startswith("@@ping "):
            rc = line[7:].strip()
            ping = (int(rc) if rc.lstrip("-").isdigit() else None, [])
            into = ping[1]
        elif line.startswith("@@capture "):
            rc = line[10:].strip()
            capture_status = int(rc) if rc.lstrip("-").isdigit() else None
            capture = []
            into = capture
        elif into is not None:
            into.append(line)
    return MulticastRun(
        listening,
        None if ping is None else (ping[0], "\n".join(ping[1])),
        capture_status,
        "\n".join(capture or []),
        stopped,
    )


def nm_device_probe(iface: str) -> str:
    """NetworkManager's connection for iface (nothing when nmcli is absent)."""
    return (
        "command -v nmcli >/dev/null 2>&1 || exit 0; "
        f"nmcli -t -f GENERAL.CONNECTION device show {shlex.quote(iface)} 2>/dev/null; true"
    )


def parse_route_config(files: str, nm: str) -> tuple[list[str], str | None, str | None, str]:
    """The two parts' output -> (config paths, nmcli device output or None when nmcli is
    absent, the connection whose routes were read or None, those routes)."""
    paths = [line[5:] for line in files.splitlines() if line.startswith("file:")]
    device: list[str] | None = None
    routes_of: str | None = None
    routes: list[str] = []
    for line in nm.splitlines():
        if line == "@@nm-device":
            device = []
        elif line.startswith("@@nm-routes "):
            routes_of = line[12:]
        elif routes_of is not None:
            routes.append(line)
        elif device is not None:
            device.append(line)
    dev = None if device is None else "\n".join(device)
    return paths, dev, routes_of, "\n".join(routes)


# -- route-persistent's reads, declared (gathered with the node's other facts) -----------------

CONFIG_FILE_MARK = "\x1eOMW-FILE "
CONFIG_GLOBS = ("/etc/netplan/*.yaml", "/etc/netplan/*.yml", "/etc/network/interfaces",
                "/etc/network/interfaces.d/*", "/etc/systemd/network/*.network",
                "/etc/systemd/network/*.network.d/*.conf")


def config_files_command(_plan: Plan, _node: Node) -> str:
    """Every network configuration file there is (netplan, ifupdown, systemd-networkd), each
    after a marker line with its path, then an end marker; they are known only by their
    globs, so they are read where they are found (as root: netplan files are 0600)."""
    return (f"for f in {' '.join(CONFIG_GLOBS)}; do [ -f \"$f\" ] && "
            f"{{ printf '\\036OMW-FILE %s\\n' \"$f\"; cat -- \"$f\"; echo; }}; done; "
            "printf '\\036OMW-FILE\\n'")


def parse_config_files(output: str) -> dict[str, str]:
    """config_files_command's output -> {path: text}, each text exactly as in the file (the
    newline before every marker is the script's own). A file cut short is left out."""
    chunks = ("\n" + output).split("\n" + CONFIG_FILE_MARK.rstrip(" "))
    files: dict[str, str] = {}
    for chunk in chunks[1:-1]:  # whole when another marker follows (the last is the end's)
        head, _, body = chunk.partition("\n")
        if head.startswith(" "):
            files[head[1:]] = body
    return files


def nm_command(plan: Plan, node: Node) -> str:
    """NetworkManager's connection for the node's interface (`@@nm-dev IF`, then
    parse_route_config's nm lines) with its ipv4.routes; the interface is the plan's, else the
    one carrying node.address (as node_interface picks it); nothing without nmcli."""
    q = shlex.quote
    if node.interface:
        pick = f"i={q(node.interface)}"
    else:
        pick = (f"i=$(ip -o -4 addr show 2>/dev/null | awk -v a={q(node.address)} "
                "'$3 == \"inet\" {split($4, x, \"/\"); if (x[1] == a) "
                "{split($2, y, \"[:@]\"); print y[1]; exit}}')")
    return (
        f'command -v nmcli >/dev/null 2>&1 || exit 0; {pick}; echo "@@nm-dev $i"; '
        '[ -n "$i" ] || exit 0; '
        'd=$(nmcli -t -f GENERAL.CONNECTION device show "$i" 2>/dev/null); '
        'echo @@nm-device; printf "%s\\n" "$d"; '
        "c=$(printf '%s\\n' \"$d\" | sed -n 's/^GENERAL\\.CONNECTION://p' | head -n 1); "
        'case "$c" in ""|--) ;; *) echo "@@nm-routes $c"; '
        'nmcli -g ipv4.routes connection show "$c" 2>/dev/null;; esac; true'
    )


@dataclass(frozen=True)
class NmDevice:
    """nm_command's output: the interface it asked NetworkManager about (None: nmcli is
    absent) and the lines about it, as parse_route_config reads them."""

    interface: str | None  # "": nmcli is there, but no interface carries the address
    lines: str


def parse_nm(output: str) -> NmDevice:
    first, _, rest = output.partition("\n")
    if not first.startswith("@@nm-dev "):
        return NmDevice(None, "")
    return NmDevice(first[9:].strip(), rest)


ROUTE_CONFIG_FILES: Fact[dict[str, str]] = Fact(
    "route_config_files", config_files_command, parse_config_files
)
# through sudo like ROUTE_CONFIG_FILES, so a re-read after the route's change is one command
NM_DEVICE: Fact[NmDevice] = Fact("nm_device", nm_command, parse_nm)


def route_commands(route: str, iface: str, net_tools: bool) -> tuple[list[str], list[str]]:
    """The documentation's route add and its undo; iproute2 where net-tools is absent."""
    if net_tools:
        net, mask = route_to_net_mask(route)
        return (
            ["route", "add", "-net", net, "netmask", mask, "dev", iface],
            ["route", "-v", "delete", "-net", net, "netmask", mask, "dev", iface],
        )
    return (
        ["ip", "route", "add", route, "dev", iface],
        ["ip", "route", "del", route, "dev", iface],
    )
