"""Preflight: can we reach every node, is OpenMeetings there, and do the nodes agree on time."""

from __future__ import annotations

import asyncio
import json
import shlex
import time

from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.network import (
    ClockSample,
    clock_outliers,
    listener_for,
    listener_ports,
    parse_date,
    parse_listener_ready,
    parse_probe_results,
    path_verdict,
    plan_probes,
    worth_probing,
)
from omwizard.om.layout import OmLayout, version_from_jars, version_text
from omwizard.plan.model import Node
from omwizard.remote.parts import run_parts
from omwizard.remote.results import RemoteError, RunResult
from omwizard.sections.network import run_streaming

TIMEZONE_DOC = (
    "All servers should be configured to have same Time zone (To avoid Schedulers to drop "
    "user sessions as outdated)"
)


class SshStep(Step):
    section = "preflight"
    name = "ssh"
    title = "SSH and sudo"
    doc = (
        "Multiple OM servers should be set up as described in Installation. omwizard reaches "
        "each of them over SSH, with the host key checked and root rights through sudo."
    )

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        remote = ctx.pool.get(node)
        await remote.connect()
        mode = await remote.sudo_mode()
        how = {
            "none": f"logged in as {node.ssh.user}",
            "nopasswd": f"logged in as {node.ssh.user}, sudo without password",
            "password": f"logged in as {node.ssh.user}, sudo with password",
        }[mode]
        if node.ssh.user != "root" and node.ssh.sudo == "never":
            how += " (sudo: never: changes need root rights)"
        return Finding.ok(f"{how} at {node.host}:{node.ssh.port}")


def parse_timezone_probe(output: str) -> tuple[str, str] | None:
    """(source, zone) from the probe's `source:zone` line; None when nothing told."""
    for line in output.splitlines():
        source, _, zone = line.strip().partition(":")
        zone = zone.strip()
        if source in {"timedatectl", "etc-timezone", "localtime"} and zone:
            if source == "localtime":
                zone = zone.split("zoneinfo/", 1)[-1]
            return source, zone
    return None


TIMEZONE_PROBE = (
    'z=$(timedatectl show -p Timezone --value 2>/dev/null) && [ -n "$z" ] '
    '&& { echo "timedatectl:$z"; exit 0; }; '
    '[ -s /etc/timezone ] && { echo "etc-timezone:$(head -n1 /etc/timezone)"; exit 0; }; '
    'l=$(readlink /etc/localtime 2>/dev/null) && { echo "localtime:$l"; exit 0; }; '
    "echo unknown; exit 0"
)


class OmInstalledStep(Step):
    section = "preflight"
    name = "om-installed"
    title = "OpenMeetings installed"
    doc = "OpenMeetings 2.1 or later is required to use clustering."

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return None if node.is_om else "not an OpenMeetings node (role om)"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        layout = OmLayout(ctx.plan.cluster.om_home)
        hz, lib = shlex.quote(layout.hazelcast_xml), shlex.quote(layout.lib)
        result = await ctx.run(
            node, f"test -f {hz} && echo HAZELCAST_XML; ls -1 {lib} 2>/dev/null; true"
        )
        lines = result.stdout.splitlines()
        if "HAZELCAST_XML" not in lines:
            return Finding.failed(
                f"no OpenMeetings at {ctx.plan.cluster.om_home} ({layout.hazelcast_xml} missing)",
                "install OpenMeetings as its Installation page says, or set cluster.om_home "
                "to where it is installed",
                result.evidence(),
            )
        version = version_from_jars(lines)
        ctx.shared.setdefault("om_version", {})[node.name] = version
        text = version_text(version)
        if version is not None and version[:2] < (2, 1):
            return Finding.failed(
                f"OpenMeetings {text}: clustering needs 2.1 or later",
                "upgrade OpenMeetings on this node first",
                result.evidence(),
            )
        if version is not None and version[:2] == (4, 0):
            return Finding.ok(
                f"OpenMeetings {text} (4.0.x: Hazelcast 3 schema, no member attributes, "
                "logs in log/)",
                result.evidence(),
                version=text,
            )
        return Finding.ok(f"OpenMeetings {text}", result.evidence(), version=text)


class TimezoneStep(Step):
    section = "preflight"
    name = "timezone"
    title = "Same time zone everywhere"
    doc = TIMEZONE_DOC
    has_apply = True

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        want = ctx.plan.cluster.timezone
        result = await ctx.run(node, TIMEZONE_PROBE, sudo=False)
        seen = parse_timezone_probe(result.stdout)
        if seen is None:
            return Finding.needs(
                "the node's time zone could not be read",
                f"omwizard sets it to {want}",
                result.evidence(),
                source="unknown",
                zone=None,
            )
        source, zone = seen
        if zone == want:
            return Finding.ok(f"{zone} (from {source})", result.evidence())
        return Finding.needs(
            f"time zone is {zone}, the cluster's is {want}",
            f"set the node's zone to {want}",
            result.evidence(),
            source=source,
            zone=zone,
        )

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        want = ctx.plan.cluster.timezone
        old = finding.data.get("zone")
        zoneinfo = f"/usr/share/zoneinfo/{want}"
        probe = await ctx.run(node, ["test", "-f", zoneinfo])
        if not probe.ok:
            raise RemoteError(
                node.name,
                f"{zoneinfo} does not exist on the node",
                "install the tzdata package on the node, then run apply again",
            )
        if finding.data.get("source") == "timedatectl":
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

CLOCK_TOLERANCE = 2.0


class ClockStep(Step):
    section = "preflight"
    name = "clock"
    title = "Clocks agree"
    cluster_wide = True
    doc = (
        "Beyond the documentation (which asks for the same time zone so that schedulers do "
        "not drop user sessions as outdated): the clocks themselves must agree. omwizard "
        f"reads every node's clock once and wants them within {CLOCK_TOLERANCE:g} s of each "
        "other; keep them so with NTP."
    )

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        return (await self.check_all(ctx, [node]))[node.name]

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

UNIT_FILES = (
    "/etc/systemd/system/openmeetings.service",
    "/lib/systemd/system/openmeetings.service",
    "/usr/lib/systemd/system/openmeetings.service",
)


def unit_probe(om_home: str) -> str:
    """Every unit file and drop-in that systemd would merge, and Tomcat's setenv.sh."""
    q = shlex.quote
    files = " ".join(q(f) for f in UNIT_FILES)
    return (
        f"for f in {files} /etc/systemd/system/openmeetings.service.d/*.conf "
        f'{q(om_home + "/bin/setenv.sh")}; do [ -f "$f" ] && '
        '{ echo "@@file $f"; cat -- "$f"; echo; }; done; true'
    )


def stray_parts(om_home: str) -> dict[str, str]:
    """The stray-config check's facts for facts.run_parts: a look for hazelcast.xml in every
    directory OM may start in (om_home, its bin/, each WorkingDirectory= of the unit files:
    `@@checked DIR`, then `@@exists DIR/hazelcast.xml`), and unit_probe's files."""
    q = shlex.quote
    files = " ".join(q(f) for f in UNIT_FILES)
    looks = (
        f"{{ printf '%s\n' {q(om_home)} {q(om_home + '/bin')}; "
        f"sed -n 's/^[[:space:]]*WorkingDirectory=[[:space:]]*-*//p' -- {files} "
        "/etc/systemd/system/openmeetings.service.d/*.conf 2>/dev/null "
        "| sed 's/[[:space:]]*$//'; } | while IFS= read -r d; do "
        '[ -n "$d" ] || continue; echo "@@checked $d"; '
        '[ -e "$d/hazelcast.xml" ] && echo "@@exists $d/hazelcast.xml"; done; true'
    )
    return {"looks": looks, "units": unit_probe(om_home)}


def stray_checks(output: str) -> tuple[set[str], set[str]]:
    """The looks part's `@@checked DIR` and `@@exists PATH` lines."""
    checked: set[str] = set()
    exists: set[str] = set()
    for line in output.splitlines():
        if line.startswith("@@checked "):
            checked.add(line[10:])
        elif line.startswith("@@exists "):
            exists.add(line[9:])
    return checked, exists


def split_files(output: str) -> dict[str, str]:
    """`@@file PATH` blocks -> {path: text}."""
    files: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("@@file "):
            current = line[7:]
            files[current] = []
        elif current is not None:
            files[current].append(line)
    return {p: "\n".join(lines) for p, lines in files.items()}


def unit_working_directory(files: dict[str, str]) -> str | None:
    """WorkingDirectory as systemd sees it: the first unit file found (/etc before /lib),
    then its drop-ins in name order; the last assignment wins, `-` prefix (ignore missing)
    dropped, an empty assignment resets."""
    unit = next((p for p in UNIT_FILES if p in files), None)
    if unit is None:
        return None
    order = [unit] + sorted(p for p in files if ".service.d/" in p)
    value: str | None = None
    for path in order:
        section = None
        for raw in files[path].splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and line.startswith("WorkingDirectory="):
                value = line.split("=", 1)[1].strip().lstrip("-") or None
    return value


def hazelcast_config_property(files: dict[str, str]) -> str | None:
    """A `-Dhazelcast.config=...` in the unit or setenv.sh: it beats every file."""
    import re

    for path in files:
        for line in files[path].splitlines():
            if line.lstrip().startswith("#"):
                continue
            match = re.search(r"-Dhazelcast\.config=(\S+?)['\"]?(?:\s|$)", line)
            if match:
                return f"{path}: -Dhazelcast.config={match.group(1)}"
    return None


def working_dir_candidates(files: dict[str, str], om_home: str) -> list[str]:
    """Where OM's JVM starts: the unit's WorkingDirectory; without a unit, om_home (and its
    bin/, for a Tomcat started as ./startup.sh from there)."""
    wd = unit_working_directory(files)
    return [wd] if wd else [om_home, f"{om_home}/bin"]


class StrayConfigStep(Step):
    section = "preflight"
    name = "stray-config"
    title = "No stray hazelcast.xml"
    doc = (
        "Beyond the documentation: Hazelcast reads -Dhazelcast.config first, then "
        "./hazelcast.xml in the process's working directory, and only then the webapp's "
        "WEB-INF/classes/hazelcast.xml that the documentation edits. A stray file or property "
        "would silently win."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        return None if node.is_om else "not an OpenMeetings node (role om)"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        om_home = ctx.plan.cluster.om_home
        got = await run_parts(ctx, node, stray_parts(om_home), sudo=True)
        probe, looks = got["units"], got["looks"]
        files = split_files(probe.stdout)
        prop = hazelcast_config_property(files)
        if prop:
            return Finding.failed(
                f"{node.name}: {prop} overrides the webapp's hazelcast.xml",
                "remove -Dhazelcast.config from JAVA_OPTS (omwizard edits WEB-INF/classes/"
                "hazelcast.xml, as the documentation says), or make that file the same",
                probe.evidence(),
            )
        dirs = working_dir_candidates(files, om_home)
        checked, exists = stray_checks(looks.stdout)
        looked = [probe.evidence(), looks.evidence()]
        if all(d in checked for d in dirs):
            stray = [f"{d}/hazelcast.xml" for d in dirs if f"{d}/hazelcast.xml" in exists]
        else:  # a WorkingDirectory the shell read otherwise than Python: look again
            q = shlex.quote
            look = await ctx.run(
                node,
                "; ".join(
                    f"[ -e {q(d + '/hazelcast.xml')} ] && echo {q(d + '/hazelcast.xml')}"
                    for d in dirs
                )
                + "; true",
                sudo=True,
            )
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

PROBE_TIMEOUT = 3.0
LISTENER_SECONDS = 25
READY_WAIT = 15

LISTENER_PY = r"""
import json, select, socket, sys
want = json.loads(sys.argv[1])
left, kinds = {}, {}
bound, busy = {"tcp": [], "udp": []}, {"tcp": [], "udp": []}
for proto, ports in want.items():
    for port, count in ports.items():
        port = int(port)
        tcp = proto == "tcp"
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        if tcp:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
            if tcp:
                s.listen(64)
        except OSError:
            s.close()
            busy[proto].append(port)
            continue
        bound[proto].append(port)
        left[s], kinds[s] = count, proto
print("READY " + json.dumps({"bound": bound, "busy": busy}), flush=True)
while left:
    for s in select.select(list(left), [], [])[0]:
        if kinds[s] == "tcp":
            c, _ = s.accept()
            c.close()
        else:
            _, peer = s.recvfrom(512)
            s.sendto(b"omwizard-ack", peer)
        left[s] -= 1
        if left[s] <= 0:
            del left[s]
            s.close()
print("DONE", flush=True)
"""

PROBER_PY = r"""
import json, socket, sys, threading
targets, limit = json.loads(sys.argv[1]), float(sys.argv[2])
lock = threading.Lock()
def probe(proto, host, port):
    result, error = "error", ""
    try:
        if proto == "tcp":
            socket.create_connection((host, port), timeout=limit).close()
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(limit)
            s.connect((host, port))
            s.send(b"omwizard-probe")
            s.recv(64)
            s.close()
        result = "open"
    except ConnectionRefusedError:
        result = "refused"
    except (socket.timeout, TimeoutError):
        result = "filtered"
    except OSError as exc:
        error = exc.strerror or str(exc)
    with lock:
        print(json.dumps({"proto": proto, "host": host, "port": port,
                          "result": result, "error": error}), flush=True)
threads = [threading.Thread(target=probe, args=tuple(t)) for t in targets]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def python_argv(script: str, *args: str) -> str:
    """python3 -c SCRIPT ARGS, every part quoted; bounded by `timeout` where it listens."""
    return " ".join(shlex.quote(a) for a in ("python3", "-c", script, *args))


def db_target(plan) -> tuple[str | None, str, int]:  # type: ignore[no-untyped-def]
    """(the plan node that is the DB host, or None for an outside server; host; port)."""
    db = plan.database
    node = next((n.name for n in plan.nodes if db.host in (n.address, n.host)), None)
    return node, db.host, db.port


class PortsStep(Step):
    section = "preflight"
    name = "ports"
    title = "Cluster ports open between nodes"
    cluster_wide = True
    doc = (
        "Beyond the documentation: the members talk on TCP 5701 (Hazelcast) and 5636 (the "
        "OpenJPA TCP remote commit provider the documentation un-comments), every node to "
        "the database port, and UDP on the multicast port. Before OpenMeetings runs nothing "
        "listens there, so omwizard tests the path with a short-lived listener on the target "
        "and a probe from the source: refused = no listener, path open; no answer = a "
        "firewall drops it."
    )

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        if node.is_om or node.name == db_target(ctx.plan)[0]:
            return None
        return "neither an OpenMeetings node nor the database host"

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        return (await self.check_all(ctx, [node]))[node.name]

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
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
        listeners: dict[str, asyncio.Future[RunResult]] = {}
        ready: dict[str, dict] = {}
        events: dict[str, asyncio.Event] = {}

        for node in live:
            want = listener_ports(probes, node.name)
            if not want:
                continue
            events[node.name] = asyncio.Event()

            def on_line(line: str, name: str = node.name) -> None:
                info = parse_listener_ready(line)
                if info is not None:
                    ready[name] = info
                    events[name].set()

            argv = f"timeout {LISTENER_SECONDS} " + python_argv(
                LISTENER_PY, json.dumps(want, sort_keys=True)
            )
            listeners[node.name] = asyncio.ensure_future(
                run_streaming(ctx, node, argv, on_line, sudo=False, timeout=LISTENER_SECONDS + 20)
            )
            listeners[node.name].add_done_callback(lambda _f, n=node.name: events[n].set())
        if events:
            waits = [asyncio.ensure_future(e.wait()) for e in events.values()]
            await asyncio.wait(waits, timeout=READY_WAIT)
            for w in waits:
                w.cancel()

        async def prober(node: Node) -> RunResult | None:
            mine = [p for p in probes if p.src == node.name
                    and worth_probing(p, listener_for(p, ready))]
            if not mine:
                return None
            targets = json.dumps(sorted({(p.proto, p.address, p.port) for p in mine}))
            return await ctx.run(
                node,
                python_argv(PROBER_PY, targets, str(PROBE_TIMEOUT)),
                sudo=False,
                timeout=PROBE_TIMEOUT * 4 + 20,
            )

        outputs = await asyncio.gather(*(ctx.guard(n, prober(n)) for n in live))
        results: dict[str, dict[str, tuple[str, str]]] = {}
        for node, out in zip(live, outputs, strict=True):
            if isinstance(out, Finding):
                found[node.name] = out
            elif out is not None:
                evidence[node.name].append(out.evidence())
                if out.exit_status == 127 or "python3: not found" in out.output:
                    found[node.name] = Finding.failed(
                        f"{node.name}: python3 is missing, the port probe cannot run",
                        "install python3 on the node (or test the ports by hand with nc)",
                        out.evidence(),
                    )
                results[node.name] = parse_probe_results(out.stdout)
        for name, task in listeners.items():
            try:
                res = await task
                evidence[name].append(res.evidence())
            except RemoteError as exc:
                evidence[name].append(f"listener: {exc.message}")

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
    SshStep(),
    OmInstalledStep(),
    TimezoneStep(),
    ClockStep(),
    StrayConfigStep(),
    PortsStep(),
]
