"""Progress events the engine emits; the TUI and the CLI each turn them into their own output.

Small frozen dataclasses, so a listener can keep them, queue them across threads or batch them
without worrying about later mutation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omwizard.engine.step import Result


@dataclass(frozen=True)
class Event:
    """Base of every engine event."""


@dataclass(frozen=True)
class StepStarted(Event):
    section: str
    step: str
    node: str
    phase: str  # check | apply | rollback


@dataclass(frozen=True)
class OutputLine(Event):
    node: str
    line: str
    step: str = ""


@dataclass(frozen=True)
class CommandRun(Event):
    node: str
    command: str
    step: str = ""


@dataclass(frozen=True)
class ChangeMade(Event):
    section: str
    step: str
    node: str
    change: dict[str, Any]


@dataclass(frozen=True)
class StepFinished(Event):
    """One step on one node is done; the typed result (faces call .as_json() for JSON)."""

    result: Result


Listener = Callable[[Event], None]


class EventBus:
    """Fans events out to any number of listeners; a failing listener never stops the engine."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken view must not break a cluster change
                pass
