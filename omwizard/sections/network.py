"""Network: the documentation's multicast steps, and the route kept across reboots (beyond).

The page's six steps map to: interface-multicast (1), multicast-route (2-4 and 6 as undo),
multicast-ping (5), and route-persistent (beyond: the page's route is lost at reboot).
With `network.join: tcp-ip` every step here is skipped: Hazelcast then needs no multicast.
"""

from __future__ import annotations

import asyncio

from omwizard.configs import netconf
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.network import (
    IPV4_ADDRESSES,
    LINKS,
    MULTICAST_ROUTE,
    Capture,
    NodeInterface,
    PingRound,
    RouteConfig,
    RouteState,
    addresses,
    capture_command,
    echo_requests,
    interface_for_address,
    multicast_ping_verdicts,
    nm_device_probe,
    parse_pid,
    parse_ping,
    parse_route_config,
    ping_command,
    route_commands,
    route_config_parts,
    route_verdict,
    stop_command,
    tcpdump_listening,
)
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, RunResult, quote_argv
from omwizard.sections._firewall import DOC_FIREWALL, FirewallStep

ROUTE_PENDING = "network.route-pending"  # ctx.shared: nodes whose route a dry-run only showed
CAPTURE_SECONDS = 12  # tcpdump's own bound, should omwizard not be there to stop it
LISTEN_WAIT = 10  # how long to wait for every capture to say "listening on"
CAPTURE_MARGIN = 0.5  # after the pings, for the last one to cross the segment (then stop)


def multicast_join(plan: Plan, _node: Node) -> str | None:
    if plan.network.join == "tcp-ip":
        return "network.join is tcp-ip: Hazelcast uses a member list, no multicast needed"
    return None


class MulticastStep(Step):
    """Where every step of this section runs: Hazelcast members, when they join by multicast."""

    section = "network"
    only_om = True
    om_reason = "not an OpenMeetings node (role om): not a Hazelcast member"
    skip_when = (multicast_join,)


async def node_interface(ctx: StepContext, node: Node) -> str:
    """The node's multicast interface: the plan's, else the one carrying node.address."""
    if node.interface:
        return node.interface
    listing = await ctx.fact(node, IPV4_ADDRESSES)
    iface = interface_for_address(listing, node.address)
    if iface is None:
        raise RemoteError(
            node.name,
            f"no interface on {node.name} carries its address {node.address} "
            f"(`ip -o -4 addr show` lists: {', '.join(addresses(listing)) or 'nothing'})",
            "set nodes[].address to the node's cluster address, or nodes[].interface to the "
            "multicast interface",
        )
    return iface


# -- 1. interface-multicast -------------------------------------------------------------------


# -- each step's words, shown beside it (STEPS, at the end, gives each step its own) -------

DOC_INTERFACE_MULTICAST = (
    "Check your network interface supports multicast by running the following command "
    "in a terminal window: ifconfig -a. When you see MULTICAST against your network "
    "interface, it means your kernel is compiled with Multicast option and your network "
    "interface supports it."
)

DOC_MULTICAST_ROUTE = (
    "Check if multicast routing is configured: netstat -nr. If you don't see an IP in the "
    "range of 224.0.0.0 – 239.255.255.255 in the first table, it means you need to add "
    "your desired multicast address to your routes table. To add the multicast address: "
    "sudo route add -net 224.0.0.0 netmask 240.0.0.0 dev eth0 (ensure eth0 corresponds "
    "to your network interface name). Make sure you run this command on all servers you "
    "want to be multicast enabled. Using netstat check if the multicast IP is visible in "
    "your route table. Run sudo route -v delete -net 224.0.0.0 netmask 240.0.0.0 to "
    "disable multicast."
)

DOC_MULTICAST_PING = (
    "Using tcpdump and ping check if your server is able to multicast. Run the following "
    "command on all the servers: sudo tcpdump -ni eth0 host 224.0.0.0. Run the following "
    "command on any server: ping -t 1 -c 2 224.0.0.0. Check all servers receiving pings."
)

DOC_ROUTE_PERSISTENT = (
    "Beyond the documentation: `route add` lasts until the next reboot. omwizard writes "
    "the same route where the node's network configuration keeps it (netplan, ifupdown "
    "/etc/network/interfaces, NetworkManager or systemd-networkd)."
)


class InterfaceMulticastStep(MulticastStep):
    facts = (LINKS, IPV4_ADDRESSES)  # the interface, when the plan names none, in the same trip

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        iface = await node_interface(ctx, node)
        link = (await ctx.fact(node, LINKS)).get(iface)
        evidence = await ctx.fact_evidence(node, LINKS)
        if link is None:
            return Finding.failed(
                f"interface {iface} not found on {node.name}",
                "set nodes[].interface to the interface on the cluster network "
                "(`ip -o link` on the node lists them)",
                evidence,
            )
        if not link.multicast:
            return Finding.failed(
                f"{iface} on {node.name} has no MULTICAST flag ({','.join(sorted(link.flags))})",
                f"enable it (`ip link set dev {iface} multicast on`); if the network itself "
                "carries no multicast (most clouds), set network.join: tcp-ip",
                evidence,
            )
        state = "" if link.up else f" (link is {link.state})"
        return Finding.ok(f"{iface}: MULTICAST{state}", evidence,
                          data=NodeInterface(iface))


# -- 2-4, 6. multicast-route ------------------------------------------------------------------


class MulticastRouteStep(MulticastStep):
    facts = (MULTICAST_ROUTE, IPV4_ADDRESSES)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        net = ctx.plan.network
        iface = await node_interface(ctx, node)
        probe = await ctx.fact(node, MULTICAST_ROUTE)
        evidence = await ctx.fact_evidence(node, MULTICAST_ROUTE)
        verdict = route_verdict(probe.routes, net.route, iface, probe.get)
        data = RouteState(iface, probe.net_tools)
        if verdict.state == "ok":
            return Finding.ok(verdict.detail, evidence, data=data)
        if verdict.state == "elsewhere":
            return Finding.failed(
                f"{node.name}: {verdict.detail}",
                f"if {iface} is the cluster interface, remove the other route "
                f"(`ip route del {net.route} dev {verdict.other_dev}`) and apply again; "
                f"else set nodes[].interface: {verdict.other_dev}",
                evidence,
                data=data,
            )
        add, _undo = route_commands(net.route, iface, data.net_tools)
        return Finding.needs(
            verdict.detail, f"omwizard runs `{quote_argv(add)}`", evidence, data=data
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        seen = finding.typed(RouteState)
        iface = seen.interface or await node_interface(ctx, node)
        add, undo = route_commands(ctx.plan.network.route, iface, seen.net_tools)
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


async def multicast_ping(
    ctx: StepContext, nodes: list[Node], sender: str | None = None
) -> dict[str, Finding]:
    """One round of the documentation's test: captures on every node, a ping from `sender`
    (default: the first node), a verdict per node.

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
    pids: dict[str, int] = {}

    async def capture(node: Node) -> RunResult:
        def seen(line: str) -> None:
            pid = parse_pid(line)
            if pid is not None:
                pids[node.name] = pid
            if tcpdump_listening(line):
                ready[node.name].set()

        try:
            return await ctx.run(
                node,
                capture_command(ifaces[node.name], group, CAPTURE_SECONDS),
                sudo=True,
                timeout=CAPTURE_SECONDS + 20,
                on_line=seen,
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
    wanted = sender or (nodes[0].name if nodes else None)
    chosen = next((n for n in listening if n.name == wanted), listening[0] if listening else None)
    ping_result: RunResult | None = None
    if chosen is not None:
        try:
            ping_result = await ctx.run(chosen, ping_command(group), sudo=False, timeout=30)
        except RemoteError as exc:
            found[chosen.name] = Finding.failed(exc.message, exc.remedy)
    # A capture ends by itself once it saw both pings; one still running after the pings
    # are over (plus a margin for the last to arrive) can see nothing more: stop it.
    await stop_captures(ctx, live, tasks, pids, CAPTURE_MARGIN)
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
            found[name] = Finding.ok(detail, *evidence, data=PingRound(chosen.name))
        else:
            found[name] = Finding.failed(
                f"{name}: {detail}", verdict.remedy, *evidence, data=PingRound(chosen.name)
            )
    return found


async def stop_captures(
    ctx: StepContext, nodes: list[Node], tasks: dict[str, asyncio.Task[RunResult]],
    pids: dict[str, int], margin: float,
) -> None:
    """After `margin` seconds, SIGTERM every capture still running (tcpdump then prints what
    it saw and exits 0), all nodes at once; the captures' own bound stays the fallback."""
    running = [tasks[n.name] for n in nodes if not tasks[n.name].done()]
    if running:
        await asyncio.wait(running, timeout=margin)
    late = [n for n in nodes if not tasks[n.name].done() and n.name in pids]

    async def stop(node: Node) -> None:
        try:
            await ctx.run(node, stop_command(pids[node.name], "timeout"), sudo=True, timeout=20)
        except RemoteError:
            pass  # the capture's own timeout ends it

    await asyncio.gather(*(stop(n) for n in late))


async def ping_from_each(ctx: StepContext, nodes: list[Node]) -> dict[str, dict[str, Finding]]:
    """ "Repeat from each node on request": one round per sender, one after the other."""
    return {n.name: await multicast_ping(ctx, nodes, n.name) for n in nodes}


class MulticastPingStep(MulticastStep):
    cluster_wide = True

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

async def nm_facts(ctx: StepContext, node: Node, iface: str) -> tuple[str | None, str, list[str]]:
    """NetworkManager's connection for iface and its ipv4.routes (None: NM absent or idle)."""
    from omwizard.configs.netconf import nm_connection

    result = await ctx.run(node, nm_device_probe(iface), sudo=False)
    conn = nm_connection(result.stdout)
    if conn is None:
        return None, "", []
    routes = await ctx.run(
        node, ["nmcli", "-g", "ipv4.routes", "connection", "show", conn], sudo=False
    )
    return conn, routes.stdout, [result.evidence(), routes.evidence()]


def unknown_config_remedy(route: str, iface: str) -> str:
    return (
        f"run `ip route replace {route} dev {iface}` from whatever brings {iface} up at boot "
        "(your provisioning, a systemd unit, rc.local) and skip this step in the wizard (s) "
        f"saying so; or manage {iface} with netplan, ifupdown, NetworkManager or "
        "systemd-networkd and omwizard adds the route itself"
    )


class RoutePersistentStep(MulticastStep):
    async def check(self, ctx: StepContext, node: Node) -> Finding:
        route = ctx.plan.network.route
        iface = await node_interface(ctx, node)
        got = await ctx.run_parts(node, route_config_parts(iface), sudo=False)
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
        data = RouteConfig(iface, cfg.kind, cfg.path, cfg.connection, cfg.netplan_kind,
                           cfg.ident)
        if cfg.kind == "unknown":
            # The live route is lost at the next reboot and omwizard knows no file to keep it
            # in: not ok. needs-change with the operator's remedy; apply fails with the same.
            return Finding.needs(
                f"{route} dev {iface} is lost at the next reboot: no netplan, ifupdown stanza, "
                f"NetworkManager connection or systemd-networkd .network configures {iface}",
                unknown_config_remedy(route, iface),
                *evidence,
                data=data,
            )
        if cfg.present:
            return Finding.ok(f"persistent ({cfg.kind}: {cfg.where})", *evidence, data=data)
        target = cfg.path or f"NetworkManager connection {cfg.connection!r}"
        return Finding.needs(
            f"{route} dev {iface} is not in the {cfg.kind} configuration: lost at reboot",
            f"omwizard adds it to {target} (takes effect at the next boot; the live route "
            "is already in place, so nothing is reloaded)",
            *evidence,
            data=data,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        route = ctx.plan.network.route
        d = finding.typed(RouteConfig)
        iface, kind, path = d.interface, d.config, d.path
        if kind == "unknown":
            raise RemoteError(
                node.name,
                f"omwizard cannot make {route} dev {iface} survive a reboot: no "
                f"network configuration it knows configures {iface}",
                unknown_config_remedy(route, iface),
            )
        if kind == "netplan":
            text = netconf.netplan_text(d.ident or iface, route, d.netplan_kind or "ethernets")
            await ctx.edit_file(node, netconf.NETPLAN_FILE, lambda _old: text, mode="0600")
        elif kind == "ifupdown" and path is not None:
            await ctx.edit_file(
                node, path, lambda old: netconf.ifupdown_add_route(old, iface, route)
            )
        elif kind == "networkd" and path is not None:
            folder = path.rsplit("/", 1)[0]
            probe = await ctx.run(node, ["test", "-d", folder])
            if not probe.ok:
                await ctx.change_command(
                    node, ["mkdir", "-m", "0755", "--", folder], ["rmdir", "--", folder]
                )
            await ctx.edit_file(node, path, lambda _old: netconf.networkd_dropin_text(route))
        elif kind == "networkmanager" and d.connection is not None:
            conn = d.connection
            await ctx.change_command(
                node,
                ["nmcli", "connection", "modify", conn, "+ipv4.routes", route],
                ["nmcli", "connection", "modify", conn, "-ipv4.routes", route],
            )


STEPS: list[Step] = [
    FirewallStep("firewall", "Firewall lets the cluster's traffic through", DOC_FIREWALL),
    InterfaceMulticastStep(
        "interface-multicast", "Interface supports multicast",
        DOC_INTERFACE_MULTICAST,
    ),
    MulticastRouteStep("multicast-route", "Multicast route", DOC_MULTICAST_ROUTE),
    MulticastPingStep("multicast-ping", "Multicast ping reaches every node", DOC_MULTICAST_PING),
    RoutePersistentStep(
        "route-persistent", "Multicast route survives a reboot",
        DOC_ROUTE_PERSISTENT,
    ),
]
