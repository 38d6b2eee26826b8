"""Taking one node out of a running cluster: the one orchestration both faces run
(`omwizard remove-node`, the TUI's "Remove a node"); see cli/nodes.py for the order and why.

Face-free: the face opens the session (its host-key and password questions, its listener on
the bus) and writes the plan file once every result is good; this runs the engine. The
departure steps live in sections/_departure.py, above the engine: they are found by name,
the way engine/catalog.py finds every section's steps.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from omwizard.engine.catalog import SECTION_PACKAGE, SECTIONS
from omwizard.plan.edit import PlanEditError, remove_node_text
from omwizard.plan.model import PlanError, dump_plan, parse_plan_text

if TYPE_CHECKING:
    from omwizard.engine.runner import Engine
    from omwizard.engine.session import Session
    from omwizard.engine.step import Result, Step
    from omwizard.plan.model import Plan

Leaving = Literal["rollback", "keep"]
PEER_SECTIONS = ["network", "nodes"]  # what the plan without the node rewrites on its peers


class RemovalError(ValueError):
    """The node cannot be taken out of this plan (the message names the problem and the fix)."""


def plan_without(before: Plan, text: str, name: str, env: Mapping[str, str],
                 label: str, source: Path | None = None) -> tuple[Plan, str]:
    """(the plan without the node, the plan text without it, comments kept): nothing contacted.

    label names the plan in the messages (the file as the operator typed it)."""
    try:
        before.node(name)
        new_text = remove_node_text(text, name)
    except (KeyError, PlanEditError) as exc:
        raise RemovalError(f"{label}: {exc.args[0] if exc.args else exc}") from exc
    try:
        after = parse_plan_text(new_text, env, source=source)
    except PlanError as exc:
        raise RemovalError(f"{label} without {name} is not a valid plan:\n{exc}\n"
                           "(fix: move the node's roles to another node first)") from exc
    if not after.om_nodes:
        raise RemovalError(f"{name} is the last OpenMeetings node: nothing would be left")
    return after, new_text


async def remove_node(session: Session, before: Plan, after: Plan, name: str,
                      leaving: Leaving = "keep") -> list[Result]:
    """Stop the leaving node's OpenMeetings, have its peers drop it and verify the members,
    then roll back or keep its own changes; the session's state gets the plan without it.

    Every part is journaled and safe to run again after an interruption. The session is used
    as given (opened and closed by the face); its bus carries every StepFinished."""
    from omwizard.engine.runner import Engine
    from omwizard.engine.step import FAILED, SKIPPED

    departure = importlib.import_module(f"{SECTION_PACKAGE}._departure")
    node = before.node(name)

    def engine(plan: Plan, sections: list[str], nodes: list[str] | None = None,
               steps: list[str] | None = None) -> Engine:
        return Engine(plan, pool=session.pool, state=session.state, bus=session.bus,
                      sections=sections, nodes=nodes, redact=session.redact, steps=steps)

    stop: Step = departure.StopLeavingStep("leave", "OpenMeetings stopped", node)
    drops: list[Step] = [
        departure.DropExportStep("drop-export", "Exports line dropped", node),
        departure.DropDbAccountStep("drop-account", "Database account dropped", node)]
    results: list[Result] = []
    gone = engine(before, ["verify"], [node.name])
    results += await gone.recover_interrupted()
    await resolve_open(gone, [stop])
    stopped = await gone.apply_step(stop)
    unreached = session.pool.failure(node)
    for result in stopped:
        if result.status == FAILED and unreached is not None:
            # a dead node is the common reason to remove one: down, it cannot rejoin
            result.status = SKIPPED
            result.detail = (f"{node.name} cannot be reached ({result.detail}): taken "
                             "as down; if it comes back, stop OpenMeetings on it")
    results += stopped
    peers = engine(after, list(SECTIONS))
    results += await peers.recover_interrupted()
    await resolve_open(peers, drops)
    for step in drops:
        results += await peers.apply_step(step)
    results += await engine(after, PEER_SECTIONS).apply()
    results += await engine(after, ["verify"], steps=["restart", "members"]).apply()
    if leaving == "rollback":
        results += await engine(before, list(SECTIONS), [node.name]).rollback()
    if session.state is not None:
        session.state.save_plan(dump_plan(after))
    return results


async def resolve_open(engine: Engine, steps: Sequence[Step]) -> None:
    """A departure change the wizard was killed in (journaled begin, no end): its step checks
    again and the record is closed as done or not made, as the engine does for its own
    steps (these steps are not in the catalog, so the engine cannot find them)."""
    from omwizard.engine.step import OK

    if engine.state is None:
        return
    known = {(s.section, s.name): s for s in steps}
    names = {n.name for n in engine.nodes}
    for record in engine.state.open_records():
        step = known.get((str(record.get("section")), str(record.get("step"))))
        if step is None or record.get("kind") != "command" or record.get("node") not in names:
            continue
        node = engine.plan.node(record["node"])
        ctx = engine.context().bind(step)
        finding = await ctx.guard(node, step.check(ctx, node))
        engine.state.journal_end(record["id"], "done" if finding.status == OK else "aborted",
                                 note="resolved on resume")
