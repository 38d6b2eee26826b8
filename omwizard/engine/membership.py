"""What a plan change touches: the nodes a run changes (or, dry, would change) and the ones it
leaves alone, against the plan the state last applied. Both faces show it before an apply
(`apply --dry-run`; the TUI's membership panel) and after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from omwizard.engine.step import CHANGED, NEEDS_CHANGE, WOULD_CHANGE, Result
from omwizard.facts.membership import PlanChange, plan_change
from omwizard.plan.model import Plan

TOUCHING = (WOULD_CHANGE, NEEDS_CHANGE, CHANGED)


def node_names(plan_text: str | None) -> list[str] | None:
    """The node names of a saved plan's text (None: no plan saved, or unreadable)."""
    if not plan_text:
        return None
    try:
        data = yaml.safe_load(plan_text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        return None
    return [str(n["name"]) for n in data["nodes"] if isinstance(n, dict) and "name" in n]


@dataclass(frozen=True)
class TouchReport:
    """Per node the steps a run changes there; the nodes it leaves alone; the plan change."""

    change: PlanChange
    touched: dict[str, tuple[str, ...]]
    untouched: tuple[str, ...]

    def lines(self) -> list[str]:
        out = []
        if self.change.added:
            out.append(f"joining the cluster: {', '.join(self.change.added)}")
        if self.change.removed:
            out.append(f"left the plan: {', '.join(self.change.removed)}")
        for node, steps in self.touched.items():
            new = " (new)" if node in self.change.added else ""
            out.append(f"touched: {node}{new}: {', '.join(steps)}")
        if self.untouched:
            out.append(f"not touched: {', '.join(self.untouched)}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {"added": list(self.change.added), "removed": list(self.change.removed),
                "touched": {n: list(s) for n, s in self.touched.items()},
                "untouched": list(self.untouched)}


def touch_report(previous_text: str | None, plan: Plan, results: Iterable[Result]
                 ) -> TouchReport:
    """Which nodes the run's results change (would-change, needs-change, changed)."""
    touched: dict[str, list[str]] = {}
    for r in results:
        if r.status in TOUCHING:
            steps = touched.setdefault(r.node, [])
            if f"{r.section}.{r.step}" not in steps:
                steps.append(f"{r.section}.{r.step}")
    names = [n.name for n in plan.nodes]
    return TouchReport(
        plan_change(node_names(previous_text), names),
        {n: tuple(touched[n]) for n in names if n in touched},
        tuple(n for n in names if n not in touched),
    )
