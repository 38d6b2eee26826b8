#!/usr/bin/env python3
"""Where a check's time goes over a slow link (needs root, builds the 3-node lab).

Every SSH channel the engine opens (Remote._exec: commands, file reads, sudo probes) and every
connection it makes (Remote.connect) is timed relative to the run's start and attributed to
the step whose check opened it (a context variable set around each step's check), or to the
engine itself ("engine": connects, the run's gather). Printed in RTTs of the slow link, by
node, so the critical path reads off the lines; then the run's wall time at 0 ms and at the
slow RTT through benchmarks/relay.py, and the critical path in round trips
(time at RTT - time at 0 ms) / RTT, as run.py's `check_round_trips`; and the SSH handshake
alone (asyncssh connect through the relay), in round trips the same way.

    sudo .venv/bin/python benchmarks/trace.py            # a working cluster (apply first)
    sudo .venv/bin/python benchmarks/trace.py --fresh    # a fresh lab (no apply)
    sudo .venv/bin/python benchmarks/trace.py --section network --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
from run import (  # noqa: E402
    DB_PASSWORD,
    ROOT,
    available_sections,
    lab_of,
    log,
    relayed,
    run_check,
)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from omwizard.engine.catalog import steps_for  # noqa: E402
from omwizard.engine.session import Session  # noqa: E402
from omwizard.engine.step import Step  # noqa: E402
from omwizard.plan.model import Plan  # noqa: E402
from omwizard.remote.ssh import Remote  # noqa: E402

STEP: contextvars.ContextVar[str] = contextvars.ContextVar("omw_trace_step", default="engine")


@dataclass
class Span:
    node: str
    step: str
    what: str
    start: float
    end: float = 0.0


class Tracer:
    """Patches Remote._exec / Remote.connect and every step's check (class level) while on."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.t0 = 0.0

    @contextmanager
    def on(self, sections: list[str]) -> Iterator[None]:
        saved: list[tuple[Any, str, Any]] = []
        tracer = self

        def patch(owner: Any, name: str, new: Any) -> None:
            saved.append((owner, name, owner.__dict__.get(name)))
            setattr(owner, name, new)

        plain_exec = Remote._exec
        plain_connect = Remote.connect

        async def _exec(self: Remote, wire: str, *args: Any, **kw: Any) -> Any:
            span = Span(self.node.name, STEP.get(), kw.get("shown") or wire,
                        time.perf_counter())
            tracer.spans.append(span)
            try:
                return await plain_exec(self, wire, *args, **kw)
            finally:
                span.end = time.perf_counter()

        async def connect(self: Remote) -> None:
            if self.connected:
                return await plain_connect(self)
            span = Span(self.node.name, STEP.get(), "(ssh connect)", time.perf_counter())
            tracer.spans.append(span)
            try:
                return await plain_connect(self)
            finally:
                span.end = time.perf_counter()

        patch(Remote, "_exec", _exec)
        patch(Remote, "connect", connect)
        classes: set[type[Step]] = {type(s) for sec in sections for s in steps_for(sec)}
        for cls in classes:
            for name in ("check", "check_all"):
                plain = getattr(cls, name)

                def wrap(plain: Any = plain) -> Any:
                    async def traced(self: Step, *args: Any, **kw: Any) -> Any:
                        if STEP.get() != "engine":  # a rerun inside verify keeps its own
                            return await plain(self, *args, **kw)
                        token = STEP.set(self.id)
                        try:
                            return await plain(self, *args, **kw)
                        finally:
                            STEP.reset(token)
                    return traced

                patch(cls, name, wrap())
        try:
            yield
        finally:
            for owner, name, old in reversed(saved):
                if old is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, old)

    def show(self, rtt: float, fast: Tracer | None = None) -> None:
        """Every span, by node, in RTTs from the run's start; with the same span of a run
        over the fast link, `net`: what the slow link added to it, in RTTs (the rest of a
        span is the command's own time)."""
        seen: dict[tuple[str, str, str], list[Span]] = {}
        for s in sorted(fast.spans if fast else [], key=lambda s: s.start):
            seen.setdefault((s.node, s.step, s.what[:60]), []).append(s)
        for node in sorted({s.node for s in self.spans}):
            print(f"## {node}")
            for s in sorted((s for s in self.spans if s.node == node), key=lambda s: s.start):
                a, b = (s.start - self.t0) / rtt, (s.end - self.t0) / rtt
                same = seen.get((s.node, s.step, s.what[:60]))
                net = ""
                if same:
                    other = same.pop(0)
                    net = f" net {(b - a) - (other.end - other.start) / rtt:4.1f}"
                what = s.what.replace("\n", "; ")
                print(f"  {a:6.1f} .. {b:6.1f} RTT ({b - a:4.1f}{net})  {s.step:<28} "
                      f"{what[:80]}")


async def traced_check(plan: Plan, sections: list[str], tracer: Tracer) -> float:
    session = Session(plan)
    engine = session.engine(sections)
    with tracer.on(sections):
        tracer.t0 = time.perf_counter()
        async with session:
            await engine.check()
        return time.perf_counter() - tracer.t0


async def handshake(plan: Plan) -> float:
    """One fresh asyncssh connection to the first node (the engine's own connect path)."""
    session = Session(plan)
    remote = session.pool.get(plan.nodes[0])
    start = time.perf_counter()
    try:
        await remote.connect()
        return time.perf_counter() - start
    finally:
        await session.pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fresh", action="store_true", help="no apply first (a fresh lab)")
    parser.add_argument("--section", action="append", help="only these sections")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per link (median)")
    parser.add_argument("--rtt-ms", type=float, default=100.0, help="the slow link's RTT")
    parser.add_argument("--lab-wait", type=float, default=run.LAB_WAIT_S,
                        help="seconds to wait for another lab to go away")
    args = parser.parse_args(argv)
    run.LAB_WAIT_S = args.lab_wait
    os.environ.setdefault("OMW_DB_PASSWORD", DB_PASSWORD)
    sections = args.section or available_sections()
    rtt = args.rtt_ms / 1000
    with lab_of(3) as lab, tempfile.TemporaryDirectory(prefix="omwtrace-") as tmp:
        work = Path(tmp)
        plan_path = lab.write_plan(work / "plan.yaml")
        if not args.fresh:
            log("full apply (forms the working cluster)")
            from omwizard.plan.model import load_plan

            formed = asyncio.run(run_check(load_plan(plan_path), available_sections(),
                                           apply=True, state_dir=work / "state"))
            bad = [f"{r.section}.{r.step}/{r.node}" for r in formed.results
                   if r.status == "failed"]
            log(f"apply: {formed.wall_s:.2f}s; failed: {', '.join(bad) or 'none'}")
        with relayed(lab, plan_path, work, 0.0) as fast, relayed(lab, plan_path, work, rtt) as slow:
            hs0 = statistics.median(asyncio.run(handshake(fast)) for _ in range(args.reps))
            hs1 = statistics.median(asyncio.run(handshake(slow)) for _ in range(args.reps))
            walls0, walls1 = [], []
            shown: tuple[Tracer, Tracer] | None = None
            for _ in range(args.reps):
                at0, at1 = Tracer(), Tracer()
                walls0.append(asyncio.run(traced_check(fast, sections, at0)))
                walls1.append(asyncio.run(traced_check(slow, sections, at1)))
                if shown is None or walls1[-1] <= min(walls1):
                    shown = (at1, at0)
            assert shown is not None
            print(f"# spans of the fastest check at {args.rtt_ms:g} ms RTT, in RTTs from its "
                  f"start (sections: {', '.join(sections)}); net: RTTs more than at 0 ms")
            shown[0].show(rtt, shown[1])
            w0, w1 = statistics.median(walls0), statistics.median(walls1)
            print(f"# handshake: {hs0:.3f}s at 0 ms, {hs1:.3f}s at {args.rtt_ms:g} ms: "
                  f"{(hs1 - hs0) / rtt:.1f} round trips")
            print(f"# check: {w0:.3f}s at 0 ms, {w1:.3f}s at {args.rtt_ms:g} ms "
                  f"(medians of {args.reps}): critical path {(w1 - w0) / rtt:.1f} round trips "
                  f"({'fresh lab' if args.fresh else 'working cluster'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
