"""What screens ask of the App: Textual messages that bubble up from a screen to the App.

Screens are given what they read (the session, the plan's dict, the typed secrets) when they are
made; anything that changes the program's state (where the operator is, which plan is current,
the secrets kept in memory) travels up as one of these, and the App acts on it in its on_*
handlers. No screen imports the App.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from textual.message import Message

from omwizard.plan.model import Plan

# -- where to go ----------------------------------------------------------------------------------


class GoToWelcome(Message):
    """Back to the welcome screen."""


class GoToInventory(Message):
    """To the inventory (a new plan's starting point when there is none)."""


@dataclass
class GoToSection(Message):
    """To a section's screen, on a step (None: the first)."""

    section: str
    step: str | None = None


class GoToExport(Message):
    """To the export screen."""


class StartRehearsal(Message):
    """Quit the wizard and start `rehearse` in its place (the App knows whether it can)."""


# -- which plan -----------------------------------------------------------------------------------


class NewPlan(Message):
    """Drop the current plan and start the inventory from the contract's defaults."""


@dataclass
class OpenPlanFile(Message):
    """Load a plan file (and offer to resume its cluster's saved session)."""

    path: str


@dataclass
class OpenSession(Message):
    """Resume a saved session: its plan, its results, its place."""

    directory: Path


@dataclass
class PlanEdited(Message):
    """The inventory's working copy of the plan changed (valid or not)."""

    data: dict[str, Any]


@dataclass
class AdoptPlan(Message):
    """A valid plan: make it the current one and save it in its session (never secrets).

    then: "continue" goes on to the first section, "test" runs the inventory's connection test
    on the adopted plan; None stays where the operator is.
    """

    plan: Plan
    data: dict[str, Any] = field(repr=False)
    then: Literal["continue", "test"] | None = None


@dataclass
class SecretTyped(Message):
    """A secret typed in the inventory (kept in the App's memory only, never saved)."""

    name: Literal["db", "sudo"]
    value: str = field(repr=False)


# -- the session ----------------------------------------------------------------------------------


@dataclass
class Visiting(Message):
    """The operator is on this section and step (saved, so a restart resumes there)."""

    section: str
    step: str | None = None


# -- the cluster's membership (issue 19) ------------------------------------------------------


@dataclass
class NodeAdded(Message):
    """A node added to the plan (validated): the App adopts the plan and adds the node to the
    plan file, comments kept."""

    plan: Plan
    data: dict[str, Any] = field(repr=False)
    node: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeRemoved(Message):
    """A node taken out of the cluster (its peers dropped it): the App adopts the plan without
    it and takes it out of the plan file, comments kept."""

    plan: Plan
    data: dict[str, Any] = field(repr=False)
    name: str = ""
