"""Running the doctor: its read-only steps through the same engine as `check`.

The doctor's steps are a catalogue beside the page's sections (engine.catalog.EXTRA), so
`Engine.check()` (the page) never runs them; this runs them through `Engine.check_steps`, which
gives them the same fact gathering, unreachable-node handling, results and events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from omwizard.engine.catalog import steps_for
from omwizard.engine.step import Result
from omwizard.facts.doctor import Diagnosis, NodeView

if TYPE_CHECKING:
    from omwizard.engine.runner import Engine
    from omwizard.engine.session import Session

SECTION = "doctor"
MATRIX_STEP = "matrix"


async def run_doctor(engine: Engine) -> list[Result]:
    """Every doctor step on the engine's nodes, checked at once as `check` does (the matrix
    after the steps that add to its rows); results saved and reported in order."""
    return await engine.check_steps(steps_for(SECTION))


async def doctor(session: Session, nodes: Iterable[str] | None = None) -> list[Result]:
    """The doctor on a session's plan (nodes: a selection, None = all)."""
    return await run_doctor(session.engine(sections=[], nodes=nodes))


def matrix(results: Iterable[Result]) -> list[NodeView]:
    """The node-by-node rows from the matrix step's results (plan order)."""
    rows = []
    for result in results:
        if result.section == SECTION and result.step == MATRIX_STEP and \
                isinstance(result.data, Diagnosis) and result.data.view is not None:
            rows.append(result.data.view)
    return rows


def causes(results: Iterable[Result]) -> dict[str, set[str]]:
    """node -> the cause codes the doctor found there (typed data, never the words)."""
    out: dict[str, set[str]] = {}
    for result in results:
        if result.section == SECTION and isinstance(result.data, Diagnosis):
            for cause in result.data.causes:
                out.setdefault(cause.node, set()).add(cause.code)
    return out


# the matrix's lines: (label, how to show a row's value)
MATRIX_FIELDS: tuple[tuple[str, Any], ...] = (
    ("address", lambda v: v.address),
    ("OpenMeetings", lambda v: v.om_version),
    ("Hazelcast jar", lambda v: v.hazelcast_version and
     f"{v.hazelcast_version} ({v.hazelcast_source})"),
    ("instance-name", lambda v: v.instance_name),
    ("name attribute", lambda v: v.name_attribute),
    ("cluster-name", lambda v: v.cluster_name),
    ("join", lambda v: ", ".join(v.join) or "none"),
    ("interfaces", lambda v: ", ".join(v.interfaces) if v.interfaces_enabled else "off"),
    ("server.url", lambda v: v.server_url),
    ("server.url answer", lambda v: v.url_answer),
    ("certificate names", lambda v: ", ".join(v.cert_names) or None),
    ("DB URL", lambda v: v.db_url),
    ("DATA_DIR (live)", lambda v: v.data_dir_live),
    ("DATA_DIR (configured)", lambda v: v.data_dir_configured),
    ("JVM pid", lambda v: v.pid),
    ("live JVM flags", lambda v: " ".join(v.live_flags) or None),
    ("Kurento URL", lambda v: v.kurento_url),
    ("kurento.kuid", lambda v: v.kuid),
    ("members seen", lambda v: ", ".join(v.members_seen) or None),
)


def matrix_table(rows: list[NodeView]) -> list[list[str]]:
    """[header, *lines]: one column per node, one line per field (both faces show it)."""
    table = [["", *(r.node for r in rows)]]
    for label, get in MATRIX_FIELDS:
        table.append([label, *(str(get(r)) if get(r) not in (None, "") else "-" for r in rows)])
    return table
