"""Preflight: can we reach every node, is OpenMeetings there, and do the nodes agree on time."""

from __future__ import annotations

import asyncio
import time

from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.network import (
    ClockSample,
    clock_outliers,
    listener_for,
    listener_ports,
    parse_date,
    parse_ports_run,
    path_verdict,
    plan_probes,
    worth_probing,
)
from omwizard.facts.preflight import (
    OM_INSTALL,
    PORTS_LIMIT,
    PORTS_LISTEN,
    STRAY_LOOKS,
    STRAY_UNITS,
    SUDO_MODES,
    TIMEZONE,
    TIMEZONE_FILE,
    ZONEINFO,
    OmInstall,
    SshAccess,
    TimezoneState,
    db_target,
    exists_probe,
    hazelcast_config_property,
    ports_command,
    working_dir_candidates,
    zoneinfo_path,
)
from omwizard.om.layout import OmLayout, version_text
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, RunResult

TIMEZONE_DOC = (
    "All servers should be configured to have same Time zone (To avoid Schedulers to drop "
    "user sessions as outdated)"
)


CLOCK_TOLERANCE = 2.0  # seconds the nodes' clocks may differ

# -- each step's words, shown beside it (STEPS, at the end, gives each step its own) -------

DOC_SSH = (
    "Multiple OM servers should be set up as described in Installation. omwizard reaches "
    "each of them over SSH, with the host key checked and root rights through sudo."
)

DOC_OM_INSTALLED = "OpenMeetings 2.1 or later is required to use clustering."

DOC_CLOCK = (
    "Beyond the documentation (which asks for the same time zone so that schedulers do "
    "not drop user sessions as outdated): the clocks themselves must agree. omwizard "
    f"reads every node's clock once and wants them within {CLOCK_TOLERANCE:g} s of each "
    "other; keep them so with NTP."
)

DOC_STRAY_CONFIG = (
    "Beyond the documentation: Hazelcast reads -Dhazelcast.config first, then "
    "./hazelcast.xml in the process's working directory, and only then the webapp's "
    "WEB-INF/classes/hazelcast.xml that the documentation edits. A stray file or property "
    "would silently win."
)

DOC_PORTS = (
    "Beyond the documentation: the members talk on TCP 5701 (Hazelcast) and 5636 (the "
    "OpenJPA TCP remote commit provider the documentation un-comments), every node to "
    "the database port, and UDP on the multicast port. Before OpenMeetings runs nothing "
    "listens there, so omwizard tests the path with a short-lived listener on the target "
    "and a probe from the source: refused = no listener, path open; no answer = a "
    "firewall drops it."
)


class PreflightStep(Step):
    """Preflight's steps."""

    section = "preflight"


class SshStep(PreflightStep):
    reads = frozenset[R]()  # the login itself: nothing a change makes

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        remote = ctx.pool.get(node)
        await remote.connect()
        mode = await remote.sudo_mode()
        sudo = SUDO_MODES[mode]
        how = {
            "none": f"logged in as {node.ssh.user}",
            "nopasswd": f"logged in as {node.ssh.user}, sudo without password",
            "password": f"logged in as {node.ssh.user}, sudo with password",
        }[sudo]
        if node.ssh.user != "root" and node.ssh.sudo == "never":
            how += " (sudo: never: changes need root rights)"
        access = SshAccess(node.ssh.user, sudo, node.host, node.ssh.port)
        return Finding.ok(f"{how} at {node.host}:{node.ssh.port}", data=access)


class OmInstalledStep(PreflightStep):
    reads = frozenset({R.OM_INSTALL})
    only_om = True
    facts = (OM_INSTALL,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        layout = OmLayout(ctx.plan.cluster.om_home)
        om: OmInstall = await ctx.fact(node, OM_INSTALL)
        evidence = await ctx.fact_evidence(node, OM_INSTALL)
        if not om.present:
            return Finding.failed(
                f"no OpenMeetings at {ctx.plan.cluster.om_home} ({layout.hazelcast_xml} missing)",
                "install OpenMeetings as its Installation page says, or set cluster.om_home "
                "to where it is installed",
                evidence,
                data=om,
            )
        version = om.version
        text = version_text(version)
        if version is not None and version[:2] < (2, 1):
            return Finding.failed(
                f"OpenMeetings {text}: clustering needs 2.1 or later",
                "upgrade OpenMeetings on this node first",
                evidence,
                data=om,
            )
        if version is not None and version[:2] == (4, 0):
            return Finding.ok(
                f"OpenMeetings {text} (4.0.x: Hazelcast 3 schema, no member attributes, "
                "logs in log/)",
                evidence,
                data=om,
            )
        return Finding.ok(f"OpenMeetings {text}", evidence, data=om)


class TimezoneStep(PreflightStep):
    reads = frozenset({R.TIMEZONE})
    writes = frozenset({R.TIMEZONE})
    facts = (TIMEZONE, ZONEINFO)
    files = (TIMEZONE_FILE,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        want = ctx.plan.cluster.timezone
        seen: TimezoneState = await ctx.fact(node, TIMEZONE)
        evidence = await ctx.fact_evidence(node, TIMEZONE)
        if seen.zone is None:
            return Finding.needs(
                "the node's time zone could not be read",
                f"omwizard sets it to {want}",
                evidence,
                data=seen,
            )
        if seen.zone == want:
            return Finding.ok(f"{seen.zone} (from {seen.source})", evidence, data=seen)
        return Finding.needs(
            f"time zone is {seen.zone}, the cluster's is {want}",
            f"set the node's zone to {want}",
            evidence,
            data=seen,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        want = ctx.plan.cluster.timezone
        seen = finding.typed(TimezoneState)
        old = seen.zone
        zoneinfo = zoneinfo_path(want)
        if not await ctx.fact(node, ZONEINFO):  # read with the node's facts
            raise RemoteError(
                node.name,
                f"{zoneinfo} does not exist on the node",
                "install the tzdata package on the node, then run apply again",
            )
        if seen.source == "timedatectl":
            await ctx.change_command(
                node,
                ["timedatectl", "set-timezone", want],
                ["timedatectl", "set-timezone", old] if old else None,
            )
            return
        old_target = f"/usr/share/zoneinfo/{old}" if old else None
        await ctx.change_command(
            node,
            ["ln", "-sfn", zoneinfo, "/etc/localtime"],
            ["ln", "-sfn", old_target, "/etc/localtime"] if old_target else None,
        )
        await ctx.edit_file(node, "/etc/timezone", lambda _text: want + "\n")


# -- beyond: clock ----------------------------------------------------------------------------

class ClockStep(PreflightStep):
    reads = frozenset({R.CLOCK})
    cluster_wide = True

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        found: dict[str, Finding] = {}
        samples: dict[str, tuple[ClockSample, str]] = {}

        async def sample(node: Node) -> None:
            try:
                await ctx.pool.get(node).connect()  # the connect must not count as round trip
                before = time.time()
                result = await ctx.run(node, ["date", "+%s.%N"], sudo=False, timeout=20)
                after = time.time()
            except RemoteError as exc:
                found[node.name] = Finding.failed(exc.message, exc.remedy)
                return
            remote = parse_date(result.stdout)
            if remote is None:
                found[node.name] = Finding.failed(
                    f"{node.name}: `date +%s.%N` printed no time",
                    "check the node's coreutils",
                    result.evidence(),
                )
                return
            samples[node.name] = (ClockSample(node.name, before, remote, after), result.evidence())

        await asyncio.gather(*(sample(n) for n in nodes))
        outliers, reference = clock_outliers((s for s, _ in samples.values()), CLOCK_TOLERANCE)
        for name, (s, evidence) in samples.items():
            apart = s.offset - reference
            text = (
                f"{apart:+.3f} s from the cluster's clock (±{s.uncertainty:.3f} s round trip; "
                f"{s.offset:+.3f} s from the wizard's)"
            )
            if name in outliers:
                found[name] = Finding.failed(
                    f"{name}: clock is {text}: more than {CLOCK_TOLERANCE:g} s off",
                    f"enable time synchronisation on {name} (chrony, ntpd or systemd-timesyncd: "
                    "`timedatectl set-ntp true`), wait for it to sync, then check again; "
                    "omwizard does not set clocks",
                    evidence,
                )
            else:
                found[name] = Finding.ok(f"clock {text}; keep NTP on", evidence)
        return found


# -- beyond: stray-config ---------------------------------------------------------------------


class StrayConfigStep(PreflightStep):
    reads = frozenset({R.OM_INSTALL, R.JAVA_OPTS, R.HAZELCAST})
    only_om = True
    facts = (STRAY_LOOKS, STRAY_UNITS)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        om_home = ctx.plan.cluster.om_home
        files = await ctx.fact(node, STRAY_UNITS)
        units_evidence = await ctx.fact_evidence(node, STRAY_UNITS)
        prop = hazelcast_config_property(files)
        if prop:
            return Finding.failed(
                f"{node.name}: {prop} overrides the webapp's hazelcast.xml",
                "remove -Dhazelcast.config from JAVA_OPTS (omwizard edits WEB-INF/classes/"
                "hazelcast.xml, as the documentation says), or make that file the same",
                units_evidence,
            )
        dirs = working_dir_candidates(files, om_home)
        checked, exists = await ctx.fact(node, STRAY_LOOKS)
        looked = [units_evidence, await ctx.fact_evidence(node, STRAY_LOOKS)]
        if all(d in checked for d in dirs):
            stray = [f"{d}/hazelcast.xml" for d in dirs if f"{d}/hazelcast.xml" in exists]
        else:  # a WorkingDirectory the shell read otherwise than Python: look again
            look = await ctx.run(node, exists_probe([f"{d}/hazelcast.xml" for d in dirs]),
                                 sudo=True)
            looked.append(look.evidence())
            stray = [line.strip() for line in look.stdout.splitlines() if line.strip()]
        where = ", ".join(dirs)
        if stray:
            return Finding.failed(
                f"{node.name}: {', '.join(stray)} would override the webapp's hazelcast.xml",
                f"move {stray[0]} away (e.g. rename it to hazelcast.xml.disabled) after "
                "copying anything you need into WEB-INF/classes/hazelcast.xml; then check again",
                *looked,
            )
        return Finding.ok(f"no hazelcast.xml in OM's working directory ({where})", *looked)


# -- beyond: ports ----------------------------------------------------------------------------


def om_or_db_host(plan: Plan, node: Node) -> str | None:
    if node.is_om or node.name == db_target(plan)[0]:
        return None
    return "neither an OpenMeetings node nor the database host"


# ctx.shared: one ports proof at a time in a run (a lock, not data: "_", so an apply's
# planning copy of the shared state shares it instead of copying it)
PORTS_LOCK = "_preflight.ports.lock"


class PortsStep(PreflightStep):
    reads = frozenset({R.FIREWALL, R.LINKS, R.OM_PROCESS})
    cluster_wide = True
    skip_when = (om_or_db_host,)

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        # verify.ports runs this again: two at once would each find the other's listeners
        # holding the ports (judged "a running service"), so they take turns
        locks = ctx.shared.setdefault(PORTS_LOCK, {})  # per event loop (a lock is bound to one)
        async with locks.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
            return await self._check_all(ctx, nodes)

    async def _check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        found: dict[str, Finding] = {}

        async def reach(node: Node) -> None:
            try:
                await ctx.pool.get(node).connect()
            except RemoteError as exc:
                found[node.name] = Finding.failed(exc.message, exc.remedy)

        await asyncio.gather(*(reach(n) for n in nodes))
        live = [n for n in nodes if n.name not in found]
        live_names = {n.name for n in live}
        net = ctx.plan.network
        db_node, db_host, db_port = db_target(ctx.plan)
        db = None
        if db_node is None or db_node in live_names:
            db = (db_node, db_host, db_port)
        probes = plan_probes(
            [(n.name, n.address) for n in live if n.is_om],
            db,
            net.multicast_port if net.join == "multicast" else None,
        )
        evidence: dict[str, list[str]] = {n.name: [] for n in live}

        async def both(node: Node) -> RunResult | None:
            """The node's listener and its probes in one command (PORTS_PY)."""
            want = listener_ports(probes, node.name)
            targets = sorted({(p.proto, p.address, p.port) for p in probes if p.src == node.name})
            if not want and not targets:
                return None
            return await ctx.run(node, ports_command(want, targets), sudo=False,
                                 timeout=PORTS_LISTEN + PORTS_LIMIT + 30)

        outputs = await asyncio.gather(*(ctx.guard(n, both(n)) for n in live))
        ready: dict[str, dict] = {}
        results: dict[str, dict[str, tuple[str, str]]] = {}
        for node, out in zip(live, outputs, strict=True):
            if isinstance(out, Finding):
                found[node.name] = out
                continue
            if out is None:
                continue
            evidence[node.name].append(out.evidence())
            if out.exit_status == 127 or "python3: not found" in out.output:
                found[node.name] = Finding.failed(
                    f"{node.name}: python3 is missing, the port probe cannot run",
                    "install python3 on the node (or test the ports by hand with nc)",
                    out.evidence(),
                )
            got = parse_ports_run(out.stdout)
            if got.ready is not None:
                ready[node.name] = got.ready
            results[node.name] = got.results

        verdicts = []
        for probe in probes:
            listener = listener_for(probe, ready)
            if not worth_probing(probe, listener):
                if probe.src in live_names and probe.src not in found:
                    verdicts.append(path_verdict(probe, "not-probed", "", listener))
                continue
            got = results.get(probe.src, {}).get(probe.key)
            if got is None:
                continue
            verdicts.append(path_verdict(probe, got[0], got[1], listener))

        names = {n.name for n in ctx.plan.nodes}
        for node in live:
            if node.name in found:
                continue
            mine = [v for v in verdicts if node.name in (v.probe.src, v.probe.dst_node)]
            blocked = [v for v in mine if v.blocked]
            lines = [
                f"{v.probe.describe(v.probe.dst_node or v.probe.address)}: {v.text}" for v in mine
            ]
            ev = evidence[node.name] + (["\n".join(lines)] if lines else [])
            if blocked:
                first = blocked[0].probe
                dst = first.dst_node if first.dst_node in names else first.address
                found[node.name] = Finding.failed(
                    "blocked: "
                    + "; ".join(
                        f"{v.probe.describe(v.probe.dst_node or v.probe.address)}: {v.text}"
                        for v in blocked
                    ),
                    f"open {first.proto.upper()} {first.port} from {first.src} to {dst} in the "
                    f"firewalls on the way (incoming on {dst}, outgoing on {first.src}), e.g. "
                    f"`iptables -I INPUT -p {first.proto} --dport {first.port} -j ACCEPT` "
                    f"on {dst}; "
                    "then check again",
                    *ev,
                )
            else:
                skipped = [n.name for n in nodes if n.name not in live_names]
                extra = f"; not tested with {', '.join(skipped)} (unreachable)" if skipped else ""
                unprobed = [v for v in mine if not v.probed]
                if unprobed:
                    extra += (f"; {len(unprobed)} UDP not probed (a running service holds the "
                              "port)")
                found[node.name] = Finding.ok(
                    f"{len(mine) - len(unprobed)} paths to and from {node.name} open{extra}", *ev
                )
        return found


STEPS: list[Step] = [
    SshStep("ssh", "SSH and sudo", DOC_SSH),
    OmInstalledStep("om-installed", "OpenMeetings installed", DOC_OM_INSTALLED),
    TimezoneStep("timezone", "Same time zone everywhere", TIMEZONE_DOC),
    ClockStep("clock", "Clocks agree", DOC_CLOCK),
    StrayConfigStep("stray-config", "No stray hazelcast.xml", DOC_STRAY_CONFIG),
    PortsStep("ports", "Cluster ports open between nodes", DOC_PORTS),
]
