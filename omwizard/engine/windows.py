"""Which of an apply's steps are checked together (issue 21).

A step without an apply (`Step.has_apply` False) is a pure proof: its check changes nothing,
so it holds whatever order it runs in, as long as no change happens meanwhile. An apply can
therefore check at once each window of a run of such proofs followed by at most one step
that changes things; that one closes its window, so its change comes after every check of
the window and can invalidate none of them (the next window's checks start after it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

S = TypeVar("S")


def apply_windows(steps: Sequence[S], changes: Callable[[S], bool]) -> list[list[S]]:
    """The steps in order, cut after each one that `changes` (has an apply): every window
    is proofs followed by at most one changing step, which is last; nothing is dropped or
    reordered (concatenated, the windows are `steps`)."""
    windows: list[list[S]] = []
    current: list[S] = []
    for step in steps:
        current.append(step)
        if changes(step):
            windows.append(current)
            current = []
    if current:
        windows.append(current)
    return windows
