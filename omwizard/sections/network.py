"""Network: the documentation's multicast steps, and the route kept across reboots (beyond).

The page's six steps map to: interface-multicast (1), multicast-route (2-4 and 6 as undo),
multicast-ping (5), and route-persistent (beyond: the page's route is lost at reboot).
With `network.join: tcp-ip` every step here is skipped: Hazelcast then needs no multicast.
"""

from __future__ import annotations

import asyncio
import shlex

from omwizard.configs import netconf
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.base import Files
from omwizard.facts.network import (
    IPV4_ADDRESSES,
    LINKS,
    MULTICAST_CAPTURE_SECONDS,
    MULTICAST_ROUTE,
    NM_DEVICE,
    ROUTE_CONFIG_FILES,
    Capture,
    MulticastRun,
    NodeInterface,
    PingRound,
    RouteConfig,
    RouteState,
    addresses,
    capture_argv,
    echo_requests,
    interface_for_address,
    multicast_ping_verdicts,
    multicast_script,
    nm_device_probe,
    parse_multicast_run,
    parse_ping,
    parse_route_config,
    ping_command,
    route_commands,
    route_verdict,
)
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, RunResult, quote_argv
from omwizard.sections._firewall import DOC_FIREWALL, FirewallStep

ROUTE_PENDING = "network.route-pending"  # ctx.shared: nodes whose route a dry-run only showed


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
    reads = frozenset({R.LINKS})
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
    reads = frozenset({R.LINKS, R.ROUTE})
    writes = frozenset({R.ROUTE})
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

    Each node runs it as one command (facts.network.multicast_script: its capture, the
    sender's ping once the captures listen, the capture ended when it has what it needs or
    the pings are over), all nodes at once. A sender whose capture did not start does not
    ping: the round is run again from the first node whose capture listened.
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
    wanted = sender or (nodes[0].name if nodes else None)

    async def one_round(by: str | None) -> dict[str, MulticastRun | RemoteError]:
        async def script(node: Node) -> MulticastRun | RemoteError:
            try:
                res = await ctx.run(
                    node, multicast_script(ifaces[node.name], group, node.name == by),
                    sudo=True, timeout=MULTICAST_CAPTURE_SECONDS + 20,
                )
            except RemoteError as exc:
                return exc
            return parse_multicast_run(res.stdout + ("\n" + res.stderr if res.stderr else ""))

        runs = await asyncio.gather(*(script(n) for n in live))
        return {n.name: r for n, r in zip(live, runs, strict=True)}

    runs = await one_round(wanted)
    listening = [n for n in live if (r := runs[n.name]) and isinstance(r, MulticastRun)
                 and r.listening]
    chosen = next((n for n in listening if n.name == wanted), listening[0] if listening else None)
    if chosen is not None and chosen.name != wanted:
        runs = await one_round(chosen.name)  # the wanted sender could not listen: again
    sent = runs.get(chosen.name) if chosen is not None else None
    ping_run = sent.ping if isinstance(sent, MulticastRun) else None
    if isinstance(sent, RemoteError) and chosen is not None:
        found[chosen.name] = Finding.failed(sent.message, sent.remedy)
    for name, run in runs.items():
        if isinstance(run, RemoteError):
            found.setdefault(name, Finding.failed(run.message, run.remedy))

    if chosen is None or ping_run is None:
        for node in live:
            found.setdefault(
                node.name,
                Finding.failed(
                    "multicast ping not run: no node could start a capture and send",
                    "check the other results of this step and of network.multicast-route",
                ),
            )
        return found
    ping_result = RunResult(ping_command(group), ping_run[0], ping_run[1], "")
    capture_cmd = {n.name: shlex.join(capture_argv(ifaces[n.name], group,
                                                   MULTICAST_CAPTURE_SECONDS)) for n in live}
    captures = {}
    results: dict[str, RunResult] = {}
    for node in live:
        run = runs[node.name]
        if not isinstance(run, MulticastRun):
            continue
        res = RunResult(capture_cmd[node.name], run.capture_status, run.capture, "")
        results[node.name] = res
        if run.capture_ran:
            captures[node.name] = Capture(node.name, tuple(echo_requests(run.capture, group)))
        else:
            captures[node.name] = Capture(
                node.name, None, run.capture[-300:] or f"exit {run.capture_status}"
            )
    ping = parse_ping(ping_result.output)
    verdicts = multicast_ping_verdicts(chosen.name, chosen.address, group, ping, captures, ifaces)
    note = "" if wanted in (None, chosen.name) else f" ({wanted} could not send; {chosen.name} did)"
    for name, verdict in verdicts.items():
        evidence = [ping_result.evidence()] if name == chosen.name else []
        if name in results:
            evidence.append(results[name].evidence())
        detail = verdict.detail + (note if name == chosen.name else "")
        if verdict.ok:
            found[name] = Finding.ok(detail, *evidence, data=PingRound(chosen.name))
        else:
            found[name] = Finding.failed(
                f"{name}: {detail}", verdict.remedy, *evidence, data=PingRound(chosen.name)
            )
    return found


async def ping_from_each(ctx: StepContext, nodes: list[Node]) -> dict[str, dict[str, Finding]]:
    """ "Repeat from each node on request": one round per sender, one after the other."""
    return {n.name: await multicast_ping(ctx, nodes, n.name) for n in nodes}


class MulticastPingStep(MulticastStep):
    reads = frozenset({R.LINKS, R.ROUTE, R.FIREWALL})
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


# the files route-persistent's apply edits at fixed paths (ifupdown's main file, omwizard's
# netplan file): in the run's file cache, so the edit reads nothing of its own (its write
# still refuses a file that changed since)
ROUTE_EDIT_FILES = Files("route-edit-files",
                         lambda _plan, _node: [netconf.IFUPDOWN_MAIN, netconf.NETPLAN_FILE])


class RoutePersistentStep(MulticastStep):
    reads = frozenset({R.LINKS, R.ROUTE_CONFIG})
    writes = frozenset({R.ROUTE_CONFIG})
    # the configuration files and NetworkManager's view, read with the node's other facts
    facts = (ROUTE_CONFIG_FILES, NM_DEVICE, IPV4_ADDRESSES)
    files = (ROUTE_EDIT_FILES,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        route = ctx.plan.network.route
        iface = await node_interface(ctx, node)
        files = await ctx.fact(node, ROUTE_CONFIG_FILES)
        nm = await ctx.fact(node, NM_DEVICE)
        _paths, device, routes_of, routes = parse_route_config("", nm.lines)
        conn = netconf.nm_connection(device or "")
        if nm.interface not in (None, iface) or (conn is not None and conn != routes_of):
            # the shell picked another interface, or read the connection's name otherwise
            conn, routes, nm_evidence = await nm_facts(ctx, node, iface)
        else:
            routes, nm_evidence = (routes if conn is not None else ""), []
        cfg = netconf.detect(files, iface, route, nm_conn=conn, nm_routes=routes)
        # the files' names only: their text (a netplan file may hold a Wi-Fi key) is no evidence
        listed = "\n".join(sorted(files)) or "(none)"
        evidence = [f"network configuration files read:\n{listed}",
                    await ctx.fact_evidence(node, NM_DEVICE), *nm_evidence]
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
