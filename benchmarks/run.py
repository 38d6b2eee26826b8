#!/usr/bin/env python3
"""How fast is `omwizard check` next to plain OpenSSH, on the lab (needs root).

Every timing figure is a ratio of two things measured side by side in the same run, alternating
repetitions, so that it holds on a noisy machine:

- the baseline is the practical floor: the very commands one `omwizard check` ran (captured
  from the engine during a warm-up check), issued with OpenSSH over a ControlMaster per node
  opened before timing, all nodes in parallel, each node's commands one after the other, with
  the engine's step order (a step's commands on every node, then the next step);
- the check runs in-process through the Engine (no interpreter start-up), with a fresh
  RemotePool each repetition, so its SSH connects are counted, as in `omwizard check`.

Round trips are counted, not timed: SSH connections and channels per node (Remote.connects,
Remote.channels). The TUI figures come from a headless subprocess.

    sudo python3 benchmarks/run.py            # 2, 3 and 8 nodes, median of 5
    sudo python3 benchmarks/run.py --quick    # 2 and 3 nodes, 1 repetition (CI; < ~2 min)

Round trips over a real link: benchmarks/relay.py (started here, on loopback, in front of
each node's sshd) holds every chunk a fixed delay each way; `check_round_trips` and
`apply_round_trips` are (time at 100 ms RTT - time at 0 ms RTT) / 0.1 s, through the relay both
times, on the 3-node lab (fresh, then the working cluster its apply formed); medians of the
repetitions; the fresh applies' figure the medians of 5 pairs (`--apply-pairs`), each apply on a
reset lab, 0 ms and 100 ms first alternating, after an unmeasured warm-up apply (each pair and
its verify.restart times are printed: that step waits on the nodes for the members' JVMs, the
spread between runs). `apply_round_trips_net` is the same with each apply's member start-ups
taken out (from each startup.sh line to the member's `is STARTED`, read from the members' own
logs on the lab: node-side time whatever the link, which varies by a second or two between
applies: JVM start, master election, Hazelcast's 1 s join-retry sleep).
`check_network_vs_openssh_6`: the network section's check on a formed 6-node cluster against
fresh OpenSSH connections (one per node, opened inside the timing) running the same commands.

Targets are printed beside the figures; nothing is asserted: exit 0 unless the run broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from omwizard.engine.catalog import SECTIONS, steps_for  # noqa: E402
from omwizard.engine.events import Event, StepStarted  # noqa: E402
from omwizard.engine.session import Session  # noqa: E402
from omwizard.facts.network import parse_listener_ready, parse_pid  # noqa: E402
from omwizard.lab import Lab, build_lab  # noqa: E402
from omwizard.lab.hazelcast import log_path  # noqa: E402
from omwizard.lab.lab import LabBusy  # noqa: E402
from omwizard.plan.model import Node, Plan, load_plan  # noqa: E402
from omwizard.remote.ssh import Remote, RemotePool, RunResult  # noqa: E402

FIGURES = (
    "check_vs_openssh_3",
    "check_vs_openssh_8",
    "check_applied_vs_openssh_3",
    "check_8_vs_2",
    "check_round_trips",
    "check_round_trips_fresh",
    "apply_round_trips",
    "apply_round_trips_net",
    "apply_round_trips_working",
    "check_fresh_vs_formed_3",
    "check_network_vs_openssh_6",
    "channels_per_node_check",
    "channels_per_node_apply",
    "steps_check",
    "connections_per_node",
    "tui_first_screen_s",
    "tui_peak_rss_mb",
    "cli_check_s",
)
TARGETS = {
    "check_vs_openssh_3": "target <= 1.50",
    "check_vs_openssh_8": "target <= 1.50",
    "check_applied_vs_openssh_3": "target <= 1.50",
    "check_8_vs_2": "target <= 1.30",
    "check_round_trips": "target <= 8, SSH handshake included; working 3-node cluster",
    "check_round_trips_fresh": "information; fresh 3-node lab",
    "apply_round_trips": "target <= 25; full apply on a fresh 3-node lab",
    "apply_round_trips_net": "target <= 25; the same, each apply's member start-ups (their "
                             "own logs) taken out",
    "apply_round_trips_working": "information; apply on the working cluster (nothing to do)",
    "check_fresh_vs_formed_3": "target <= 2.0; full check, fresh lab / working cluster",
    "check_network_vs_openssh_6": "target <= 1.50; formed 6-node cluster, fresh connections",
    "channels_per_node_check": "target <= steps_check",
    "channels_per_node_apply": "information",
    "steps_check": "for comparison",
    "connections_per_node": "target = 1",
    "tui_first_screen_s": "target < 0.60",
    "tui_peak_rss_mb": "target < 120",
    "cli_check_s": "information (includes interpreter start-up)",
}
LAB_WAIT_S = 900  # how long to wait for another engineer's lab to go away
DB_PASSWORD = "bench-throwaway-1"
RTT_S = 0.1  # the slow link's round trip (the relay holds RTT_S / 2 each way)
RESTART_STEP = "verify.restart"  # the step that waits on the nodes for the members' starts
STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ")


# -- capture: what one check runs, per node and step ---------------------------------------------


@dataclass
class Captured:
    """One remote command as the engine issued it (the wire form for a root login)."""

    step: str
    command: str
    input: str | bytes | None
    start: float = 0.0  # perf_counter in the engine's run
    end: float = 0.0
    first_line: float | None = None  # when its first line reached the engine's on_line


@dataclass
class CheckRun:
    """One in-process check: wall time, results and the per-node counters."""

    wall_s: float
    results: list[Any]
    connects: dict[str, int]
    channels: dict[str, int]
    commands: dict[str, list[Captured]] = field(default_factory=dict)
    step_s: dict[str, float] = field(default_factory=dict)


def available_sections() -> list[str]:
    """Sections whose module exists (the others are still being written)."""
    out = []
    for section in SECTIONS:
        try:
            steps_for(section)
        except ImportError:
            continue
        out.append(section)
    return out


def _recording_pool(
    commands: dict[str, list[Captured]], current: list[str], **hooks: Any
) -> RemotePool:
    """A pool whose Remotes note every run() (command, stdin) under the current step."""

    class RecordingPool(RemotePool):
        def get(self, node: Node) -> Remote:
            known = node.name in self.remotes
            remote = super().get(node)
            if not known:
                plain = remote.run

                async def run(argv: list[str] | str, **kw: Any) -> RunResult:
                    from omwizard.remote.ssh import quote_argv

                    cmd = Captured(current[0], quote_argv(argv), kw.get("input"),
                                   time.perf_counter())
                    commands.setdefault(node.name, []).append(cmd)
                    sink = kw.get("on_line")
                    if sink is not None:  # the engine waits on lines (tcpdump's "listening")

                        def on_line(line: str, sink: Any = sink, cmd: Captured = cmd) -> None:
                            if cmd.first_line is None and pid_of(line) is None:
                                cmd.first_line = time.perf_counter()
                            sink(line)

                        kw["on_line"] = on_line
                    try:
                        return await plain(argv, **kw)
                    finally:
                        cmd.end = time.perf_counter()

                remote.run = run  # type: ignore[method-assign]
            return remote

    return RecordingPool(**hooks)


async def run_check(
    plan: Plan, sections: list[str], *, record: bool = False, apply: bool = False,
    state_dir: Path | None = None,
) -> CheckRun:
    """One full check (or apply) through the Engine with a fresh pool; timed end to end."""
    commands: dict[str, list[Captured]] = {}
    current = [""]

    def recording(**hooks: Any) -> RemotePool:
        return _recording_pool(commands, current, **hooks)

    factory = recording if record else None
    session = (
        Session.open(plan, state_dir, pool_factory=factory)
        if state_dir
        else Session(plan, pool_factory=factory)
    )
    pool = session.pool  # kept: its per-node counters are read after the session is closed
    engine = session.engine(sections)

    began: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted):
            current[0] = f"{event.section}.{event.step}"
            began.setdefault(current[0], time.perf_counter())

    session.bus.subscribe(on_event)
    start = time.perf_counter()
    async with session:
        results = await (engine.apply() if apply else engine.check())
        wall = time.perf_counter() - start
    remotes = pool.remotes
    marks = sorted(began.items(), key=lambda kv: kv[1]) + [("", start + wall)]
    step_s = {name: marks[i + 1][1] - t for i, (name, t) in enumerate(marks[:-1])}
    return CheckRun(
        wall,
        results,
        {n: r.connects for n, r in remotes.items()},
        {n: r.channels for n, r in remotes.items()},
        commands,
        step_s,
    )


# -- the OpenSSH baseline -------------------------------------------------------------------------

STOP_PID = re.compile(r"/proc/(\d+)/comm|kill -TERM (\d+)")


def pid_of(line: str) -> int | None:
    """The pid a capture (`@@pid N`) or a port listener (READY {..., "pid": N}) printed: not
    the readiness a later command waits for, but what a later stop command names."""
    pid = parse_pid(line)
    if pid is not None:
        return pid
    ready = parse_listener_ready(line)
    listener: Any = ready.get("pid") if ready else None
    return listener if isinstance(listener, int) else None


class OpenSSH:
    """Plain `ssh` over one ControlMaster per node, the lab's key and known_hosts."""

    def __init__(self, lab: Lab, control_dir: Path) -> None:
        self.lab = lab
        self.control_dir = control_dir
        self.pids: dict[str, int] = {}  # address -> the last pid its commands printed
        self.step_s: dict[str, float] = {}  # the last replay's wall time per step

    def argv(self, address: str) -> list[str]:
        return [
            "ssh", "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self.control_dir}/%C",
            "-o", "ControlPersist=60",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-i", str(self.lab.identity),
            "-o", f"UserKnownHostsFile={self.lab.known_hosts}",
            f"root@{address}",
        ]

    def open_masters(self, addresses: list[str]) -> None:
        """One master per node, opened (in parallel) before any timing."""
        procs = [
            subprocess.Popen(self.argv(a) + ["true"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for a in addresses
        ]
        for address, proc in zip(addresses, procs, strict=True):
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"ssh master to {address} failed: {err.decode().strip()}")

    def close_masters(self, addresses: list[str]) -> None:
        for address in addresses:
            argv = self.argv(address)
            argv[-1:-1] = ["-O", "exit"]
            subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                           check=False)

    async def run_one(self, address: str, cmd: Captured, ready: asyncio.Event) -> None:
        """One command; `ready` is set at its first output line (or its end)."""
        data = cmd.input.encode() if isinstance(cmd.input, str) else cmd.input
        command = cmd.command
        if address in self.pids:  # stop what this replay started, not the engine's process
            mine = str(self.pids[address])
            command = STOP_PID.sub(lambda m: m.group(0).replace(m.group(1) or m.group(2), mine),
                                   command)
        proc = await asyncio.create_subprocess_exec(
            *self.argv(address), command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

        async def drain(stream: asyncio.StreamReader | None) -> None:
            while stream is not None and (line := await stream.readline()):
                pid = pid_of(line.decode(errors="replace"))
                if pid is None:
                    ready.set()
                else:
                    self.pids[address] = pid

        assert proc.stdin is not None
        proc.stdin.write(data or b"")
        proc.stdin.close()
        try:
            await asyncio.gather(drain(proc.stdout), drain(proc.stderr), proc.wait())
        finally:
            ready.set()

    def replay_fresh(self, addresses: dict[str, str], commands: dict[str, list[Captured]],
                     order: list[str]) -> float:
        """replay() with no master open before: each node's first command opens the one
        connection (inside the timing) that its later commands reuse; closed afterwards."""
        try:
            return asyncio.run(self.replay(addresses, commands, order))
        finally:
            self.close_masters(list(addresses.values()))

    async def replay(self, addresses: dict[str, str], commands: dict[str, list[Captured]],
                     step_order: list[str]) -> float:
        """The captured commands: step by step, nodes in parallel, one node's in sequence.

        Where the engine overlapped commands (tcpdump on every node, then one ping; a
        listener, then a probe) the replay keeps the engine's synchronisation: a command that
        the engine started after another's first output line (tcpdump's "listening on", a
        listener's READY) waits for that line here too, on whichever node it ran; an
        overlap without such a line starts as long after the earlier one as in the engine.
        """

        async def node_step(name: str, step: str, ready: dict[int, asyncio.Event],
                            everyone: list[Captured]) -> None:
            pending: list[asyncio.Task[None]] = []
            busy_until = 0.0
            last: tuple[float, float] | None = None  # (engine start, our start) of the last
            for cmd in (c for c in commands.get(name, []) if c.step == step):
                waits_for = [d for d in everyone if d is not cmd and d.first_line is not None
                             and d.first_line <= cmd.start < d.end]
                if waits_for:
                    await asyncio.gather(*(ready[id(d)].wait() for d in waits_for))
                elif last is not None and cmd.start < busy_until:
                    delay = last[1] + (cmd.start - last[0]) - time.perf_counter()
                    await asyncio.sleep(max(0.0, delay))
                else:
                    await asyncio.gather(*pending)
                    pending = []
                last = (cmd.start, time.perf_counter())
                busy_until = max(busy_until, cmd.end)
                pending.append(asyncio.create_task(
                    self.run_one(addresses[name], cmd, ready[id(cmd)])))
            await asyncio.gather(*pending)

        start = time.perf_counter()
        for step in step_order:
            began = time.perf_counter()
            everyone = [c for cmds in commands.values() for c in cmds if c.step == step]
            ready = {id(c): asyncio.Event() for c in everyone}
            await asyncio.gather(*(node_step(n, step, ready, everyone) for n in commands))
            self.step_s[step] = time.perf_counter() - began
        return time.perf_counter() - start


def step_order(commands: dict[str, list[Captured]]) -> list[str]:
    order: list[str] = []
    for cmds in commands.values():
        for cmd in cmds:
            if cmd.step not in order:
                order.append(cmd.step)
    # the engine's order: steps run one after another, so first appearance anywhere is it
    return order


# -- the lab --------------------------------------------------------------------------------------


def log(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


@contextmanager
def lab_of(n_nodes: int) -> Iterator[Lab]:
    """A lab of n OM nodes (+ db) with MariaDB running; always torn down."""
    deadline = time.monotonic() + LAB_WAIT_S
    waited = False
    while True:
        try:
            lab = build_lab(n_nodes=n_nodes)
            break
        except LabBusy as exc:
            if time.monotonic() > deadline:
                raise
            if not waited:
                log(f"{exc}: waiting (up to {LAB_WAIT_S}s)")
            waited = True
            time.sleep(1)
    try:
        from omwizard.lab import services

        try:
            services.ensure_lab_services(lab)
        except Exception as exc:  # noqa: BLE001 - the stand-in is optional for a check
            log(f"no Hazelcast stand-in ({exc}); the checks run without it")
        assert lab.db is not None
        services.start_mariadb(lab.db)
        yield lab
    finally:
        lab.teardown()


# -- a slow link: the delaying relay -----------------------------------------------------------


@contextmanager
def relayed(lab: Lab, plan_path: Path, work: Path, rtt_s: float) -> Iterator[Plan]:
    """The lab's plan with every node reached through benchmarks/relay.py (a subprocess on
    loopback holding each chunk rtt_s / 2 each way); its own known_hosts for the relay's ports
    (the same host keys). The relay ends when this does."""
    data = yaml.safe_load(plan_path.read_text())
    routes = [f"{n['name']}={n['host']}:{data['ssh'].get('port', 22)}" for n in data["nodes"]]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "relay.py"), "--delay-ms",
         f"{rtt_s * 500:g}", *routes],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the relay did not start: {line!r}")
        ports = json.loads(line[6:])
        keys = {}
        for entry in lab.known_hosts.read_text().splitlines():
            host, _, key = entry.partition(" ")
            keys[host] = key
        tag = f"{int(rtt_s * 1000)}ms"
        known = work / f"known_hosts-{tag}"
        known.write_text("".join(f"[127.0.0.1]:{ports[n['name']]} {keys[n['host']]}\n"
                                 for n in data["nodes"]))
        for node in data["nodes"]:
            node["host"] = "127.0.0.1"
            node["ssh"] = {"port": ports[node["name"]]}
        data["ssh"]["known_hosts"] = str(known)
        path = work / f"plan-{tag}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        yield load_plan(path)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def over_links(lab: Lab, plan_path: Path, work: Path, reps: int, label: str,
               run: Any) -> tuple[float, float]:
    """Medians of run(plan) through the relay at 0 ms and at RTT_S, alternating."""
    fast: list[float] = []
    slow: list[float] = []
    with relayed(lab, plan_path, work, 0.0) as plan0, \
            relayed(lab, plan_path, work, RTT_S) as plan1:
        for rep in range(reps):
            pair = [(plan0, fast, "0 ms"), (plan1, slow, f"{RTT_S * 1000:g} ms")]
            for plan, out, name in pair if rep % 2 == 0 else reversed(pair):
                out.append(run(plan))
                log(f"{label}, {name} RTT, repetition {rep + 1}: {out[-1]:.3f}s")
    return statistics.median(fast), statistics.median(slow)


def round_trips(times: tuple[float, float] | None) -> str:
    """(time at 0 ms, time at RTT_S) -> how many round trips the difference is."""
    if times is None:
        return "n/a"
    return f"{(times[1] - times[0]) / RTT_S:.1f}"


def restart_lab(lab: Lab) -> bool:
    """Back to a fresh lab (MariaDB up again); False when the database did not come back."""
    lab.reset()
    try:
        from omwizard.lab import services

        assert lab.db is not None
        services.start_mariadb(lab.db)
    except Exception as exc:  # noqa: BLE001
        log(f"MariaDB did not restart: {exc}")
        return False
    return True


@dataclass
class Apply:
    """One full apply on a reset lab: its wall time, verify.restart's share, and the time its
    members spent starting (by their own logs: node-side, whatever the link)."""

    wall_s: float
    restart_s: float
    members_s: float

    @property
    def net_s(self) -> float:
        return self.wall_s - self.members_s


@dataclass
class ApplyPair:
    """One pair of full applies on a reset lab, at 0 ms and at RTT_S (in the order run)."""

    fast: Apply
    slow: Apply
    slow_first: bool

    def round_trips(self) -> float:
        return (self.slow.wall_s - self.fast.wall_s) / RTT_S

    def net_round_trips(self) -> float:
        return (self.slow.net_s - self.fast.net_s) / RTT_S


def member_log_sizes(lab: Lab) -> dict[str, int]:
    """Each OM node's member log size now (where this apply's lines will start), read from
    the host (the lab's node folders), not by a command in each node."""
    return {name: path.stat().st_size if path.is_file() else 0
            for name, path in ((name, log_path(node)) for name, node in lab.nodes.items())}


def member_starts_s(lab: Lab, since: dict[str, int]) -> float:
    """The seconds the OM nodes' members spent starting since `since` (member_log_sizes), by
    their own logs: each start from its startup.sh line to the member's `is STARTED` (JVM
    start, master election, join, and Hazelcast's own 1 s retry sleep when a join answer
    comes just after its first look: 0 or 1 s a member, by chance). The restarts run one
    after another, so these are all on the apply's critical path, and none of it is the link."""
    total = 0.0
    for name, node in lab.nodes.items():
        path = log_path(node)
        raw = path.read_bytes() if path.is_file() else b""
        text = raw[since.get(name, 0):].decode(errors="replace")
        began: float | None = None
        for line in text.splitlines():
            stamp = STAMP.match(line)
            if stamp is None:
                continue
            when = datetime.fromisoformat(stamp.group(1)).timestamp()
            if "startup.sh: starting" in line:
                began = when
            elif began is not None and "is STARTED" in line:
                total += when - began
                began = None
    return total


def fresh_applies(lab: Lab, plan_path: Path, work: Path, sections: list[str], pairs: int,
                  label: str) -> tuple[CheckRun, list[ApplyPair]]:
    """Full applies, each on a reset lab, at 0 ms and at RTT_S through the relay: `pairs`
    pairs, the order alternating (0 ms first, then RTT_S first, ...). With more than one pair
    an apply at 0 ms runs first, unmeasured: the lab's first apply after it is built is the
    one whose members start coldest (jar and classes not yet in the page cache). Also: the
    first measured apply at 0 ms (its commands and channels are reported)."""
    def one(rtt: float, tag: str) -> tuple[CheckRun, Apply]:
        with relayed(lab, plan_path, work, rtt) as link:
            log(f"{label}: full apply at {rtt * 1000:g} ms RTT on the reset lab "
                f"(db up: {restart_lab(lab)}){tag}")
            since = member_log_sizes(lab)
            run = asyncio.run(run_check(link, sections, apply=True,
                                        state_dir=work / f"apply-fresh{tag.strip()}-{rtt}"))
        return run, Apply(run.wall_s, run.step_s.get(RESTART_STEP, 0.0),
                          member_starts_s(lab, since))

    if pairs > 1:
        _, warm = one(0.0, " warm-up")
        log(f"{label}, fresh apply warm-up (not counted): {warm.wall_s:.3f}s")
    done: list[ApplyPair] = []
    first: CheckRun | None = None
    for rep in range(pairs):
        slow_first = rep % 2 == 1
        runs: dict[float, tuple[CheckRun, Apply]] = {}
        for rtt in (RTT_S, 0.0) if slow_first else (0.0, RTT_S):
            runs[rtt] = one(rtt, f" {rep + 1}")
            got = runs[rtt][1]
            log(f"{label}, fresh apply, {rtt * 1000:g} ms RTT, pair {rep + 1}: "
                f"{got.wall_s:.3f}s (verify.restart {got.restart_s:.3f}s, members starting "
                f"{got.members_s:.3f}s)")
        first = first or runs[0.0][0]
        pair = ApplyPair(runs[0.0][1], runs[RTT_S][1], slow_first)
        done.append(pair)
        log(f"{label}, fresh apply pair {rep + 1}: {pair.round_trips():.1f} round trips, "
            f"{pair.net_round_trips():.1f} without the members' starts")
    assert first is not None
    return first, done


def medians(pairs: list[ApplyPair], net: bool = False) -> tuple[float, float]:
    """(time at 0 ms, time at RTT_S): medians over the pairs (net: members' starts out)."""
    if net:
        return (statistics.median(p.fast.net_s for p in pairs),
                statistics.median(p.slow.net_s for p in pairs))
    return (statistics.median(p.fast.wall_s for p in pairs),
            statistics.median(p.slow.wall_s for p in pairs))


@dataclass
class Sample:
    """What one lab size gave: medians and counters."""

    nodes: int
    check_s: float
    openssh_s: float
    reps: int
    first: CheckRun
    cli_s: float | None = None
    apply: CheckRun | None = None
    step_s: dict[str, float] = field(default_factory=dict)
    applied: tuple[float, float] | None = None  # (check, OpenSSH) medians after the apply
    # (time at 0 ms, time at RTT_S) through the relay
    rt_check_fresh: tuple[float, float] | None = None
    rt_apply_fresh: tuple[float, float] | None = None
    rt_check_working: tuple[float, float] | None = None
    rt_apply_working: tuple[float, float] | None = None
    rt_apply_net: tuple[float, float] | None = None  # fresh, the members' starts taken out
    # the fresh applies' pairs: (time at 0 ms, time at RTT_S) and verify.restart's share of each
    apply_pairs: list[ApplyPair] = field(default_factory=list)


def compare(plan: Plan, addresses: dict[str, str], lab: Lab, work: Path, sections: list[str],
            reps: int, label: str, *, fresh: bool = False,
            ) -> tuple[float, float, CheckRun, dict[str, float]]:
    """omwizard check against the OpenSSH floor on this lab as it is now: medians of reps
    alternating pairs, the warm-up run (its commands are what the floor replays), step times.
    fresh: OpenSSH connects inside the timing too (as the check does), else masters are open
    before it."""
    log(f"{label}: warm-up check (captures the commands)")
    first = asyncio.run(run_check(plan, sections, record=True))
    order = step_order(first.commands)
    ssh = OpenSSH(lab, work)
    if not fresh:
        ssh.open_masters(list(addresses.values()))

    def baseline() -> float:
        if fresh:
            return ssh.replay_fresh(addresses, first.commands, order)
        return asyncio.run(ssh.replay(addresses, first.commands, order))

    try:
        checks, bases = [], []
        for rep in range(reps):
            # alternate which goes first, so drift on the machine hits both alike
            pair = [
                lambda: checks.append(asyncio.run(run_check(plan, sections)).wall_s),
                lambda: bases.append(baseline()),
            ]
            for job in pair if rep % 2 == 0 else reversed(pair):
                job()
            log(f"{label}, repetition {rep + 1}: check {checks[-1]:.3f}s, "
                f"OpenSSH {bases[-1]:.3f}s")
            for step, secs in ssh.step_s.items():  # where a repetition lost time, if it did
                if secs > first.step_s.get(step, 0.0) + 2.0:
                    log(f"{label}, repetition {rep + 1}: OpenSSH step {step} took {secs:.3f}s "
                        f"(check warm-up {first.step_s.get(step, 0.0):.3f}s)")
    finally:
        ssh.close_masters(list(addresses.values()))
    slowest = sorted(first.step_s.items(), key=lambda kv: -kv[1])[:5]
    log(f"{label}: slowest steps (check warm-up): "
        + ", ".join(f"{step} {secs:.2f}s" for step, secs in slowest))
    return statistics.median(checks), statistics.median(bases), first, dict(ssh.step_s)


def measure(n_nodes: int, reps: int, sections: list[str], *, cli: bool, apply: bool,
            apply_pairs: int = 1) -> Sample:
    with lab_of(n_nodes) as lab, tempfile.TemporaryDirectory(prefix="omwbench-") as tmp:
        work = Path(tmp)
        plan_path = lab.write_plan(work / "plan.yaml")
        plan = load_plan(plan_path)
        addresses = {n.name: n.host for n in plan.nodes}
        check_s, openssh_s, first, step_s = compare(plan, addresses, lab, work, sections, reps,
                                                    f"{n_nodes} nodes")
        sample = Sample(n_nodes, check_s, openssh_s, reps, first, step_s=step_s)
        if cli:
            sample.cli_s = cli_check(plan_path, work / "state", sections)

        def check_over(link: Plan) -> float:
            return asyncio.run(run_check(link, sections)).wall_s

        applies = iter(range(1000))

        def apply_over(link: Plan) -> float:
            # each apply on the state it is given: a fresh lab, or the working cluster
            state = work / f"apply-state-{next(applies)}"
            return asyncio.run(run_check(link, sections, apply=True, state_dir=state)).wall_s

        if apply:
            sample.rt_check_fresh = over_links(lab, plan_path, work, reps,
                                               f"{n_nodes} nodes, fresh check", check_over)
            sample.apply, sample.apply_pairs = fresh_applies(
                lab, plan_path, work, sections, apply_pairs, f"{n_nodes} nodes")
            sample.rt_apply_fresh = medians(sample.apply_pairs)
            sample.rt_apply_net = medians(sample.apply_pairs, net=True)
            # the troubleshooting case: check a cluster that works (multicast answers at once,
            # so the floor is the commands themselves, not a capture's timeout)
            sample.applied = compare(plan, addresses, lab, work, sections, reps,
                                     f"{n_nodes} nodes, applied")[:2]
            sample.rt_check_working = over_links(lab, plan_path, work, reps,
                                                 f"{n_nodes} nodes, working check", check_over)
            sample.rt_apply_working = over_links(lab, plan_path, work, 1,
                                                 f"{n_nodes} nodes, working apply", apply_over)
        return sample


def network_vs_openssh(n_nodes: int, reps: int, sections: list[str]) -> tuple[float, float]:
    """The network section's check on a formed cluster (a full apply first) against fresh
    OpenSSH connections running its commands: (check, OpenSSH) medians."""
    with lab_of(n_nodes) as lab, tempfile.TemporaryDirectory(prefix="omwbench-") as tmp:
        work = Path(tmp)
        plan = load_plan(lab.write_plan(work / "plan.yaml"))
        addresses = {n.name: n.host for n in plan.nodes}
        log(f"{n_nodes} nodes: full apply (forms the cluster)")
        formed = asyncio.run(run_check(plan, sections, apply=True, state_dir=work / "state"))
        bad = [r for r in formed.results if r.status == "failed"]
        if bad:
            log(f"{n_nodes} nodes: apply left {len(bad)} failed: "
                + ", ".join(f"{r.section}.{r.step}/{r.node}" for r in bad[:6]))
        check_s, openssh_s, _first, _steps = compare(
            plan, addresses, lab, work, ["network"], reps,
            f"{n_nodes} nodes, formed, network section", fresh=True)
        return check_s, openssh_s


def cli_check(plan_path: Path, state_dir: Path, sections: list[str]) -> float:
    """`omwizard check` as an operator runs it (a new interpreter), wall time."""
    argv = [sys.executable, "-m", "omwizard", "check", str(plan_path), "--json",
            "--state", str(state_dir)]
    for section in sections:
        argv += ["--section", section]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=600, check=False)
    wall = time.perf_counter() - start
    log(f"omwizard check (subprocess): exit {proc.returncode}, {wall:.3f}s")
    return wall


# -- the TUI --------------------------------------------------------------------------------------

TUI_PROBE = r"""
import time
t0 = time.perf_counter()
import asyncio, sys, tempfile
from pathlib import Path
from omwizard.tui.app import make_app

async def main():
    with tempfile.TemporaryDirectory() as base:
        app = make_app(state_base=Path(base), env={})
        async with app.run_test(headless=True, size=(120, 40)) as pilot:
            await pilot.pause()
            elapsed = time.perf_counter() - t0
            print(f"READY {elapsed:.4f} {type(app.screen).__name__}", flush=True)

asyncio.run(main())
"""


def tui_once() -> tuple[float, float, str]:
    """(seconds to the first interactive screen, peak RSS MB, screen name) of one run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", TUI_PROBE], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for line in out.decode().splitlines():
        if line.startswith("READY "):
            _, secs, screen = line.split()
            return float(secs), usage.ru_maxrss / 1024, screen
    raise RuntimeError(f"TUI probe failed (exit {proc.returncode}): {err.decode()[-1500:]}")


def measure_tui(reps: int) -> tuple[float, float, str]:
    runs = [tui_once() for _ in range(reps)]
    return (statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[0][2])


# -- report ---------------------------------------------------------------------------------------


def per_node(counter: dict[str, int], names: list[str]) -> str:
    return ", ".join(f"{n}={counter.get(n, 0)}" for n in names)


def steps_run(run: CheckRun) -> dict[str, int]:
    """Steps that ran (not skipped) per node."""
    out: dict[str, int] = {}
    for r in run.results:
        if r.status != "skipped":
            out[r.node] = out.get(r.node, 0) + 1
    return out


def show_commands(run: CheckRun) -> None:
    """Every captured command, per node and step: where the round trips go."""
    for node, cmds in run.commands.items():
        for cmd in cmds:
            text = cmd.command.replace("\n", "; ")
            stdin = " <stdin>" if cmd.input else ""
            log(f"{node} {cmd.step}: {text[:160]}{stdin}")


def report(figures: dict[str, str], notes: list[str]) -> None:
    for note in notes:
        print(f"# {note}")
    width = max(len(n) for n in FIGURES) + 1
    for name in FIGURES:
        value = figures.get(name, "n/a")
        print(f"{name + ':':<{width}} {value:<14} ({TARGETS[name]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI: 2 and 3 nodes, 1 repetition, no 8-node lab")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (median of N)")
    parser.add_argument("--nodes", type=int, action="append", choices=range(2, 10),
                        metavar="N", help="only labs of N OM nodes (repeatable; diagnosis)")
    parser.add_argument("--apply-pairs", type=int, default=None, metavar="N",
                        help="pairs of fresh applies (0 ms, 100 ms) for apply_round_trips "
                             "(default 5; quick: 1), after an unmeasured warm-up apply")
    parser.add_argument("--show-commands", action="store_true",
                        help="also list the commands one check ran, per node and step (stderr)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    apply_pairs = args.apply_pairs or (1 if args.quick else 5)
    if reps < 1 or apply_pairs < 1:
        parser.error("--reps and --apply-pairs take a whole number of at least 1")
    sizes = tuple(args.nodes) if args.nodes else (2, 3) if args.quick else (2, 3, 8)
    os.environ.setdefault("OMW_DB_PASSWORD", DB_PASSWORD)
    sections = available_sections()
    figures: dict[str, str] = {}
    notes = [
        f"omwizard benchmarks: {'quick' if args.quick else 'full'}; OM nodes {list(sizes)} "
        "(+1 database node each); "
        f"median of {reps} alternating repetitions; sections: {', '.join(sections)}",
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus",
    ]

    tui_s, rss, screen = measure_tui(max(reps, 3) if not args.quick else 1)
    figures["tui_first_screen_s"] = f"{tui_s:.3f}"
    figures["tui_peak_rss_mb"] = f"{rss:.1f}"
    notes.append(f"TUI: first screen {screen}, headless 120x40, empty state")

    six = None if args.quick or args.nodes else network_vs_openssh(6, reps, sections)
    samples: dict[int, Sample] = {}
    for n in sizes:
        samples[n] = measure(n, reps, sections, cli=(n == 3), apply=(n == 3),
                             apply_pairs=apply_pairs)
        s = samples[n]
        if args.show_commands:
            show_commands(s.first)
            for step, secs in sorted(s.step_s.items(), key=lambda kv: -kv[1]):
                log(f"{n} nodes, step {step}: OpenSSH {secs:.3f}s, "
                    f"check (warm-up) {s.first.step_s.get(step, 0.0):.3f}s")
        nodes = list(s.first.channels)
        notes.append(
            f"{n} nodes: check {s.check_s:.3f}s, OpenSSH baseline {s.openssh_s:.3f}s "
            f"({sum(len(c) for c in s.first.commands.values())} commands); "
            f"channels {per_node(s.first.channels, nodes)}; "
            f"steps run {per_node(steps_run(s.first), nodes)}; "
            f"connects {per_node(s.first.connects, nodes)}"
        )
    missing = "n/a (quick)" if args.quick else "n/a (not run)"
    for n in (3, 8):
        if n in samples:
            figures[f"check_vs_openssh_{n}"] = f"{samples[n].check_s / samples[n].openssh_s:.2f}"
        else:
            figures[f"check_vs_openssh_{n}"] = missing
    if 8 in samples and 2 in samples:
        figures["check_8_vs_2"] = f"{samples[8].check_s / samples[2].check_s:.2f}"
    else:
        figures["check_8_vs_2"] = missing
    big = samples[max(samples)].first
    figures["channels_per_node_check"] = str(max(big.channels.values(), default=0))
    figures["steps_check"] = str(len({(r.section, r.step) for r in big.results}))
    connects = [c for s in samples.values() for c in s.first.connects.values()]
    figures["connections_per_node"] = str(max(connects, default=0))
    three = samples.get(3)
    if three is not None and three.apply is not None:
        figures["channels_per_node_apply"] = str(max(three.apply.channels.values(), default=0))
        notes.append(f"apply (3 nodes, fresh lab): {three.apply.wall_s:.2f}s, channels "
                     f"{per_node(three.apply.channels, list(three.apply.channels))}")
    if three is not None and three.applied is not None:
        check_s, openssh_s = three.applied
        figures["check_applied_vs_openssh_3"] = f"{check_s / openssh_s:.2f}"
        notes.append(f"3 nodes after the apply (a working cluster): check {check_s:.3f}s, "
                     f"OpenSSH baseline {openssh_s:.3f}s")
    if three is not None and three.cli_s is not None:
        figures["cli_check_s"] = f"{three.cli_s:.3f}"
    if three is not None:
        for name, times in (("check_round_trips", three.rt_check_working),
                            ("check_round_trips_fresh", three.rt_check_fresh),
                            ("apply_round_trips", three.rt_apply_fresh),
                            ("apply_round_trips_net", three.rt_apply_net),
                            ("apply_round_trips_working", three.rt_apply_working)):
            figures[name] = round_trips(times)
            if times is not None:
                notes.append(f"{name}: {times[0]:.3f}s at 0 ms RTT, {times[1]:.3f}s at "
                             f"{RTT_S * 1000:g} ms RTT (3 nodes, through the relay)")
        for i, pair in enumerate(three.apply_pairs, 1):
            fast, slow = pair.fast, pair.slow
            notes.append(
                f"fresh apply pair {i} ({'100 ms' if pair.slow_first else '0 ms'} first): "
                f"{fast.wall_s:.2f}s / {slow.wall_s:.2f}s, {pair.round_trips():.1f} round trips; "
                f"verify.restart {fast.restart_s:.2f}s / {slow.restart_s:.2f}s; members starting "
                f"{fast.members_s:.2f}s / {slow.members_s:.2f}s, "
                f"{pair.net_round_trips():.1f} round trips without them")
        if three.applied is not None:
            figures["check_fresh_vs_formed_3"] = f"{three.check_s / three.applied[0]:.2f}"
    if six is not None:
        figures["check_network_vs_openssh_6"] = f"{six[0] / six[1]:.2f}"
        notes.append(f"6 nodes, formed, network section: check {six[0]:.3f}s, fresh OpenSSH "
                     f"{six[1]:.3f}s")
    else:
        figures["check_network_vs_openssh_6"] = missing
    report(figures, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
