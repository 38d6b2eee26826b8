#!/usr/bin/env python3
"""Where an apply's round trips go: a full apply on a fresh 3-node lab through the delaying
relay at 0 ms and at 100 ms RTT, each step's wall time side by side (needs root).

    sudo python3 benchmarks/apply_trace.py            # fresh lab, full apply, both links,
                                                      # one pair in each order (4 applies)
    sudo python3 benchmarks/apply_trace.py --order fast-first   # one pair (2 applies)
    sudo python3 benchmarks/apply_trace.py --commands # also every command, per node and step
    sudo python3 benchmarks/apply_trace.py --timeline # every command sent (reads, writes and
                                                      # batches too), in order, with its times

A step's round trips on the critical path are (its time at 100 ms - its time at 0 ms) / 0.1 s;
the commands listed under a step are what each node sent, in order (a node's commands in one
step run one after the other unless the step runs nodes concurrently).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

from omwizard.plan.model import load_plan  # noqa: E402
from omwizard.remote.ssh import Remote  # noqa: E402


def trace(nodes: int, show: bool, orders: list[tuple[float, float]],
          timeline: bool = False) -> int:
    os.environ.setdefault("OMW_DB_PASSWORD", bench.DB_PASSWORD)
    sections = bench.available_sections()
    runs: dict[float, list[bench.CheckRun]] = {0.0: [], bench.RTT_S: []}
    with bench.lab_of(nodes) as lab, tempfile.TemporaryDirectory(prefix="omwtrace-") as tmp:
        work = Path(tmp)
        plan_path = lab.write_plan(work / "plan.yaml")
        load_plan(plan_path)
        for i, order in enumerate(orders):
            for rtt in order:
                bench.log(f"reset lab (db up: {bench.restart_lab(lab)}); apply at "
                          f"{rtt * 1000:g} ms (pair {i + 1})")
                _SENDING[0] = SENT.setdefault(rtt, [])
                _SENDING[0].clear()
                with bench.relayed(lab, plan_path, work, rtt) as link:
                    run = asyncio.run(bench.run_check(
                        link, sections, record=True, apply=True,
                        state_dir=work / f"state-{i}-{int(rtt * 1000)}"))
                runs[rtt].append(run)
                bench.log(f"apply at {rtt * 1000:g} ms (pair {i + 1}): {run.wall_s:.3f}s")
    fast, slow = runs[0.0], runs[bench.RTT_S]
    bad = [r for run in slow + fast for r in run.results if r.status == "failed"]
    for r in bad:
        bench.log(f"FAILED {r.section}.{r.step} {r.node}: {r.detail[:200]}")
    last = slow[-1]  # its commands are listed
    steps = list(dict.fromkeys([s for run in slow + fast for s in run.step_s]))
    total = 0.0
    print(f"{'step':40} {'0ms':>7} {'100ms':>7} {'RT':>6}  commands per node (100 ms run)")
    for step in steps:
        a = mean(run.step_s.get(step, 0.0) for run in fast)
        b = mean(run.step_s.get(step, 0.0) for run in slow)
        rt = (b - a) / bench.RTT_S
        total += rt
        per = {n: sum(1 for c in cmds if c.step == step) for n, cmds in last.commands.items()}
        print(f"{step:40} {a:7.2f} {b:7.2f} {rt:6.1f}  "
              + " ".join(f"{n}={k}" for n, k in per.items() if k))
        if show:
            for node, cmds in last.commands.items():
                for c in cmds:
                    if c.step == step:
                        text = c.command.replace("\n", "; ")
                        print(f"    {node} {c.end - c.start:6.2f}s {text[:150]}")
    for i, order in enumerate(orders):
        f, s = fast[i].wall_s, slow[i].wall_s
        first = "100 ms" if order[0] else "0 ms"
        print(f"pair {i + 1} ({first} first): {f:.2f}s at 0 ms, {s:.2f}s at 100 ms: "
              f"{(s - f) / bench.RTT_S:.1f} round trips")
    f, s = mean(r.wall_s for r in fast), mean(r.wall_s for r in slow)
    print(f"apply (means of {len(orders)} pair(s)): {f:.2f}s at 0 ms, {s:.2f}s at 100 ms: "
          f"apply_round_trips {(s - f) / bench.RTT_S:.1f} (steps sum {total:.1f}); "
          f"failed results {len(bad)}")
    print("channels " + " ".join(f"{n}={k}" for n, k in last.channels.items()))
    if timeline:
        for rtt, sent in sorted(SENT.items()):
            print_timeline(f"{rtt * 1000:g} ms", sent)
    return 0


SENT: dict[float, list[tuple[float, float, str, str]]] = {}  # link -> every command's wire
_SENDING: list[list[tuple[float, float, str, str]]] = [[]]


def record_wire() -> None:
    """Note every command any Remote sends (its wire form, reads, writes and batches too:
    the benchmark's own recording sees run() only), with when it started and ended."""
    plain = Remote._exec

    async def _exec(self: Remote, wire: str, *args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return await plain(self, wire, *args, **kw)
        finally:
            _SENDING[0].append((start, time.perf_counter(), self.node.name,
                                kw.get("shown") or wire))

    Remote._exec = _exec  # type: ignore[method-assign]


def print_timeline(label: str, sent: list[tuple[float, float, str, str]]) -> None:
    """Every command of one apply in the order sent: when it started and how long it took
    (seconds from the apply's first command) and its node; on the 100 ms run, a gap with no
    command in flight is a round trip the engine spent on none (a connect, or local work)."""
    if not sent:
        return
    zero = min(s for s, _e, _n, _w in sent)
    print(f"timeline ({label}): start  took  node  command")
    for start, end, node, wire in sorted(sent):
        text = wire.replace("\n", "; ")
        print(f"  {start - zero:7.2f} {end - start:6.2f} {node:4} {text[:120]}")


ORDERS = {
    "both": [(0.0, bench.RTT_S), (bench.RTT_S, 0.0)],
    "fast-first": [(0.0, bench.RTT_S)],
    "slow-first": [(bench.RTT_S, 0.0)],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--commands", action="store_true", help="list every command")
    parser.add_argument("--timeline", action="store_true",
                        help="every command of the last apply at each link, in the order sent")
    parser.add_argument("--order", choices=sorted(ORDERS), default="both",
                        help="which apply runs first on its reset lab (default both: one pair "
                             "each way, times averaged, so a lab's drift between its applies "
                             "does not count as round trips)")
    args = parser.parse_args(argv)
    if args.timeline:
        record_wire()
    return trace(args.nodes, args.commands, ORDERS[args.order], args.timeline)


if __name__ == "__main__":
    sys.exit(main())
