"""The export: the plan as loaded, plus a `report:` of what was checked, changed and verified.

An export is both a record for the operator's change log and a plan: `omwizard validate` and
every other command load it as it is (the plan loader ignores the top-level `report` key).
It is built from the session state only (results, journal, manual answers), so exporting
needs no connection. Secrets never appear: the plan part carries `${VAR}` references only
(plan_to_dict), and every text taken from the state is passed through the redactor with the
plan's resolved secret values as a second guard.

The documentation's two manual checks live here as data, so the TUI and the CLI show the
same words and record answers the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from omwizard.engine.files import missing_folder, write_atomically
from omwizard.engine.redact import Redactor, redactor_for
from omwizard.engine.state import StateStore, now_iso
from omwizard.engine.step import Result
from omwizard.facts.preflight import OmInstall
from omwizard.om.layout import version_text
from omwizard.plan.model import Plan, plan_to_dict

# -- manual checks (the documentation's "Ensure everything works as expected") -------------------

MANUAL_CHECKS: dict[str, dict[str, str]] = {
    "same-room": {
        "title": "Two users, same room",
        "doc": (
            "Set up the cluster and login with two users, go to the same room (also check "
            "before room entering that the status page with the room list shows the correct "
            "number of participants before entering the room). You should login to the same "
            "server initially, the server will redirect you for the conference room to the "
            "appropriate server automatically. Both users should be in the same room."
        ),
    },
    "different-rooms": {
        "title": "Two users, different rooms",
        "doc": (
            "Do the same with only two users but go to _different_ rooms. The calculation "
            "should send both users to different servers, cause based on the calculation two "
            "different rooms on a cluster with two nodes should go exactly one room for each "
            "node. You can now login really to node1 and node2 of your cluster while those "
            "users are loggedin and go to Administration > Connections and check in the column "
            "\"Server Name\" where they are located. They should be on different server."
        ),
    },
}
VERDICTS = ("pass", "fail")


def _url(node: Any) -> str:
    return node.server_url or f"http://{node.address}:5080/openmeetings"


def manual_instructions(plan: Plan) -> list[dict[str, Any]]:
    """Each manual check with this cluster's real names and URLs: what to do, what to expect."""
    om = list(plan.om_nodes)
    first = om[0]
    names = ", ".join(n.name for n in om)
    urls = [f"{n.name}: {_url(n)}" for n in om]
    same = {
        "id": "same-room",
        **MANUAL_CHECKS["same-room"],
        "steps": [
            f"In two browsers (or one private window), open {_url(first)} and log in as two "
            "different users.",
            "Before entering, look at the room list: it shows the number of participants "
            "already in each room; note it for the room you choose.",
            "Both users enter that same room.",
        ],
        "expect": [
            "The room list showed the correct participant count before entering.",
            f"Both logged in on {first.name}; on entering, OpenMeetings may redirect a user to "
            f"another server's URL ({'; '.join(urls)}).",
            "Both users end up in the same room and see and hear each other.",
        ],
    }
    second = om[1] if len(om) > 1 else om[0]
    different = {
        "id": "different-rooms",
        **MANUAL_CHECKS["different-rooms"],
        "steps": [
            f"Two users log in (at {_url(first)}) and enter two different rooms.",
            f"While they are in, log in as an administrator on {first.name} ({_url(first)}) "
            f"and on {second.name} ({_url(second)}) and open Administration > Connections.",
            "Read the column \"Server Name\" for the two users.",
        ],
        "expect": [
            "The two users are on different servers: \"Server Name\" shows two different "
            f"instance names among {names}.",
        ],
    }
    return [same, different]


def record_answer(state: StateStore, check_id: str, verdict: str, note: str = "") -> dict[str, str]:
    """Save the operator's answer to a manual check (verdict pass|fail, a note, when)."""
    if check_id not in MANUAL_CHECKS:
        raise KeyError(
            f"unknown manual check {check_id}; choose {' or '.join(MANUAL_CHECKS)}"
        )
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: choose pass or fail")
    answer = {"verdict": verdict, "note": note, "at": now_iso()}
    state.set_answer(check_id, answer)
    return answer


# -- the report --------------------------------------------------------------------------------


def _om_versions(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Node -> the OpenMeetings version preflight.om-installed found (its typed data)."""
    out = {}
    for saved in results.values():
        if saved.get("section") == "preflight" and saved.get("step") == "om-installed" \
                and saved.get("status") == "ok":
            result = Result.from_json(saved)
            if isinstance(result.data, OmInstall):
                out[result.node] = version_text(result.data.version)
    return out


def _changes(journal: list[dict[str, Any]], redact: Redactor) -> dict[tuple[str, str, str], list]:
    """(section, step, node) -> the changes the journal holds, oldest first."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in journal:
        key = (record.get("section", ""), record.get("step", ""), record.get("node", ""))
        item = {
            "kind": record.get("kind"),
            "target": redact(str(record.get("target", ""))),
            "undo": redact(str(record.get("undo", ""))),
            "phase": record.get("phase"),
            "at": record.get("ts_end") or record.get("ts_begin"),
        }
        if record.get("ts_undone"):
            item["undone_at"] = record["ts_undone"]
        out.setdefault(key, []).append(item)
    return out


def build_report(plan: Plan, state: StateStore) -> dict[str, Any]:
    """The `report:` mapping: per section, step and node, plus manual answers and versions."""
    redact = redactor_for(plan)
    results = state.results()
    changes = _changes(state.journal(), redact)
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    keys = {tuple(key.split("/", 2)) for key in results} | set(changes)
    order = {n.name: i for i, n in enumerate(plan.nodes)}
    for section, step, node in sorted(keys, key=lambda k: (k[0], k[1], order.get(k[2], 999))):
        result = results.get(f"{section}/{step}/{node}", {})
        entry: dict[str, Any] = {"status": result.get("status", "not checked")}
        if result.get("detail"):
            entry["detail"] = redact(result["detail"])
        if result.get("remedy") and result.get("status") not in ("ok", "changed", "skipped"):
            entry["remedy"] = redact(result["remedy"])
        evidence = [redact(e) for e in result.get("evidence", [])]
        if evidence:
            entry["evidence"] = [e if len(e) <= 400 else e[:400] + " ..." for e in evidence]
        when = result.get("ts") or result.get("at")
        if when:
            entry["at"] = _iso(when)
        if changes.get((section, step, node)):
            entry["changes"] = changes[(section, step, node)]
        sections.setdefault(section, {}).setdefault(step, {})[node] = entry
    answers = state.answers()
    manual = {}
    for check in manual_instructions(plan):
        answer = answers.get(check["id"])
        manual[check["id"]] = {
            "title": check["title"],
            "verdict": answer["verdict"] if answer else "not answered",
            **({"note": redact(answer.get("note", "")), "at": answer.get("at")} if answer else {}),
        }
    meta = state.meta()
    return {
        "generated": now_iso(),
        "last_activity": meta.get("last_activity") or meta.get("at"),
        "om_versions": _om_versions(results),
        "sections": sections,
        "manual_checks": manual,
    }


def _iso(value: Any) -> str:
    import datetime as dt

    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    return str(value)


def export_text(plan: Plan, state: StateStore) -> str:
    """The export as YAML text: the plan, then `report:`."""
    data = plan_to_dict(plan)
    data["report"] = build_report(plan, state)
    header = (
        "# omwizard export: the plan (re-loadable: omwizard validate FILE) and a report of\n"
        "# what was checked, changed and verified. Secrets appear only as ${VAR} references.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


class ExportError(Exception):
    """The export cannot go where it was asked to; the message names the fix."""


def export_target(plan: Plan, path: Path | str) -> Path:
    """Where the export goes: a folder means `<folder>/<cluster>-omwizard.yaml` in it."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / f"{plan.cluster.name}-omwizard.yaml"
    return target


def write_export(plan: Plan, state: StateStore, path: Path | str) -> Path:
    """Write the export atomically (temp file in the same folder, fsync, rename), mode 0600.

    `path` may be a folder (export_target); a missing folder is an ExportError.
    """
    path = export_target(plan, path)
    if (folder := missing_folder(path)) is not None:
        raise ExportError(
            f"cannot write {path}: the folder {folder} does not exist; create it or name another"
        )
    return write_atomically(path, export_text(plan, state))
