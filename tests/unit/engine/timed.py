"""A proof step that takes its time, for the tests of steps checked at once (test_check_at_once,
test_apply_windows): it runs a command and sleeps, noting in LOG when its check starts and ends,
so a test can say which checks overlapped and which waited."""

from __future__ import annotations

import asyncio
import time

from omwizard.engine.step import Finding, Step, StepContext
from omwizard.plan.model import Node

LOG: list[tuple[str, str, float]] = []  # (step, what, when)


def when(step: str, what: str, last: bool = False) -> float:
    """The first (or last) time LOG notes `what` of that step."""
    times = [t for s, w, t in LOG if s == step and w == what]
    return max(times) if last else min(times)


class Timed(Step):
    """Changes nothing: runs a command and sleeps `secs` (so the checks overlap)."""

    section = "preflight"

    def __init__(self, name: str, secs: float, after: tuple[str, ...] = ()) -> None:
        super().__init__(name, name)
        self.secs = secs
        self.after = after

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        LOG.append((self.name, "start", time.monotonic()))
        await ctx.run(node, f"echo {self.name}")
        await asyncio.sleep(self.secs)
        says = self.says(ctx, node)
        LOG.append((self.name, "end", time.monotonic()))
        return Finding.ok(says)

    def says(self, ctx: StepContext, node: Node) -> str:
        """What the check says once it has slept."""
        return f"{self.name} holds on {node.name}"
