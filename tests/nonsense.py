"""Every finding's words replaced by nonsense: proof that no code reads a sentence meant for people.

`install()` wraps Finding's constructor, so every finding any step makes (ok, needs-change,
failed, skipped, the engine's own from a RemoteError) gets a nonsense detail, remedy and
evidence the moment it exists: the apply that receives it, the engine, the state, the export
and the faces only ever see the nonsense, next to the typed data. What still works the same
reads typed data only.

`python -m tests.nonsense ARGS` is `python -m omwizard ARGS` with the words replaced (for
tests that drive the CLI as a subprocess, crash points included).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any

from omwizard.engine.step import Finding

MARK = "qux"  # every nonsense text starts with it
WORDS = ("blorp", "frobnicated", "as", "in", "logged", "sudo", "password", "OpenMeetings", "at",
         "without", "9.9.9", "zoneinfo", "with", "ok")
_count = itertools.count()


def nonsense(salt: str = "") -> str:
    """A different jumble of words every time (some of them the words real details use)."""
    n = next(_count)
    picked = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(5 + n % 4)]
    return f"{MARK}{salt} " + " ".join(picked)


def scramble(finding: Finding) -> None:
    finding.detail = nonsense()
    finding.remedy = nonsense("-remedy") if finding.remedy else ""
    finding.evidence = [nonsense("-evidence") for _ in finding.evidence]


_original: Callable[..., None] | None = None


def install() -> None:
    """From now on every Finding is born with nonsense words (idempotent)."""
    global _original
    if _original is not None:
        return
    _original = Finding.__init__

    def init(self: Finding, *args: Any, **kwargs: Any) -> None:
        assert _original is not None
        _original(self, *args, **kwargs)
        scramble(self)

    Finding.__init__ = init  # type: ignore[method-assign]


def uninstall() -> None:
    global _original
    if _original is not None:
        Finding.__init__ = _original  # type: ignore[method-assign]
        _original = None


if __name__ == "__main__":
    install()
    from omwizard.cli.main import main

    raise SystemExit(main(sys.argv[1:]))
