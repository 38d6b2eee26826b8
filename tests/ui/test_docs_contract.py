"""The operator-facing docs say what the CLI does: a dry run that would change something exits 1
(tests/unit/cli/test_exit_codes.py proves the behaviour; this, that the README says it)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def test_readme_says_a_dry_run_with_changes_exits_1() -> None:
    text = " ".join(README.read_text().split())
    exit_status = text[text.index("Exit status:"):]
    exit_status = exit_status[: exit_status.index("3 interrupted")]
    one = re.search(r"\b1 (.*?)(?:, 2 |$)", exit_status)
    assert one, exit_status
    assert "apply --dry-run" in one.group(1) and "would change" in one.group(1), one.group(1)
