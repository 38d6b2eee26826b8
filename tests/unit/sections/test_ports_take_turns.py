"""preflight.ports and verify.ports (the same proof again) in one check run at once: their
listeners would take each other's ports, so the proofs take turns."""

from __future__ import annotations

import asyncio
from typing import Any

from omwizard.sections.preflight import STEPS, PortsStep


class _Ctx:
    def __init__(self, shared: dict[str, Any]) -> None:
        self.shared = shared


def test_two_ports_proofs_of_one_run_do_not_overlap(monkeypatch):
    step = next(s for s in STEPS if isinstance(s, PortsStep))
    seen: list[str] = []

    async def proof(self: PortsStep, ctx: Any, nodes: list) -> dict:  # noqa: ARG001
        seen.append("start")
        await asyncio.sleep(0.05)
        seen.append("end")
        return {}

    monkeypatch.setattr(PortsStep, "_check_all", proof)

    shared: dict[str, Any] = {}  # one run: the contexts of its steps share this

    async def run() -> None:
        await asyncio.gather(step.check_all(_Ctx(shared), []),  # type: ignore[arg-type]
                             step.check_all(_Ctx(shared), []))  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == ["start", "end", "start", "end"]
    asyncio.run(run())  # the same engine again, on another event loop (its own lock there)
    assert seen == ["start", "end"] * 4
