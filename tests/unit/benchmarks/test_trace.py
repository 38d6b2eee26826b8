"""benchmarks/trace.py's tracer: channels are put down to the step whose check opened them
(a rerun inside verify keeps its own name), and everything it patched is put back."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

from omwizard.engine.catalog import steps_for
from omwizard.remote.ssh import Remote

ROOT = Path(__file__).resolve().parents[3]


def trace_module() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("omw_bench_trace", ROOT / "benchmarks/trace.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_spans_carry_the_step_and_the_patches_are_undone() -> None:
    trace = trace_module()
    step = next(s for s in steps_for("preflight") if s.name == "clock")
    kind = type(step)
    before = (dict(kind.__dict__), Remote._exec, Remote.connect)
    tracer = trace.Tracer()

    async def fake_check_all(self: Any, ctx: Any, nodes: list[Any]) -> dict[str, Any]:
        return {"seen": trace.STEP.get()}

    real = kind.__dict__["check_all"]
    kind.check_all = fake_check_all  # the tracer wraps what the class has
    try:
        with tracer.on(["preflight"]):
            got = asyncio.run(step.check_all(None, []))
        assert got == {"seen": "preflight.clock"}
        assert trace.STEP.get() == "engine"
        assert kind.__dict__["check_all"] is fake_check_all  # put back as it was
    finally:
        kind.check_all = real
    assert dict(kind.__dict__) == before[0]
    assert (Remote._exec, Remote.connect) == before[1:]
