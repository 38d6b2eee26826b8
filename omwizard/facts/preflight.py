"""Preflight's facts: how omwizard reaches a node, the OpenMeetings it finds, the time zone,
the files that could override hazelcast.xml, and the port-probe scripts."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from omwizard.facts.base import Fact, Files, StepData
from omwizard.om.layout import DROPIN_DIR, UNIT_FILES, OmLayout, version_from_jars

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

SudoMode = Literal["none", "nopasswd", "password"]
SUDO_MODES: dict[str, SudoMode] = {"none": "none", "nopasswd": "nopasswd", "password": "password"}


# -- ssh ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshAccess(StepData):
    """How omwizard reached the node: the SSH user and how it gets root rights."""

    kind = "ssh-access"
    user: str
    sudo: SudoMode  # none (root itself) | nopasswd | password
    host: str
    port: int


# -- om-installed ------------------------------------------------------------------------------

HAZELCAST_MARK = "HAZELCAST_XML"


@dataclass(frozen=True)
class OmInstall(StepData):
    """OpenMeetings on a node: whether its hazelcast.xml is there, the release from its jars
    (None: no versioned jar found)."""

    kind = "om-install"
    version: tuple[int, int, int] | None
    present: bool = True


def om_install_command(plan: Plan, node: Node) -> str:
    layout = OmLayout(plan.cluster.om_home)
    hz, lib = shlex.quote(layout.hazelcast_xml), shlex.quote(layout.lib)
    return f"test -f {hz} && echo {HAZELCAST_MARK}; ls -1 {lib} 2>/dev/null; true"


def parse_om_install(output: str) -> OmInstall:
    lines = output.splitlines()
    if HAZELCAST_MARK not in lines:
        return OmInstall(None, present=False)
    return OmInstall(version_from_jars(lines))


OM_INSTALL: Fact[OmInstall] = Fact("om_install", om_install_command, parse_om_install, stable=True)


# -- timezone ----------------------------------------------------------------------------------

TIMEZONE_SOURCES = ("timedatectl", "etc-timezone", "localtime")

TIMEZONE_PROBE = (
    'z=$(timedatectl show -p Timezone --value 2>/dev/null) && [ -n "$z" ] '
    '&& { echo "timedatectl:$z"; exit 0; }; '
    '[ -s /etc/timezone ] && { echo "etc-timezone:$(head -n1 /etc/timezone)"; exit 0; }; '
    'l=$(readlink /etc/localtime 2>/dev/null) && { echo "localtime:$l"; exit 0; }; '
    "echo unknown; exit 0"
)


@dataclass(frozen=True)
class TimezoneState(StepData):
    """The node's zone and where it was read (timedatectl, etc-timezone, localtime, unknown)."""

    kind = "timezone"
    source: str
    zone: str | None


def parse_timezone_probe(output: str) -> tuple[str, str] | None:
    """(source, zone) from the probe's `source:zone` line; None when nothing told."""
    for line in output.splitlines():
        source, _, zone = line.strip().partition(":")
        zone = zone.strip()
        if source in TIMEZONE_SOURCES and zone:
            if source == "localtime":
                zone = zone.split("zoneinfo/", 1)[-1]
            return source, zone
    return None


def parse_timezone(output: str) -> TimezoneState:
    seen = parse_timezone_probe(output)
    return TimezoneState("unknown", None) if seen is None else TimezoneState(*seen)


# through sudo like the node's other facts (root reads the same zone): a gather of them is one
# command, and the batch that sets the zone reads it back for the re-check (a fact read as the
# login user under sudo would need a command of its own)
TIMEZONE: Fact[TimezoneState] = Fact(
    "timezone", lambda _plan, _node: TIMEZONE_PROBE, parse_timezone
)
def zoneinfo_path(zone: str) -> str:
    return f"/usr/share/zoneinfo/{zone}"


def parse_zoneinfo(output: str) -> bool:
    """zoneinfo_probe's answer: does the node have the plan's zone file (tzdata)?"""
    return output.strip() == "present"


# whether the node has the plan's zone (the apply's precondition): read with the facts; no
# change omwizard makes installs tzdata, so it is stable
ZONEINFO: Fact[bool] = Fact(
    "zoneinfo",
    lambda plan, _node: (f"if [ -f {shlex.quote(zoneinfo_path(plan.cluster.timezone))} ]; "
                         "then echo present; else echo absent; fi"),
    parse_zoneinfo, stable=True,
)
# the file the timezone apply rewrites: read with the facts, so its edit needs no read of its own
TIMEZONE_FILE = Files("timezone-file", lambda _plan, _node: ["/etc/timezone"])


# -- stray-config ------------------------------------------------------------------------------


def unit_probe(om_home: str) -> str:
    """Every unit file and drop-in that systemd would merge, and Tomcat's setenv.sh."""
    q = shlex.quote
    files = " ".join(q(f) for f in UNIT_FILES)
    return (
        f"for f in {files} {q(DROPIN_DIR)}/*.conf "
        f'{q(om_home + "/bin/setenv.sh")}; do [ -f "$f" ] && '
        '{ echo "@@file $f"; cat -- "$f"; echo; }; done; true'
    )


def stray_parts(om_home: str) -> dict[str, str]:
    """The stray-config check's facts for StepContext.run_parts: a look for hazelcast.xml in every
    directory OM may start in (om_home, its bin/, each WorkingDirectory= of the unit files:
    `@@checked DIR`, then `@@exists DIR/hazelcast.xml`), and unit_probe's files."""
    q = shlex.quote
    files = " ".join(q(f) for f in UNIT_FILES)
    looks = (
        f"{{ printf '%s\n' {q(om_home)} {q(om_home + '/bin')}; "
        f"sed -n 's/^[[:space:]]*WorkingDirectory=[[:space:]]*-*//p' -- {files} "
        f"{q(DROPIN_DIR)}/*.conf 2>/dev/null "
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


def exists_probe(paths: list[str]) -> str:
    """Echo each path that exists (the second look when the shell read a directory otherwise)."""
    q = shlex.quote
    return "; ".join(f"[ -e {q(p)} ] && echo {q(p)}" for p in paths) + "; true"


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


# the stray-config check's two reads, declared (the commands of stray_parts, part for part)
STRAY_LOOKS: Fact[tuple[set[str], set[str]]] = Fact(
    "stray_looks", lambda plan, _node: stray_parts(plan.cluster.om_home)["looks"], stray_checks
)
STRAY_UNITS: Fact[dict[str, str]] = Fact(
    "stray_units", lambda plan, _node: stray_parts(plan.cluster.om_home)["units"], split_files
)


def unit_working_directory(files: dict[str, str]) -> str | None:
    """WorkingDirectory as systemd sees it: the first unit file found (/etc before /lib),
    then its drop-ins in name order; the last assignment wins, `-` prefix (ignore missing)
    dropped, an empty assignment resets."""
    unit = next((p for p in UNIT_FILES if p in files), None)
    if unit is None:
        return None
    order = [unit] + sorted(p for p in files if p.startswith(DROPIN_DIR + "/"))
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


# -- ports -------------------------------------------------------------------------------------

# One script per node (issue 21): its listener and its probes at once, no round trip between
# the nodes' commands. The listener binds the ports its peers will probe (a port a running
# service holds is "busy": that service answers instead), says READY, then serves until every
# expected probe arrived (TCP: one connection per prober; UDP: one datagram per peer address,
# each answered) or until `listen` seconds passed. The probes run beside it: a refused one
# (the peer's listener is not up yet, or a REJECT rule) is tried again until `window` seconds
# passed; a TCP connect without answer for `limit` seconds is "filtered"; a UDP probe that has
# heard nothing at all (neither an answer nor a refusal) for `silence` seconds too.
# Output: the READY line, one JSON line per probe (prober's format), then DONE (every probe
# arrived) or STOPPED (the window ended first, or SIGTERM).
PORTS_PY = r"""
import json, os, select, signal, socket, sys, threading, time
start = time.monotonic()
want, targets = json.loads(sys.argv[1]), json.loads(sys.argv[2])
window, limit, silence, listen = (float(a) for a in sys.argv[3:7])
lock = threading.Lock()
def say(line):
    with lock:
        print(line, flush=True)
def stopped(*_):
    say("STOPPED")
    os._exit(0)
signal.signal(signal.SIGTERM, stopped)
left, kinds, peers = {}, {}, {}
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
        left[s], kinds[s], peers[s] = count, proto, set()
say("READY " + json.dumps({"bound": bound, "busy": busy, "pid": os.getpid()}))
def serve():
    open_ = list(left)
    while left:
        rest = start + listen - time.monotonic()
        if rest <= 0:
            return "STOPPED"
        for s in select.select(open_, [], [], rest)[0]:
            if kinds[s] == "tcp":
                c, _ = s.accept()
                c.close()
                if s in left:
                    left[s] -= 1
            else:
                _, peer = s.recvfrom(512)
                s.sendto(b"omwizard-ack", peer)
                if s in left and peer[0] not in peers[s]:
                    peers[s].add(peer[0])
                    left[s] -= 1
            if s in left and left[s] <= 0:
                del left[s]
    return "DONE"
def probe(proto, host, port):
    result, error, refused, heard = "error", "", False, time.monotonic()
    while True:
        try:
            if proto == "tcp":
                socket.create_connection((host, port), timeout=limit).close()
            else:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    u.settimeout(0.2)
                    u.connect((host, port))
                    u.send(b"omwizard-probe")
                    u.recv(64)
                finally:
                    u.close()
            result = "open"
            break
        except ConnectionRefusedError:
            result, refused, heard = "refused", True, time.monotonic()
        except (socket.timeout, TimeoutError):
            if proto == "tcp" or (not refused and time.monotonic() - heard >= silence):
                result = "filtered"
                break
        except OSError as exc:
            error = exc.strerror or str(exc)
            break
        if time.monotonic() - start >= window:
            result = "refused" if refused else "filtered"
            break
        time.sleep(0.1)
    say(json.dumps({"proto": proto, "host": host, "port": port,
                    "result": result, "error": error}))
threads = [threading.Thread(target=probe, args=tuple(t)) for t in targets]
for t in threads:
    t.start()
end = serve()
for t in threads:
    t.join()
say(end)
"""


def python_argv(script: str, *args: str) -> str:
    """python3 -c SCRIPT ARGS, every part quoted; bounded by `timeout` where it listens."""
    return " ".join(shlex.quote(a) for a in ("python3", "-c", script, *args))


PORTS_WINDOW = 2.5  # s a prober tries a refused port again (a peer's listener still starting)
PORTS_LIMIT = 2.0  # s a TCP connect waits for any answer (one SYN retransmission included)
PORTS_SILENCE = 1.0  # s a UDP probe that heard nothing at all waits (a node's answer takes ms)
PORTS_LISTEN = PORTS_WINDOW + PORTS_LIMIT  # s a listener waits for probes that do not come


def ports_command(want: dict[str, dict[int, int]], targets: list[tuple[str, str, int]]) -> str:
    """PORTS_PY for one node: `want` its listener ({proto: {port: probes expected}}),
    `targets` its probes (proto, address, port); bounded by `timeout` should it hang."""
    bound = int(PORTS_LISTEN + PORTS_LIMIT + 10)
    args = (json.dumps(want, sort_keys=True), json.dumps(sorted(targets)),
            str(PORTS_WINDOW), str(PORTS_LIMIT), str(PORTS_SILENCE), str(PORTS_LISTEN))
    return f"timeout {bound} " + python_argv(PORTS_PY, *args)


def db_target(plan: Plan) -> tuple[str | None, str, int]:
    """(the plan node that is the DB host, or None for an outside server; host; port)."""
    db = plan.database
    node = next((n.name for n in plan.nodes if db.host in (n.address, n.host)), None)
    return node, db.host, db.port
