"""Inventory: the nodes and their roles, SSH defaults, database and storage; validated as typed.

Every edit rebuilds the plan dict and runs the plan loader's own rules (plan_from_dict); each
problem is shown next to the field its path names. A valid plan is saved to the session
(without secrets). "Test connections" runs preflight's ssh and om-installed checks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    Select,
    Static,
)

from omwizard.engine.catalog import steps_for
from omwizard.engine.session import Session
from omwizard.facts.preflight import SshAccess
from omwizard.plan.model import Plan, PlanError, PlanProblem
from omwizard.tui import planning
from omwizard.tui.messages import AdoptPlan, GoToWelcome, PlanEdited, SecretTyped
from omwizard.tui.screens.widgets import WizardHeader

ROLES = ("om", "storage", "database")
# the connections table's sudo column, from preflight.ssh's typed SshAccess.sudo
SUDO_SHOWN = {"password": "✓ password", "nopasswd": "✓ no password", "none": "✓ root"}


@dataclass(frozen=True)
class Field:
    id: str  # widget id suffix, also the problem path with "." -> "-"
    path: tuple[str, ...]
    label: str
    kind: str = "str"  # str | int | opt | select | bool
    choices: tuple[str, ...] = ()


PLAN_FIELDS = (
    Field("cluster-name", ("cluster", "name"), "Cluster name"),
    Field("cluster-timezone", ("cluster", "timezone"), "Time zone"),
    Field("cluster-om_home", ("cluster", "om_home"), "OM home"),
    Field("ssh-user", ("ssh", "user"), "SSH user"),
    Field("ssh-port", ("ssh", "port"), "SSH port", "int"),
    Field("ssh-identity", ("ssh", "identity"), "Identity file", "opt"),
    Field("ssh-known_hosts", ("ssh", "known_hosts"), "known_hosts"),
    Field("ssh-host_keys", ("ssh", "host_keys"), "Host keys", "select", ("strict", "accept-new")),
    Field("ssh-sudo", ("ssh", "sudo"), "sudo", "select", ("auto", "always", "never")),
    Field("database-type", ("database", "type"), "DB type", "select",
          ("mysql", "mariadb", "postgresql", "mssql", "oracle", "db2")),
    Field("database-host", ("database", "host"), "DB host"),
    Field("database-port", ("database", "port"), "DB port", "int"),
    Field("database-name", ("database", "name"), "DB name"),
    Field("database-user", ("database", "user"), "DB user"),
    Field("database-manage", ("database", "manage"), "Create the DB user", "bool"),
    Field("network-join", ("network", "join"), "Join", "select", ("multicast", "tcp-ip")),
    Field("storage-kind", ("storage", "kind"), "Storage", "select", ("nfs", "existing")),
    Field("storage-path", ("storage", "path"), "Data dir"),
    Field("storage-export_options", ("storage", "export_options"), "Export options"),
    Field("storage-mount_options", ("storage", "mount_options"), "Mount options"),
)
NODE_FIELDS = (
    Field("node-name", ("name",), "Name"),
    Field("node-host", ("host",), "Host (SSH)"),
    Field("node-address", ("address",), "Address", "opt"),
    Field("node-interface", ("interface",), "Interface", "opt"),
    Field("node-server_url", ("server_url",), "Server URL", "opt"),
)
GROUPS = {
    "Cluster": ("cluster-",),
    "SSH defaults": ("ssh-",),
    "Database": ("database-",),
    "Network and storage": ("network-", "storage-"),
}


def problem_widget(path: str, current: int | None) -> str | None:
    """The field id a problem path belongs to ("nodes[1].address" -> "node-address")."""
    if path.startswith("nodes["):
        index, _, rest = path[6:].partition("]")
        key = rest.lstrip(".").split(".")[0].split("[")[0]
        if current is not None and index == str(current) and key:
            return f"node-{key}"
        return None
    parts = path.split(".")
    if len(parts) >= 2:
        return f"{parts[0]}-{parts[1].split('[')[0]}"
    return None


def node_index(path: str) -> int | None:
    if path.startswith("nodes["):
        index = path[6:].partition("]")[0]
        return int(index) if index.isdigit() else None
    return None


class InventoryScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+n", "add_node", "Add node"),
        Binding("ctrl+r", "remove_node", "Remove"),
        Binding("ctrl+t", "test", "Test SSH", tooltip="Test connections"),
        Binding("ctrl+g", "continue", "Continue"),
        Binding("escape", "welcome", "Welcome"),
    ]
    PALETTE = [
        ("Add node", "A new node in the inventory", "add_node"),
        ("Remove node", "Remove the selected node", "remove_node"),
        ("Test connections", "SSH, sudo and OpenMeetings on every node", "test"),
        ("Continue", "To the first section", "continue"),
    ]

    @dataclass
    class Validated(Message):
        """The plan was validated: no problems means it is valid (and saved)."""

        problems: list[PlanProblem]

    def __init__(self, data: dict[str, Any], *, env: dict[str, str], db_password: str = "",
                 sudo_password: str = "") -> None:
        super().__init__()
        self.data: dict[str, Any] = copy.deepcopy(data)  # the plan as edited here
        self.env = env  # where the plan's ${VAR} references resolve
        self.db_password = db_password  # typed secrets: memory only, also kept by the App
        self.sudo_password = sudo_password
        self.current: int | None = None
        self.problems: list[PlanProblem] = []
        self._save_timer: Timer | None = None
        self.connection_rows: dict[str, dict[str, str]] = {}
        self._saved: dict[str, Any] = copy.deepcopy(data)  # as last adopted (or as given)

    # -- layout -------------------------------------------------------------------------------

    def _field(self, f: Field, value: Any) -> ComposeResult:
        with Horizontal(classes="field", id=f"row-{f.id}"):
            yield Label(f.label, classes="field-label")
            if f.kind == "select":
                yield Select([(c, c) for c in f.choices], value=value if value in f.choices
                             else Select.NULL, allow_blank=False, id=f"f-{f.id}", compact=True)
            elif f.kind == "bool":
                yield Checkbox(value=bool(value), id=f"f-{f.id}", compact=True)
            else:
                yield Input("" if value is None else str(value), id=f"f-{f.id}", compact=True)
        yield Static("", classes="problem", id=f"p-{f.id}")

    def compose(self) -> ComposeResult:
        self.data.setdefault("nodes", [])
        yield WizardHeader()
        with VerticalScroll(id="inventory"):
            yield Label("Nodes", classes="heading")
            yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="node-buttons"):
                yield Button("Add node ^n", id="add-node", compact=True)
                yield Button("Remove ^r", id="remove-node", compact=True)
                yield Button("Test connections ^t", id="test", compact=True, variant="primary")
            with Vertical(id="node-form"):
                for f in NODE_FIELDS:
                    yield from self._field(f, None)
                with Horizontal(classes="field"):
                    yield Label("Roles", classes="field-label")
                    for role in ROLES:
                        yield Checkbox(role, id=f"role-{role}", compact=True)
                yield Static("", classes="problem", id="p-node-roles")
            yield Label("Connections", classes="heading")
            yield DataTable(id="connections", zebra_stripes=True)
            for title, prefixes in GROUPS.items():
                yield Label(title, classes="heading")
                for f in PLAN_FIELDS:
                    if f.id.startswith(prefixes):
                        yield from self._field(f, _get(self.data, f.path))
                if title == "SSH defaults":
                    with Horizontal(classes="field"):
                        yield Label("sudo password", classes="field-label")
                        yield Input(self.sudo_password, password=True,
                                    id="sudo-password", compact=True,
                                    placeholder="asked when needed; memory only")
                if title == "Database":
                    with Horizontal(classes="field"):
                        yield Label("DB password", classes="field-label")
                        yield Input(self.db_password, password=True,
                                    id="db-password", compact=True,
                                    placeholder="memory only (or $OMW_DB_PASSWORD)")
                    yield Static("", classes="problem", id="p-database-password")
            yield Label("Problems", classes="heading")
            yield Static("", id="problems")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        nodes = self.query_one("#nodes", DataTable)
        nodes.add_columns("name", "host", "address", "roles", "!")
        conn = self.query_one("#connections", DataTable)
        conn.add_columns("node", "SSH", "sudo", "OpenMeetings")
        self.refresh_nodes()
        if self.data["nodes"]:
            self.select_node(0)
        else:
            self.query_one("#node-form").display = False
        self.validate(save=False)

    # -- nodes --------------------------------------------------------------------------------

    def refresh_nodes(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.clear()
        bad = {node_index(p.path) for p in self.problems}
        for i, n in enumerate(self.data["nodes"]):
            table.add_row(n.get("name", ""), n.get("host", ""), n.get("address", ""),
                          ",".join(n.get("roles", [])), "✗" if i in bad else "", key=str(i))
        if self.current is not None and self.current < table.row_count:
            table.move_cursor(row=self.current, animate=False)
        self.refresh_connections()

    def select_node(self, index: int | None) -> None:
        self.current = index
        form = self.query_one("#node-form")
        form.display = index is not None
        if index is None:
            return
        node = self.data["nodes"][index]
        with self.prevent(Input.Changed, Checkbox.Changed):
            for f in NODE_FIELDS:
                self.query_one(f"#f-{f.id}", Input).value = str(node.get(f.path[0]) or "")
            for role in ROLES:
                self.query_one(f"#role-{role}", Checkbox).value = role in node.get("roles", [])
        self.show_problems()

    @on(DataTable.RowHighlighted, "#nodes")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and int(event.row_key.value) != self.current:
            self.select_node(int(event.row_key.value))

    def action_add_node(self) -> None:
        nodes = self.data["nodes"]
        n = len(nodes) + 1
        while any(x.get("name") == f"om{n}" for x in nodes):
            n += 1
        nodes.append({"name": f"om{n}", "host": "", "roles": ["om"]})
        self.current = len(nodes) - 1
        self.select_node(self.current)
        self.validate()
        self.query_one("#f-node-host", Input).focus()

    def action_remove_node(self) -> None:
        if self.current is None:
            return
        del self.data["nodes"][self.current]
        left = len(self.data["nodes"])
        self.select_node(min(self.current, left - 1) if left else None)
        self.validate()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"add-node": self.action_add_node, "remove-node": self.action_remove_node,
                   "test": self.action_test}
        if event.button.id in actions:
            actions[event.button.id]()

    # -- edits --------------------------------------------------------------------------------

    @on(Input.Changed)
    def _input(self, event: Input.Changed) -> None:
        wid = event.input.id or ""
        if wid == "sudo-password":
            self.sudo_password = event.value
            self.post_message(SecretTyped("sudo", event.value))
            return
        if wid == "db-password":
            self.db_password = event.value
            self.post_message(SecretTyped("db", event.value))
            self.validate()
            return
        self._store(wid[2:], event.value)

    @on(Select.Changed)
    def _select(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and event.select.id:
            self._store(event.select.id[2:], event.value)

    @on(Checkbox.Changed)
    def _check(self, event: Checkbox.Changed) -> None:
        wid = event.checkbox.id or ""
        if wid.startswith("role-") and self.current is not None:
            node = self.data["nodes"][self.current]
            node["roles"] = [r for r in ROLES if self.query_one(f"#role-{r}", Checkbox).value]
            self.validate()
        elif wid.startswith("f-"):
            self._store(wid[2:], event.value)

    def _store(self, fid: str, value: Any) -> None:
        spec = {f.id: f for f in PLAN_FIELDS + NODE_FIELDS}.get(fid)
        if spec is None:
            return
        if spec.kind == "int" and isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if fid.startswith("node-"):
            if self.current is None:
                return
            target = self.data["nodes"][self.current]
        else:
            target = self.data.setdefault(spec.path[0], {})
        key = spec.path[-1]
        if spec.kind == "opt" and value == "":
            target.pop(key, None)
        else:
            target[key] = value
        self.validate()

    # -- validation ---------------------------------------------------------------------------

    def parse(self) -> Plan:
        """The edited plan, validated with the typed secrets (raises PlanError)."""
        return planning.validate(self.data, self.env, self.db_password)

    def validate(self, save: bool = True) -> None:
        self.post_message(PlanEdited(copy.deepcopy(self.data)))
        plan: Plan | None = None
        try:
            parsed = self.parse()
        except PlanError as exc:
            self.problems = exc.problems
        else:
            plan = parsed
            self.problems = []
            if parsed.database.password.value is None:
                self.problems = [PlanProblem(
                    "database.password", "no value yet",
                    "type it here (kept in memory only) or export OMW_DB_PASSWORD")]
        self.show_problems()
        self.refresh_nodes()
        if plan is not None and save:
            if self._save_timer is not None:
                self._save_timer.stop()
            valid = plan
            self._save_timer = self.set_timer(1.0, lambda: self.adopt(valid))
        self.post_message(self.Validated(list(self.problems)))

    def adopt(self, plan: Plan, then: Literal["continue", "test"] | None = None) -> None:
        """Ask for the valid plan to become the current one, saved in its session (never
        secrets); then go on or test the connections."""
        if self._save_timer is not None:
            self._save_timer.stop()
        self._saved = copy.deepcopy(self.data)
        self.post_message(AdoptPlan(plan, copy.deepcopy(self.data), then))

    def unsaved_changes(self) -> bool:
        """Edits not saved in a session yet (a plan is saved once it is valid): quitting
        now would lose them, so the App asks first."""
        return self.data != self._saved

    def show_problems(self) -> None:
        texts: dict[str, list[str]] = {}
        general: list[str] = []
        for p in self.problems:
            wid = problem_widget(p.path, self.current)
            line = f"{p.message} → {p.fix}"
            if wid is not None and self.query(f"#p-{wid}"):
                texts.setdefault(wid, []).append(line)
            general.append(f"{p.path}: {line}")
        for static in self.query(".problem").results(Static):
            wid = (static.id or "")[2:]
            static.update("\n".join(texts.get(wid, [])))
            static.display = wid in texts
        summary = self.query_one("#problems", Static)
        if general:
            summary.update(Text("\n".join("✗ " + g for g in general), style="bold"))
        else:
            summary.update("✓ the plan is valid and saved in the session")
        summary.set_class(bool(general), "has-problems")

    # -- test connections ---------------------------------------------------------------------

    def action_test(self) -> None:
        if self.problems and not self._valid_without_password():
            self.notify("fix the plan's problems first", severity="warning")
            return
        try:
            plan = self.parse()
        except PlanError:
            return
        self.adopt(plan, then="test")  # the App adopts it, then runs test_connections

    def _valid_without_password(self) -> bool:
        return all(p.path == "database.password" for p in self.problems)

    def refresh_connections(self) -> None:
        table = self.query_one("#connections", DataTable)
        table.clear()
        for n in self.data["nodes"]:
            row = self.connection_rows.get(n.get("name", ""), {})
            table.add_row(n.get("name", ""), row.get("ssh", "·"), row.get("sudo", "·"),
                          row.get("om", "·"))

    @work(exclusive=True, group="test-connections")
    async def test_connections(self, session: Session) -> None:
        """preflight's ssh and om-installed checks on the adopted plan's nodes."""
        plan = session.plan
        session.pool.forget_failures()
        engine = session.engine(["preflight"])
        steps = {s.name: s for s in steps_for("preflight")}
        self.connection_rows = {n.name: {"ssh": "…", "sudo": "…", "om": "…"} for n in plan.nodes}
        self.refresh_connections()
        self.notify("testing connections…")
        for r in await engine.check_step(steps["ssh"]):
            row = self.connection_rows.setdefault(r.node, {})
            if r.status == "ok" and isinstance(r.data, SshAccess):
                row["ssh"] = "✓ " + r.data.user
                row["sudo"] = SUDO_SHOWN[r.data.sudo]
            else:
                row["ssh"] = "✗ " + r.detail
                row["sudo"] = "?"
        for r in await engine.check_step(steps["om-installed"]):
            row = self.connection_rows.setdefault(r.node, {})
            mark = {"ok": "✓ ", "skipped": "- ", "failed": "✗ "}.get(r.status, "! ")
            row["om"] = mark + r.detail
        self.refresh_connections()
        bad = [n for n, row in self.connection_rows.items() if row.get("ssh", "").startswith("✗")]
        self.notify("connections: " + ("all nodes reachable" if not bad else
                                       "failed on " + ", ".join(bad)),
                    severity="information" if not bad else "error")

    # -- navigation ---------------------------------------------------------------------------

    def action_continue(self) -> None:
        if self.problems and not self._valid_without_password():
            self.notify("the plan has problems; fix them first", severity="warning")
            return
        try:
            plan = self.parse()
        except PlanError:
            return
        self.adopt(plan, then="continue")  # the App adopts it, then opens the first section

    def action_welcome(self) -> None:
        self.post_message(GoToWelcome())


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur
