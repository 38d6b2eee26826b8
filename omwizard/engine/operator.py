"""What the operator does beside check / apply / rollback, as engine operations.

Skipping a step with a reason, a check the operator repeats in rounds (the multicast test from
another sender), how far a section got: the TUI asks for these; results are saved and reported
through the engine (`Engine.save` / `Engine.finish`), as its own runs are. No face code here.
"""

from __future__ import annotations

from omwizard.engine.runner import Engine
from omwizard.engine.step import FAILED, OK, SKIPPED, Finding, Result, Step
from omwizard.plan.model import Node

DONE = frozenset({"ok", "changed", "skipped"})

Rounds = dict[str, dict[str, Finding]]  # sender -> node -> finding


def applicable_nodes(engine: Engine, step: Step) -> list[Node]:
    """The engine's nodes the step applies to (the others are skipped with a reason)."""
    ctx = engine.context().bind(step)
    return [node for node in engine.nodes if step.applies(ctx, node) is None]


def skip_step(engine: Engine, step: Step, reason: str) -> list[Result]:
    """The operator skips a step on every node it applies to; the reason goes to the report.

    Saved, not reported as events: nothing ran.
    """
    results = []
    for node in applicable_nodes(engine, step):
        result = Result(step.section, step.name, node.name, SKIPPED,
                        engine.redact(f"skipped by the operator: {reason}"))
        results.append(engine.save(result))
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
