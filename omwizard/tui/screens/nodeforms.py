"""The membership screen's dialogs: add a node to the plan, confirm a node's removal.

Both answer Enter (add / remove) and Esc (cancel) like the dialogs in modals.py, and dismiss
with their answer: the node added (with the plan it makes, validated by the plan model
itself), or how the leaving node's own changes are treated.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from omwizard.plan.model import Plan, PlanError, plan_from_dict

LEAVING = {"keep": "keep them in place", "rollback": "roll them back from the journal"}


@dataclass(frozen=True)
class AddedNode:
    """The node as typed (what goes into the plan file) and the plan with it."""

    node: dict[str, Any]
    plan: Plan
    data: dict[str, Any] = field(repr=False)


def node_entry(name: str, address: str, host: str, roles: str) -> dict[str, Any]:
    """The plan's mapping for the typed fields (host defaults to the address)."""
    entry: dict[str, Any] = {"name": name.strip(), "host": host.strip() or address.strip()}
    if host.strip() and address.strip():
        entry["address"] = address.strip()
    entry["roles"] = [r for r in re.split(r"[\s,]+", roles.strip()) if r]
    return entry


def with_node(data: Mapping[str, Any], entry: dict[str, Any], env: Mapping[str, str]
              ) -> tuple[Plan, dict[str, Any]]:
    """The plan with one more node, validated by the plan model (raises PlanError)."""
    new = copy.deepcopy(dict(data))
    new["nodes"] = [*new.get("nodes", []), entry]
    return plan_from_dict(new, env=env), new


def problems_text(exc: PlanError, index: int) -> str:
    """The model's problems, the new node's key path said as the form's."""
    prefix = f"nodes[{index}]"
    lines = []
    for p in exc.problems:
        where = "new node" + p.path[len(prefix):] if p.path.startswith(prefix) else p.path
        lines.append(f"✗ {where}: {p.message}\n  fix: {p.fix}")
    return "\n".join(lines)


class AddNodeScreen(ModalScreen[AddedNode | None]):
    """Name, address, SSH host (optional) and roles of a new node; Enter adds, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, data: Mapping[str, Any], env: Mapping[str, str]) -> None:
        super().__init__(classes="modal")
        self.data = data
        self.env = env

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Add a node", id="dialog-title")
            for key, label, value, hint in (
                ("name", "Name", "", "om3"),
                ("address", "Address", "", "cluster-facing IPv4, like 10.1.1.3"),
                ("host", "SSH host", "", "optional: a DNS name to log in by"),
                ("roles", "Roles", "om", "om, storage, database"),
            ):
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(value, placeholder=hint, id=f"node-{key}", compact=True)
            yield Static("", id="add-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Add", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")
            yield Static("Enter: add  ·  Tab: next field  ·  Esc: cancel", id="dialog-keys",
                         markup=False)

    def on_mount(self) -> None:
        self.query_one("#node-name", Input).focus()

    def typed(self, key: str) -> str:
        return self.query_one(f"#node-{key}", Input).value

    def submit(self) -> None:
        entry = node_entry(self.typed("name"), self.typed("address"), self.typed("host"),
                           self.typed("roles"))
        try:
            plan, data = with_node(self.data, entry, self.env)
        except PlanError as exc:
            self.query_one("#add-error", Static).update(
                problems_text(exc, len(self.data.get("nodes", []))))
            return
        self.dismiss(AddedNode(entry, plan, data))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RemoveNodeScreen(ModalScreen[str | None]):
    """Confirm a node's removal and choose what happens to its own changes (keep, the CLI's
    default, or roll back); dismisses with "keep" or "rollback", None when cancelled."""

    BINDINGS = [
        Binding("enter", "confirm", "Remove"),
        Binding("escape", "cancel", "Cancel"),
        Binding("k", "choose('keep')", "Keep its changes"),
        Binding("b", "choose('rollback')", "Roll them back"),
        Binding("up,down", "other_choice", "Other choice", show=False),
    ]

    def __init__(self, name: str, body: str, leaving: str = "keep") -> None:
        super().__init__(classes="modal")
        self.node_name = name
        self.body = body
        self.leaving = leaving if leaving in LEAVING else "keep"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Remove {self.node_name} from the cluster?", id="dialog-title")
            yield Static(self.body, markup=False, id="dialog-text")
            yield Static("", id="leaving-choice", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"Remove {self.node_name}", id="yes", variant="error")
                yield Button("Cancel", id="no")
            yield Static("Enter: the focused button  ·  k: keep its changes  ·  b: roll them "
                         "back  ·  ↑↓: the other choice  ·  Tab: the other button  ·  Esc: "
                         "cancel", id="dialog-keys", markup=False)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()
        self.show_choice()

    def show_choice(self) -> None:
        lines = [f"{'(•)' if self.leaving == key else '( )'} {self.node_name}'s own changes: "
                 f"{text}" for key, text in LEAVING.items()]
        self.query_one("#leaving-choice", Static).update("\n".join(lines))

    def action_choose(self, leaving: str) -> None:
        self.leaving = leaving
        self.show_choice()

    def action_other_choice(self) -> None:
        self.action_choose("rollback" if self.leaving == "keep" else "keep")

    def action_confirm(self) -> None:
        self.dismiss(self.leaving)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.leaving if event.button.id == "yes" else None)
