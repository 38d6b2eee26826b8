"""Pure judgements for the verify section: OM's log, its info/health answer, process freshness.

The verify steps read a log tail, an HTTP answer or a few numbers over SSH and hand them here,
so every verdict is tested on real text without a cluster. Nothing here does I/O.

Hazelcast prints its view of the cluster whenever it changes, as a block:

    Members {size:2, ver:2} [
        Member [198.18.0.11]:5701 - 5c1c... this
        Member [198.18.0.12]:5701 - 8d2e...
    ]

(Hazelcast 3.9-3.12, OM 4.0.x, print the same; older 3.x print ``Members [2] {`` ... ``}``.)
Only the latest block after the member's latest start tells the current truth: earlier ones
are history, and a member that shut down since says so with ``is SHUTDOWN``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from omwizard.facts.base import Fact, StepData
from omwizard.om.layout import UNIT_FILES, OmLayout

if TYPE_CHECKING:
    from omwizard.plan.model import Node

STANDALONE = "No join method is enabled! Starting standalone."
_BLOCK_START = re.compile(r"Members \{size:(\d+), ver:(\d+)\} \[\s*$|Members \[(\d+)\] \{\s*$")
_MEMBER = re.compile(r"^\s*Member \[([^\]]+)\]:(\d+)(?:\s*-\s*(\S+))?(\s+this)?\s*$")
_LIFECYCLE = re.compile(r"\]:\d+ is (STARTING|STARTED|SHUTTING_DOWN|SHUTDOWN)\s*$")


@dataclass(frozen=True)
class MembersBlock:
    """One `Members {size:N, ver:M} [` block: the cluster as that member saw it then."""

    size: int
    version: int | None
    members: tuple[tuple[str, int], ...]  # (address, port)
    this: str | None  # the address of the member that wrote the log
    line: int  # 0-based line where the block starts

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address, _port in self.members)


@dataclass(frozen=True)
class LogFacts:
    """What OM's log says about the current run of its Hazelcast member."""

    started_line: int | None  # latest `is STARTING` (None: no start in the text read)
    state: str | None  # latest lifecycle state after that start (STARTED, SHUTDOWN, ...)
    standalone: bool  # the latest start logged "No join method is enabled"
    block: MembersBlock | None  # the latest members block after the latest start
    blocks: int  # how many blocks the whole text holds


def parse_members(log: str) -> list[MembersBlock]:
    """Every complete members block of the log text, oldest first."""
    lines = log.splitlines()
    out: list[MembersBlock] = []
    i = 0
    while i < len(lines):
        match = _BLOCK_START.search(lines[i])
        if not match:
            i += 1
            continue
        old_style = match.group(3) is not None
        size = int(match.group(3) if old_style else match.group(1))
        version = None if old_style else int(match.group(2))
        closer = "}" if old_style else "]"
        members: list[tuple[str, int]] = []
        this = None
        j = i + 1
        complete = False
        while j < len(lines):
            text = lines[j].strip()
            if text == closer:
                complete = True
                break
            member = _MEMBER.match(lines[j])
            if not member:
                break  # not a block after all (or a truncated one)
            members.append((member.group(1), int(member.group(2))))
            if member.group(4):
                this = member.group(1)
            j += 1
        if complete:
            out.append(MembersBlock(size, version, tuple(members), this, i))
            i = j + 1
        else:
            i += 1
    return out


def read_log(log: str) -> LogFacts:
    """The facts of the member's latest start found in `log` (a tail of OM's log)."""
    lines = log.splitlines()
    started = None
    state = None
    for index, line in enumerate(lines):
        match = _LIFECYCLE.search(line)
        if match:
            state = match.group(1)
            if state == "STARTING":
                started = index
    first = started or 0
    standalone = any(STANDALONE in line for line in lines[first:])
    blocks = parse_members(log)
    current = [b for b in blocks if b.line >= first]
    return LogFacts(started, state, standalone, current[-1] if current else None, len(blocks))


@dataclass(frozen=True)
class MembersView(StepData):
    """The cluster as a node's member sees it: size, member addresses, and against the plan
    the OM nodes missing and the members outside it."""

    kind = "members"
    size: int
    members: tuple[str, ...]
    missing: tuple[str, ...] = ()
    strangers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health(StepData):
    """OM's info/health flags (inited, installed, dbOk) and the version info/version gave."""

    kind = "health"
    flags: dict[str, object]
    version: str | None = None


@dataclass(frozen=True)
class RestartState(StepData):
    """restart's check for its apply: the log to watch from which size, systemd or scripts."""

    kind = "restart"
    log: str
    log_size: int
    systemd: bool
    running: bool = True  # an OM process was found (restart order: not running goes first)


@dataclass
class Verdict:
    """ok / failed with what was seen and what to do; `data` for the report."""

    ok: bool
    detail: str
    remedy: str = ""
    data: StepData | None = None

    def with_version(self, version: str | None) -> Verdict:
        """The health verdict's data with the version info/version gave."""
        if isinstance(self.data, Health):
            return replace(self, data=replace(self.data, version=version))
        return replace(self, data=Health({}, version))


NETWORK_REMEDY = (
    "check that the node's hazelcast.xml is the wizard's (`omwizard check --section nodes`), "
    "that multicast reaches every node (`omwizard check --section network`: "
    "network.multicast-route and network.multicast-ping; or join tcp-ip), that TCP 5701 is "
    "open between the nodes (preflight.ports), then restart OM (`omwizard apply --section "
    "verify`)"
)


def judge_members(facts: LogFacts, node: str, expected: dict[str, str], log_path: str) -> Verdict:
    """Does this node's member see every OM node (name -> address) in one cluster?"""
    want = len(expected)
    if facts.started_line is None and facts.block is None and not facts.standalone:
        return Verdict(
            False,
            f"{log_path} shows no start of OpenMeetings' cluster member",
            "start OpenMeetings on this node (`omwizard apply --section verify` restarts it) "
            "and check that it logs to this file",
        )
    if facts.state in ("SHUTTING_DOWN", "SHUTDOWN"):
        return Verdict(
            False,
            f"OpenMeetings on {node} has shut its cluster member down (log: is {facts.state})",
            f"start OpenMeetings on {node} (`omwizard apply --section verify --node {node}`)",
        )
    if facts.standalone:
        return Verdict(
            False,
            f"{node} started alone: \"{STANDALONE}\" (hazelcast.xml has no join method)",
            "apply the nodes section (nodes.hazelcast-xml) on this node, then restart OM: "
            f"`omwizard apply --section nodes --section verify --node {node}`",
        )
    block = facts.block
    if block is None:
        return Verdict(
            False,
            f"no `Members {{size:N, ...}}` list in {log_path} since the latest start: the member "
            "has not formed or joined a cluster yet",
            "wait a minute and check again; if it stays so, " + NETWORK_REMEDY,
            MembersView(0, (), missing=tuple(expected)),  # it sees no one yet
        )
    seen = set(block.addresses)
    missing = {name: addr for name, addr in expected.items() if addr not in seen}
    listed = ", ".join(block.addresses)
    data = MembersView(block.size, block.addresses)
    if missing:
        names = ", ".join(f"{name} ({addr})" for name, addr in missing.items())
        return Verdict(
            False,
            f"{node} sees {block.size} of {want} members [{listed}]; missing: {names}",
            f"on {', '.join(missing)}: make sure OpenMeetings runs (`omwizard check --section "
            "verify`: verify.restart), then " + NETWORK_REMEDY,
            replace(data, missing=tuple(missing)),
        )
    strangers = sorted(seen - set(expected.values()))
    if strangers:
        return Verdict(
            False,
            f"{node}'s cluster holds members outside the plan: {', '.join(strangers)}",
            "another cluster joined this one: give it its own cluster-name (the nodes section "
            "writes network.cluster_name, by default omwizard-<cluster>) and restart both",
            replace(data, strangers=tuple(strangers)),
        )
    return Verdict(True, f"{block.size} members: {listed}", data=data)


def judge_health(status: int | None, body: str) -> Verdict:
    """OM's GET /services/info/health: ok only when inited, installed and dbOk are true."""
    if status is None:
        return Verdict(False, f"no HTTP answer: {body}",
                       "check that OpenMeetings runs on this node and listens on the port of "
                       "its server_url")
    if status != 200:
        return Verdict(False, f"HTTP {status}: {body[:200]}",
                       "check the URL path (/openmeetings) and that OpenMeetings finished starting")
    try:
        health = json.loads(body)["health"]
        flags = {key: health.get(key) for key in ("inited", "installed", "dbOk")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return Verdict(False, f"not OpenMeetings' health answer: {body[:200]}",
                       "check that the port of server_url is OpenMeetings'")
    seen = json.dumps({"health": flags}, separators=(",", ":"))
    bad = [key for key, value in flags.items() if value is not True]
    if not bad:
        return Verdict(True, f"healthy {seen}", data=Health(flags))
    remedies = {
        "inited": "OpenMeetings has not finished starting: wait and check again",
        "installed": "OpenMeetings is not installed on this node: run its installer first",
        "dbOk": "OpenMeetings cannot reach its database: check database.persistence-connection "
                "and database.db-login (`omwizard check --section database`)",
    }
    return Verdict(False, f"unhealthy {seen} ({', '.join(bad)} not true)",
                   "; ".join(remedies[key] for key in bad), data=Health(flags))


def parse_version(body: str) -> str | None:
    """The version from GET /services/info/version ({"info":{"version":"9.1.0",...}})."""
    try:
        value = json.loads(body)["info"]["version"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value) if value is not None else None


def running_current(start_epoch: float | None, config_mtimes: dict[str, float],
                    slack: float = 2.0) -> tuple[bool, str]:
    """Is the OM process newer than every configuration file it reads at start?

    `start_epoch` None means no OM process was found. `slack` absorbs the one-second
    granularity of `ps -o etimes`; a file written within it after the start counts as seen.
    """
    if start_epoch is None:
        return False, "OpenMeetings is not running"
    newer = sorted(path for path, mtime in config_mtimes.items() if mtime > start_epoch + slack)
    if newer:
        return False, f"OpenMeetings started before {', '.join(newer)} last changed"
    return True, "OpenMeetings is running the current configuration"


# -- fact commands -----------------------------------------------------------------------------

LOG_LINES = 4000


def om_probe(om_home: str) -> str:
    """One read-only script: OM's java processes (this node's network namespace, whose command
    line or working dir is om_home) with their age, the config files' mtimes, the log to read,
    and whether systemd runs the unit."""
    lay = OmLayout(om_home)
    q = shlex.quote
    configs = [lay.hazelcast_xml, lay.persistence_xml, f"{lay.bin}/setenv.sh", *UNIT_FILES]
    dropins = " ".join(f"{q(f)}.d/*.conf" for f in UNIT_FILES)
    return (
        f"h={q(om_home)}; me=$(readlink /proc/self/ns/net); echo \"now $(date +%s)\"; "
        "for p in $(pgrep -x java 2>/dev/null); do "
        "[ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ] || continue; "
        "c=$(tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null); d=$(readlink /proc/$p/cwd 2>/dev/null); "
        "case \" $c\" in *\"$h/\"*|*\"=$h \"*) ;; *) [ \"$d\" = \"$h\" ] || continue;; esac; "
        "echo \"pid $p $(ps -o etimes= -p $p | tr -d ' ')\"; done; "
        f"for f in {' '.join(q(c) for c in configs)} {dropins}; do "
        "[ -f \"$f\" ] && echo \"mtime $(stat -c %Y \"$f\") $f\"; done; "
        "for f in \"$h/logs/openmeetings.log\" \"$h/log/openmeetings.log\"; do "
        "[ -f \"$f\" ] && { echo \"log $f $(stat -c %s \"$f\")\"; break; }; done; "
        "[ -d /run/systemd/system ] && echo systemd; "
        f"for f in {' '.join(q(u) for u in UNIT_FILES)}; do [ -f \"$f\" ] && echo \"unit $f\"; "
        "done; true"
    )


def parse_probe(output: str) -> dict[str, Any]:
    """The probe's lines as a dict: now, pids {pid: start epoch}, mtimes, log, log_size..."""
    facts: dict[str, Any] = {"pids": {}, "mtimes": {}, "log": None, "log_size": 0,
                             "systemd": False, "unit": None, "now": None}
    for line in output.splitlines():
        words = line.split(" ")
        try:
            if words[0] == "now":
                facts["now"] = int(words[1])
            elif words[0] == "pid" and len(words) == 3 and words[2].isdigit():
                facts["pids"][int(words[1])] = int(words[2])  # elapsed, made absolute below
            elif words[0] == "mtime":
                facts["mtimes"][" ".join(words[2:])] = int(words[1])
            elif words[0] == "log":
                facts["log"], facts["log_size"] = " ".join(words[1:-1]), int(words[-1])
            elif words[0] == "systemd":
                facts["systemd"] = True
            elif words[0] == "unit":
                facts["unit"] = " ".join(words[1:])
        except (IndexError, ValueError):
            continue
    now = facts["now"] or 0
    facts["pids"] = {pid: now - age for pid, age in facts["pids"].items()}
    return facts


# OpenMeetings' processes, config mtimes, log and unit as om_probe printed them (restart's read;
# the members check reads them again in its own settle loop, so it keeps its own round trip)
OM_PROCESS: Fact[dict[str, Any]] = Fact(
    "om_process", lambda plan, _node: om_probe(plan.cluster.om_home), parse_probe
)


def members_parts(om_home: str, default_log: str, lines: int = LOG_LINES) -> dict[str, str]:
    """The members check's facts for StepContext.run_parts: the probe, and the last lines of the log
    the probe would find (else of default_log)."""
    q = shlex.quote
    tail = (
        f"l={q(default_log)}; "
        f"for f in {q(om_home + '/logs/openmeetings.log')} {q(om_home + '/log/openmeetings.log')}"
        '; do [ -f "$f" ] && { l=$f; break; }; done; '
        f'tail -n {int(lines)} -- "$l"'
    )
    return {"probe": om_probe(om_home), "tail": tail}


def health_target(node: Node) -> tuple[bool, int, str]:
    """(tls, port, path prefix) of OM on the node itself, from server_url.

    An explicit port is used as is; without one, OpenMeetings' own ports (5080 http, 5443
    https) are assumed, because a URL without a port usually names a proxy in front of OM.
    """
    url = urlsplit(node.server_url or f"http://{node.address}:5080/openmeetings")
    tls = url.scheme == "https"
    port = url.port or (5443 if tls else 5080)
    prefix = url.path.rstrip("/") or "/openmeetings"
    return tls, port, prefix


# -- the members read as a declared fact (issue 21) ----------------------------------------
# Only the lines read_log reads (lifecycle, standalone, members blocks), in order: the same
# facts as the whole tail, a fraction of its bytes over a slow link, with the logs' sizes
# first (where a wait for the log to grow starts from).

LOG_LINES_READ = (
    r"is (STARTING|STARTED|SHUTTING_DOWN|SHUTDOWN)[[:space:]]*$|No join method is enabled"
    r"|Members [{[]|^[[:space:]]*Member \[|^[[:space:]]*[]}][[:space:]]*$"
)


@dataclass(frozen=True)
class LogTail:
    """What members_log_command printed: the logs' sizes (log_sizes' line) and the lines."""

    sizes: str
    text: str


def members_log_command(om_home: str, lines: int = LOG_LINES) -> str:
    """The sizes of the node's OM logs on one line (as _rejoin.log_sizes prints them for the
    log found), then the lines read_log reads of the last `lines` of the log it finds (logs/,
    else log/; none: nothing, the check says so)."""
    q = shlex.quote
    logs = " ".join(q(f) for f in (f"{om_home}/logs/openmeetings.log",
                                   f"{om_home}/log/openmeetings.log"))
    return (
        f"f=; for x in {logs}; do [ -f \"$x\" ] && {{ f=$x; break; }}; done; "
        f"echo \"$(stat -c %s -- {logs} \"$f\" 2>/dev/null | tr '\\n' ' ')\"; "
        f"[ -n \"$f\" ] && tail -n {int(lines)} -- \"$f\" | grep -E -- {q(LOG_LINES_READ)}; true"
    )


def parse_log_tail(output: str) -> LogTail:
    sizes, _, text = output.partition("\n")
    return LogTail(sizes, text)


# the members check's first read, with the node's other facts (its settle loop reads live)
MEMBERS_LOG: Fact[LogTail] = Fact(
    "members_log", lambda plan, _node: members_log_command(plan.cluster.om_home), parse_log_tail
)
