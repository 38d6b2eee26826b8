"""What the operator does beside check / apply / rollback, as engine operations.

Skipping a step with a reason, a check the operator repeats in rounds (the multicast test from
another sender), what a roll back would undo, how far a section got and where to resume: the
TUI asks for these, the engine owns how they are saved and reported (the same results, state
and events as the engine's own runs). No face code here.
"""

from __future__ import annotations

from typing import Any

from omwizard.engine.events import StepFinished
from omwizard.engine.runner import Engine
from omwizard.engine.state import StateStore
from omwizard.engine.step import FAILED, OK, SKIPPED, Finding, Result, Step
from omwizard.plan.model import Node

DONE = frozenset({"ok", "changed", "skipped"})

Rounds = dict[str, dict[str, Finding]]  # sender -> node -> finding


def applicable_nodes(engine: Engine, step: Step) -> list[Node]:
    """The engine's nodes the step applies to (the others are skipped with a reason)."""
    ctx = engine.context().bind(step)
    return [node for node in engine.nodes if step.applies(ctx, node) is None]


def record(engine: Engine, result: Result) -> Result:
    """Save a result the engine did not run itself and report it, as the engine's own are."""
    if engine.state is not None and not engine.dry_run:
        engine.state.set_result(result.key, {**result.as_json(), "at": result.at})
    engine.bus.emit(StepFinished(result))
    return result


def skip_step(engine: Engine, step: Step, reason: str) -> list[Result]:
    """The operator skips a step on every node it applies to; the reason goes to the report.

    Saved, not reported as events: nothing ran.
    """
    results = []
    for node in applicable_nodes(engine, step):
        result = Result(step.section, step.name, node.name, SKIPPED,
                        engine.redact(f"skipped by the operator: {reason}"))
        if engine.state is not None and not engine.dry_run:
            engine.state.set_result(result.key, {**result.as_json(), "at": result.at})
        results.append(result)
    return results


def combine_rounds(engine: Engine, step: Step, node: str, rounds: Rounds) -> Result | None:
    """A check repeated in rounds, as one result for a node: failed if any round failed there,
    with each round's words (None when no round reached the node)."""
    redact = engine.redact
    findings = [(sender, found[node]) for sender, found in rounds.items() if node in found]
    if not findings:
        return None
    failed = [f for _, f in findings if f.status != OK]
    detail = "; ".join(f"from {sender}: {f.detail}" for sender, f in findings)
    return Result(step.section, step.name, node, FAILED if failed else OK, redact(detail),
                  remedy=redact(failed[0].remedy) if failed else "",
                  evidence=[redact(e) for _, f in findings for e in f.evidence])


def undo_records(state: StateStore | None, section: str, step: str | None = None
                 ) -> list[dict[str, Any]]:
    """What a roll back of the section (or one of its steps) would undo, newest first."""
    if state is None:
        return []
    return [r for r in reversed(state.journal())
            if r.get("phase") == "done" and r.get("section") == section
            and (step is None or r.get("step") == step)]


def section_progress(engine: Engine, section: str) -> tuple[int, int]:
    """(done, total) step-node pairs of a section, from the saved results."""
    results = engine.state.results() if engine.state is not None else {}
    done = total = 0
    for step in engine.steps(section):
        for node in applicable_nodes(engine, step):
            total += 1
            result = results.get(f"{section}/{step.name}/{node.name}")
            if result and result.get("status") in DONE:
                done += 1
    return done, total
