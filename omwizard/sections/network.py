"""Network: the documentation's multicast steps, and the route kept across reboots (beyond).

The page's six steps map to: interface-multicast (1), multicast-route (2-4 and 6 as undo),
multicast-ping (5), and route-persistent (beyond: the page's route is lost at reboot).
With `network.join: tcp-ip` every step here is skipped: Hazelcast then needs no multicast.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable

from omwizard.configs import netconf
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.network import (
    Capture,
    echo_requests,
    interface_for_address,
    multicast_ping_verdicts,
    parse_link,
    parse_ping,
    parse_routes,
    route_to_net_mask,
    route_verdict,
    tcpdump_listening,
)
from omwizard.plan.model import Node
from omwizard.remote.parts import run_parts
from omwizard.remote.results import RemoteError, RunResult, quote_argv

PING_FROM = "network.multicast-ping.from"  # ctx.shared key: the node that sends the pings
ROUTE_PENDING = "network.route-pending"  # ctx.shared: nodes whose route a dry-run only showed
CAPTURE_SECONDS = 12  # tcpdump's own bound (timeout N); -c 2 ends it sooner
LISTEN_WAIT = 10  # how long to wait for every capture to say "listening on"


def multicast_skip(ctx: StepContext, node: Node) -> str | None:
    """The shared `applies` of the multicast steps."""
    if not node.is_om:
        return "not an OpenMeetings node (role om): not a Hazelcast member"
    if ctx.plan.network.join == "tcp-ip":
        return "network.join is tcp-ip: Hazelcast uses a member list, no multicast needed"
    return None


async def node_interface(ctx: StepContext, node: Node) -> str:
    """The node's multicast interface: the plan's, else the one carrying node.address."""
    if node.interface:
        return node.interface
    cache: dict[str, str] = ctx.shared.setdefault("network.interface", {})
    if node.name in cache:
        return cache[node.name]
    result = await ctx.run(node, ["ip", "-o", "-4", "addr", "show"], sudo=False)
    iface = interface_for_address(result.stdout, node.address)
    if iface is None:
        raise RemoteError(
            node.name,
            f"no interface on {node.name} carries its address {node.address} "
            f"(`ip -o -4 addr show` lists: {', '.join(_addresses(result.stdout)) or 'nothing'})",
            "set nodes[].address to the node's cluster address, or nodes[].interface to the "
            "multicast interface",
        )
    cache[node.name] = iface
    return iface


def _addresses(ip_o_addr: str) -> list[str]:
    return [w[3] for w in (line.split() for line in ip_o_addr.splitlines()) if len(w) > 3]


async def run_streaming(
    ctx: StepContext,
    node: Node,
    argv: list[str] | str,
    on_line: Callable[[str], None],
    *,
    sudo: bool,
    timeout: float,
) -> RunResult:
    """ctx.run with a line callback (tcpdump's "listening on", a listener's READY)."""
    return await ctx.run(node, argv, sudo=sudo, timeout=timeout, on_line=on_line)


# -- 1. interface-multicast -------------------------------------------------------------------


class InterfaceMulticastStep(Step):
    section = "network"
    name = "interface-multicast"
    title = "Interface supports multicast"
    doc = (
        "Check your network interface supports multicast by running the following command "
        "in a terminal window: ifconfig -a. When you see MULTICAST against your network "
        "interface, it means your kernel is compiled with Multicast option and your network "
        "interface supports it."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return multicast_skip(ctx, node)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        iface = await node_interface(ctx, node)
        result = await ctx.run(node, ["ip", "-o", "link", "show", "dev", iface], sudo=False)
        link = parse_link(result.stdout)
        if link is None:
            return Finding.failed(
                f"interface {iface} not found on {node.name}",
                "set nodes[].interface to the interface on the cluster network "
                "(`ip -o link` on the node lists them)",
                result.evidence(),
            )
        if not link.multicast:
            return Finding.failed(
                f"{iface} on {node.name} has no MULTICAST flag ({','.join(sorted(link.flags))})",
                f"enable it (`ip link set dev {iface} multicast on`); if the network itself "
                "carries no multicast (most clouds), set network.join: tcp-ip",
                result.evidence(),
            )
        state = "" if link.up else f" (link is {link.state})"
        return Finding.ok(f"{iface}: MULTICAST{state}", result.evidence(), interface=iface)


# -- 2-4, 6. multicast-route ------------------------------------------------------------------


def route_probe(route: str, group: str) -> str:
    q = shlex.quote
    return (
        "command -v route >/dev/null 2>&1 && echo @@have-route; echo @@show; "
        f"ip route show {q(route)} 2>&1; echo @@get; ip route get {q(group)} 2>&1; true"
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


class MulticastRouteStep(Step):
    section = "network"
    name = "multicast-route"
    title = "Multicast route"
    has_apply = True
    doc = (
        "Check if multicast routing is configured: netstat -nr. If you don't see an IP in the "
        "range of 224.0.0.0 – 239.255.255.255 in the first table, it means you need to add "
        "your desired multicast address to your routes table. To add the multicast address: "
        "sudo route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0 (ensure eth0 corresponds "
        "to your network interface name). Make sure you run this command on all servers you "
        "want to be multicast enabled. Using netstat check if the multicast IP is visible in "
        "your route table. Run sudo route -v delete -net 224.0.0.0 netmask 240.0.0.0 to "
        "disable multicast."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return multicast_skip(ctx, node)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        net = ctx.plan.network
        iface = await node_interface(ctx, node)
        result = await ctx.run(node, route_probe(net.route, net.multicast_group), sudo=False)
        parts = split_probe(result.stdout)
        verdict = route_verdict(
            parse_routes(parts.get("show", "")), net.route, iface, parts.get("get", "")
        )
        data = {"interface": iface, "net_tools": "have-route" in parts}
        if verdict.state == "ok":
            return Finding.ok(verdict.detail, result.evidence(), **data)
        if verdict.state == "elsewhere":
            return Finding.failed(
                f"{node.name}: {verdict.detail}",
                f"if {iface} is the cluster interface, remove the other route "
                f"(`ip route del {net.route} dev {verdict.other_dev}`) and apply again; "
                f"else set nodes[].interface: {verdict.other_dev}",
                result.evidence(),
                **data,
            )
        add, _undo = route_commands(net.route, iface, data["net_tools"])
        return Finding.needs(
            verdict.detail, f"omwizard runs `{quote_argv(add)}`", result.evidence(), **data
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        iface = finding.data.get("interface") or await node_interface(ctx, node)
        add, undo = route_commands(
            ctx.plan.network.route, iface, bool(finding.data.get("net_tools"))
        )
        if ctx.dry_run:
            ctx.shared.setdefault(ROUTE_PENDING, set()).add(node.name)
        await ctx.change_command(
            node,
            add,
            undo,
            ok_text=("File exists",),
            undo_ok_text=("No such process",),
            remedy=f"check that {iface} exists and is up on {node.name}",
        )


# -- 5. multicast-ping ------------------------------------------------------------------------


def capture_argv(iface: str, group: str) -> list[str]:
    """tcpdump bounded twice: -c 2 (the two pings) and timeout (nothing arrives)."""
    return [
        "timeout",
        str(CAPTURE_SECONDS),
        "tcpdump",
        "-l",
        "-n",
        "-i",
        iface,
        "-c",
        "2",
        f"icmp and dst host {group}",
    ]


def ping_argv(group: str) -> list[str]:
    """The documentation's ping; -W 1 so it does not linger 10 s for replies that never come."""
    return ["ping", "-t", "1", "-c", "2", "-W", "1", group]


async def multicast_ping(
    ctx: StepContext, nodes: list[Node], sender: str | None = None
) -> dict[str, Finding]:
    """One round of the documentation's test: captures on every node, a ping from `sender`
    (default: ctx.shared[PING_FROM], else the first node), a verdict per node.

    The TUI calls this with each node as sender for "repeat from each node".
    """
    group = ctx.plan.network.multicast_group
    found: dict[str, Finding] = {}
    ifaces: dict[str, str] = {}

    async def resolve(node: Node) -> None:
        try:
            ifaces[node.name] = await node_interface(ctx, node)
        except RemoteError as exc:
            found[node.name] = Finding.failed(exc.message, exc.remedy)

    await asyncio.gather(*(resolve(n) for n in nodes))
    live = [n for n in nodes if n.name in ifaces]
    ready = {n.name: asyncio.Event() for n in live}

    async def capture(node: Node) -> RunResult:
        def seen(line: str) -> None:
            if tcpdump_listening(line):
                ready[node.name].set()

        try:
            return await run_streaming(
                ctx,
                node,
                capture_argv(ifaces[node.name], group),
                seen,
                sudo=True,
                timeout=CAPTURE_SECONDS + 20,
            )
        finally:
            ready[node.name].set()  # ended (or failed): nothing more to wait for

    tasks = {n.name: asyncio.ensure_future(capture(n)) for n in live}
    waits = [asyncio.ensure_future(ev.wait()) for ev in ready.values()]
    if waits:
        await asyncio.wait(waits, timeout=LISTEN_WAIT)
        for w in waits:
            w.cancel()
    listening = [n for n in live if ready[n.name].is_set() and not tasks[n.name].done()]

    wanted = sender or ctx.shared.get(PING_FROM) or (nodes[0].name if nodes else None)
    chosen = next((n for n in listening if n.name == wanted), listening[0] if listening else None)
    ping_result: RunResult | None = None
    if chosen is not None:
        try:
            ping_result = await ctx.run(chosen, ping_argv(group), sudo=False, timeout=30)
        except RemoteError as exc:
            found[chosen.name] = Finding.failed(exc.message, exc.remedy)
    results: dict[str, RunResult | BaseException] = {}
    for name, task in tasks.items():
        try:
            results[name] = await task
        except RemoteError as exc:
            found.setdefault(name, Finding.failed(exc.message, exc.remedy))
            results[name] = exc

    if chosen is None or ping_result is None:
        for node in live:
            found.setdefault(
                node.name,
                Finding.failed(
                    "multicast ping not run: no node could start a capture and send",
                    "check the other results of this step and of network.multicast-route",
                ),
            )
        return found
    captures = {}
    for node in live:
        res = results.get(node.name)
        if isinstance(res, RunResult) and res.exit_status in (0, 124):
            captures[node.name] = Capture(node.name, tuple(echo_requests(res.stdout, group)))
        elif isinstance(res, RunResult):
            captures[node.name] = Capture(
                node.name, None, res.output[-300:] or f"exit {res.exit_status}"
            )
    ping = parse_ping(ping_result.output)
    verdicts = multicast_ping_verdicts(chosen.name, chosen.address, group, ping, captures, ifaces)
    note = "" if wanted in (None, chosen.name) else f" ({wanted} could not send; {chosen.name} did)"
    for name, verdict in verdicts.items():
        res = results[name]
        evidence = [ping_result.evidence()] if name == chosen.name else []
        if isinstance(res, RunResult):
            evidence.append(res.evidence())
        detail = verdict.detail + (note if name == chosen.name else "")
        if verdict.ok:
            found[name] = Finding.ok(detail, *evidence, sender=chosen.name)
        else:
            found[name] = Finding.failed(
                f"{name}: {detail}", verdict.remedy, *evidence, sender=chosen.name
            )
    return found


async def ping_from_each(ctx: StepContext, nodes: list[Node]) -> dict[str, dict[str, Finding]]:
    """ "Repeat from each node on request": one round per sender, one after the other."""
    return {n.name: await multicast_ping(ctx, nodes, n.name) for n in nodes}


class MulticastPingStep(Step):
    section = "network"
    name = "multicast-ping"
    title = "Multicast ping reaches every node"
    cluster_wide = True
    doc = (
        "Using tcpdump and ping check if your server is able to multicast. Run the following "
        "command on all the servers: sudo tcpdump -ni eth0 host 224.0.0.0. Run the following "
        "command on any server: ping -t 1 -c 2 224.0.0.0. Check all servers receiving pings."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return multicast_skip(ctx, node)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        return (await multicast_ping(ctx, [node], node.name))[node.name]

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        pending = sorted(ctx.shared.get(ROUTE_PENDING, ()))
        if ctx.dry_run and pending:
            # A dry run added no route, so a ping now would only fail: say when it runs.
            why = (
                f"dry run: the route is not added yet on {', '.join(pending)}; "
                "the ping runs during apply"
            )
            return {n.name: Finding.skipped(why) for n in nodes}
        return await multicast_ping(ctx, nodes)


# -- beyond: route-persistent -----------------------------------------------------------------

CONFIG_FILES_PROBE = (
    "for f in /etc/netplan/*.yaml /etc/netplan/*.yml /etc/network/interfaces "
    "/etc/network/interfaces.d/* /etc/systemd/network/*.network "
    '/etc/systemd/network/*.network.d/*.conf; do [ -f "$f" ] && echo "file:$f"; done; true'
)


def route_config_parts(iface: str) -> dict[str, str]:
    """route-persistent's facts for facts.run_parts: the config files there are, and
    NetworkManager's connection for iface (`@@nm-device`) with, when there is one, its
    ipv4.routes (`@@nm-routes NAME`)."""
    nm = (
        "command -v nmcli >/dev/null 2>&1 || exit 0; "
        f"d=$(nmcli -t -f GENERAL.CONNECTION device show {shlex.quote(iface)} 2>/dev/null); "
        'echo @@nm-device; printf "%s\\n" "$d"; '
        "c=$(printf '%s\\n' \"$d\" | sed -n 's/^GENERAL\\.CONNECTION://p' | head -n 1); "
        'case "$c" in ""|--) ;; *) echo "@@nm-routes $c"; '
        'nmcli -g ipv4.routes connection show "$c" 2>/dev/null;; esac; true'
    )
    return {"files": CONFIG_FILES_PROBE, "nm": nm}


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


async def nm_facts(ctx: StepContext, node: Node, iface: str) -> tuple[str | None, str, list[str]]:
    """NetworkManager's connection for iface and its ipv4.routes (None: NM absent or idle)."""
    from omwizard.configs.netconf import nm_connection

    result = await ctx.run(
        node,
        "command -v nmcli >/dev/null 2>&1 || exit 0; "
        f"nmcli -t -f GENERAL.CONNECTION device show {shlex.quote(iface)} 2>/dev/null; true",
        sudo=False,
    )
    conn = nm_connection(result.stdout)
    if conn is None:
        return None, "", []
    routes = await ctx.run(
        node, ["nmcli", "-g", "ipv4.routes", "connection", "show", conn], sudo=False
    )
    return conn, routes.stdout, [result.evidence(), routes.evidence()]


class RoutePersistentStep(Step):
    section = "network"
    name = "route-persistent"
    title = "Multicast route survives a reboot"
    has_apply = True
    doc = (
        "Beyond the documentation: `route add` lasts until the next reboot. omwizard writes "
        "the same route where the node's network configuration keeps it (netplan, ifupdown "
        "/etc/network/interfaces, NetworkManager or systemd-networkd)."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return multicast_skip(ctx, node)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        route = ctx.plan.network.route
        iface = await node_interface(ctx, node)
        got = await run_parts(ctx, node, route_config_parts(iface), sudo=False)
        paths, device, routes_of, routes = parse_route_config(got["files"].stdout,
                                                              got["nm"].stdout)
        texts = await ctx.read_texts(node, paths) if paths else {}
        files = {p: t for p, t in texts.items() if t is not None}
        conn = netconf.nm_connection(device or "")
        if conn is not None and conn != routes_of:  # the shell read the name otherwise
            conn, routes, nm_evidence = await nm_facts(ctx, node, iface)
        else:
            routes, nm_evidence = (routes if conn is not None else ""), []
        cfg = netconf.detect(files, iface, route, nm_conn=conn, nm_routes=routes)
        evidence = [got["files"].evidence(), got["nm"].evidence(), *nm_evidence]
        data = {
            "interface": iface,
            "kind": cfg.kind,
            "path": cfg.path,
            "connection": cfg.connection,
            "netplan_kind": cfg.netplan_kind,
            "ident": cfg.ident,
        }
        if cfg.kind == "unknown":
            # Not needs-change: there is nothing omwizard can write; not failed either, the
            # live route works until the next reboot. An ok that says what to do.
            return Finding.ok(
                f"{node.name}: no netplan, ifupdown stanza, NetworkManager connection or "
                f"systemd-networkd .network configures {iface}: unknown network config; add "
                f"`ip route add {route} dev {iface}` to your boot scripts",
                *evidence,
                **data,
            )
        if cfg.present:
            return Finding.ok(f"persistent ({cfg.kind}: {cfg.where})", *evidence, **data)
        target = cfg.path or f"NetworkManager connection {cfg.connection!r}"
        return Finding.needs(
            f"{route} dev {iface} is not in the {cfg.kind} configuration: lost at reboot",
            f"omwizard adds it to {target} (takes effect at the next boot; the live route "
            "is already in place, so nothing is reloaded)",
            *evidence,
            **data,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        route = ctx.plan.network.route
        d = finding.data
        iface, kind, path = d["interface"], d["kind"], d.get("path")
        if kind == "netplan":
            text = netconf.netplan_text(
                d.get("ident") or iface, route, d.get("netplan_kind") or "ethernets"
            )
            await ctx.edit_file(node, netconf.NETPLAN_FILE, lambda _old: text, mode="0600")
        elif kind == "ifupdown":
            await ctx.edit_file(
                node, path, lambda old: netconf.ifupdown_add_route(old, iface, route)
            )
        elif kind == "networkd":
            folder = path.rsplit("/", 1)[0]
            probe = await ctx.run(node, ["test", "-d", folder])
            if not probe.ok:
                await ctx.change_command(
                    node, ["mkdir", "-m", "0755", "--", folder], ["rmdir", "--", folder]
                )
            await ctx.edit_file(node, path, lambda _old: netconf.networkd_dropin_text(route))
        elif kind == "networkmanager":
            conn = d["connection"]
            await ctx.change_command(
                node,
                ["nmcli", "connection", "modify", conn, "+ipv4.routes", route],
                ["nmcli", "connection", "modify", conn, "-ipv4.routes", route],
            )


STEPS: list[Step] = [
    InterfaceMulticastStep(),
    MulticastRouteStep(),
    MulticastPingStep(),
    RoutePersistentStep(),
]
