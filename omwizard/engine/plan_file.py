"""The operator's plan file, rewritten after a membership change: atomically, its mode and
every comment kept (plan/edit.py edits the text; this writes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from omwizard.engine.files import write_atomically
from omwizard.plan.edit import PlanEditError
from omwizard.plan.model import Plan, PlanError, parse_plan_text


class PlanFileError(ValueError):
    """The plan file was not rewritten (the message says why and what to do instead)."""


def write_plan_file(path: str | Path, text: str) -> None:
    """Atomically, keeping the file's mode (it may hold literal secrets: 0600 stays 0600)."""
    target = Path(path)
    write_atomically(target, text, mode=target.stat().st_mode & 0o7777)


def update_plan_file(path: str | Path, edit: Callable[[str], str], plan: Plan,
                     env: Mapping[str, str]) -> None:
    """Apply one text edit (plan/edit.py) to the file, and write it only when the edited file
    lists the same nodes as `plan` (the plan the face now works on): a file that was changed
    elsewhere, or a plan edited beyond it, is never overwritten with a third version."""
    target = Path(path)
    try:
        text = edit(target.read_text())
        written = parse_plan_text(text, env, source=target)
    except OSError as exc:
        raise PlanFileError(f"cannot read {target}: {exc.strerror or exc}") from exc
    except PlanEditError as exc:
        raise PlanFileError(f"{target}: {exc}") from exc
    except PlanError as exc:
        raise PlanFileError(f"{target} after the change would not be a valid plan:\n{exc}\n"
                            "(fix: correct the file, then export the plan)") from exc
    if written.nodes != plan.nodes:
        raise PlanFileError(f"{target} lists other nodes than the plan being edited: not "
                            "rewritten (fix: export the plan, or edit the file by hand)")
    try:
        write_plan_file(target, text)
    except OSError as exc:
        raise PlanFileError(f"cannot write {target}: {exc.strerror or exc}") from exc
