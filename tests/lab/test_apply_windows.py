"""An apply checks each window of proofs and the change closing it at once (issue 21,
engine/windows.py), on the lab: a full apply of a fresh 3-node lab, once through
Engine.apply and once one step after another (apply_step for each step, as apply ran
before), each on a reset lab, every command's time span noted under its step (StepContext.run
wrapped). After the restart verify's proofs run at once (their commands overlap on every OM
node; one after another they do not), and what is reported is what one step after another
reports: every result's status in the same order, each step's events, the same journal. A
dry run, which changes nothing, reports the same both ways too.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from omwizard.engine.events import ChangeMade, Event, StepFinished, StepStarted
from omwizard.engine.runner import Engine
from omwizard.engine.session import Session
from omwizard.engine.state import StateStore
from omwizard.engine.step import Result, StepContext
from omwizard.lab import Lab, services
from omwizard.plan.model import Node, load_plan

pytestmark = pytest.mark.lab

PASSWORD = "Windows-Run pw 7"


@dataclass
class Run:
    results: list[Result]
    events: list[tuple[str, ...]]
    spans: list[tuple[str, str, float, float]]  # (step id, node, start, end) of each command
    journal: list[dict[str, Any]] = field(default_factory=list)


async def one_after_another(engine: Engine) -> list[Result]:
    """Engine.apply as it was before windows: every step through apply_step, in order."""
    engine._touch("apply")
    results = await engine.recover_interrupted()
    for step in engine.steps():
        engine._touch("apply", section=step.section, step=step.name)
        results += await engine.apply_step(step)
    return results


def apply_on(lab: Lab, work: Path, *, windowed: bool, dry_run: bool = False) -> Run:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMW_DB_PASSWORD", PASSWORD)
        plan = load_plan(lab.write_plan(work / "plan.yaml"))
    spans: list[tuple[str, str, float, float]] = []
    events: list[tuple[str, ...]] = []
    real = StepContext.run

    async def run(self: StepContext, node: Node, argv: Any, **kw: Any) -> Any:
        start = time.monotonic()
        try:
            return await real(self, node, argv, **kw)
        finally:
            spans.append((self.step_id, node.name, start, time.monotonic()))

    def seen(e: Event) -> None:
        if isinstance(e, StepStarted):
            events.append((f"{e.section}.{e.step}", "started", e.node, e.phase))
        elif isinstance(e, ChangeMade):
            events.append((f"{e.section}.{e.step}", "change", e.node))
        elif isinstance(e, StepFinished):
            r = e.result
            events.append((f"{r.section}.{r.step}", "finished", r.node, r.status))

    async def go() -> list[Result]:
        session = Session.open(plan, work / "state")
        session.bus.subscribe(seen)
        async with session:
            engine = session.engine(dry_run=dry_run)
            return await (engine.apply() if windowed else one_after_another(engine))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StepContext, "run", run)
        results = asyncio.run(go())
    return Run(results, events, spans, StateStore(work / "state").journal())


def fresh(lab: Lab) -> Lab:
    """The lab reset, with what a full apply needs running (as test_full_run has it)."""
    lab.reset()
    services.ensure_lab_services(lab)
    assert lab.db is not None
    services.start_mariadb(lab.db)
    for node in lab.nodes.values():  # OpenMeetings' health endpoint, as the stand-in answers it
        services.start_health_responder(node)
    return lab


@pytest.fixture(scope="module")
def runs(lab: Lab, lab_manager: Any, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Run]:
    """Dry runs both ways on a fresh lab (they change nothing), then a real apply both ways,
    each on a freshly reset lab."""
    lab_manager.get()  # rebuilt if a test took it down
    out: dict[str, Run] = {}
    fresh(lab)
    for name, windowed in (("dry-before", False), ("dry-now", True)):
        out[name] = apply_on(lab, tmp_path_factory.mktemp(name), windowed=windowed,
                             dry_run=True)
    for name, windowed in (("now", True), ("before", False)):
        out[name] = apply_on(fresh(lab), tmp_path_factory.mktemp(name), windowed=windowed)
    lab.reset()
    return out


def statuses(run: Run) -> list[tuple[str, str, str, str]]:
    return [(r.section, r.step, r.node, r.status) for r in run.results]


def per_step(run: Run) -> dict[str, Counter[tuple[str, ...]]]:
    """Each step's events (the interleaving of steps checked at once left out)."""
    out: dict[str, Counter[tuple[str, ...]]] = {}
    for event in run.events:
        out.setdefault(event[0], Counter())[event[1:]] += 1
    return out


def span(run: Run, step: str, node: str) -> tuple[float, float]:
    """From the step's first command on the node to its last command's end."""
    mine = [(s, e) for st, n, s, e in run.spans if st == step and n == node]
    assert mine, (step, node)
    return min(s for s, _ in mine), max(e for _, e in mine)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_verify_proofs_run_at_once_after_the_restart(runs: dict[str, Run], lab: Lab) -> None:
    """verify.members, shared-files and ports (db-login and health talk through tunnels, not
    commands): now the shared-files proof (a few seconds: the writer keeps its names 2 s)
    and the ports proof overlap, and members starts before either ends; before, they ran
    one after another (db-login between shared-files and ports)."""
    now, before = runs["now"], runs["before"]
    for node in lab.nodes:  # the OM nodes
        members, shared, ports = (span(now, s, node) for s in
                                  ("verify.members", "verify.shared-files", "verify.ports"))
        assert overlap(shared, ports), (node, shared, ports)
        assert members[0] < min(shared[1], ports[1]), (node, members, shared, ports)
        restart = span(now, "verify.restart", node)
        assert min(members[0], shared[0], ports[0]) >= restart[1], node  # after the restart
        members, shared, ports = (span(before, s, node) for s in
                                  ("verify.members", "verify.shared-files", "verify.ports"))
        assert not overlap(shared, ports) and shared[0] >= members[1], (node, members, shared,
                                                                          ports)


def test_an_apply_reports_what_one_step_after_another_reports(runs: dict[str, Run]) -> None:
    now, before = runs["now"], runs["before"]
    assert statuses(now) == statuses(before)
    bad = [r for r in now.results if r.status not in ("ok", "changed", "skipped")]
    assert bad == [], [(r.section, r.step, r.node, r.detail) for r in bad]
    members = {r.node: r.status for r in now.results if r.step == "members"}
    assert members == {"n1": "ok", "n2": "ok", "n3": "ok", "db": "skipped"}  # a cluster
    assert per_step(now) == per_step(before)
    finished = [e for e in now.events if e[1] == "finished"]
    assert [(e[0], e[2], e[3]) for e in finished] == [
        (f"{r.section}.{r.step}", r.node, r.status) for r in now.results]  # as returned

    def changes(run: Run) -> list[tuple[str, ...]]:
        return sorted((r["section"], r["step"], r["node"], r["kind"], r["target"], r["phase"])
                      for r in run.journal)

    assert changes(now) == changes(before)
    assert all(r["phase"] in ("done", "aborted") for r in now.journal)


def test_a_dry_run_reports_what_one_step_after_another_reports(runs: dict[str, Run]) -> None:
    now, before = runs["dry-now"], runs["dry-before"]
    assert statuses(now) == statuses(before)
    assert "would-change" in {r.status for r in now.results}
    assert per_step(now) == per_step(before)
    assert now.journal == before.journal == []
