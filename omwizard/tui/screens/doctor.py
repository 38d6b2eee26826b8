"""Troubleshoot an existing cluster: discover its plan from the hosts, then run the doctor.

The operator names the hosts (and how SSH reaches them); a worker runs `discover` and the
doctor on the discovered plan (engine.discover, engine.doctor: the same code as the CLI) and
the screen shows the node-by-node matrix and every finding (node, what, why, fix, whether
`apply` can fix it). The discovered plan can be saved and then opened like any plan, so
`check` and `apply` run on it. Host keys and a sudo password are asked in dialogs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Static

from omwizard.engine.step import Result
from omwizard.facts.doctor import Diagnosis
from omwizard.plan.model import Node
from omwizard.tui.messages import OpenPlanFile
from omwizard.tui.screens.modals import HostKeyScreen, TextScreen
from omwizard.tui.screens.widgets import WizardHeader

INTRO = (
    "Inherited a cluster someone else built? Name its hosts: omwizard connects (known host "
    "keys only, unless you allow new ones), finds OpenMeetings on each, writes the plan the "
    "cluster already is (the DB password stays ${OMW_DB_PASSWORD}) and runs the doctor: the "
    "failures the documentation never mentions, with the evidence and the fix. Nothing is "
    "changed."
)


def finding_rows(results: list[Result]) -> list[tuple[str, str, str, str, str]]:
    """(node, check, what, fix, apply?) for every cause the doctor found (typed data)."""
    rows = []
    for result in results:
        if not isinstance(result.data, Diagnosis) or not result.data.causes:
            continue
        for cause in result.data.causes:
            how = f"apply --section {cause.apply_section}" if cause.apply_section else "by hand"
            rows.append((result.node, f"{result.step}: {cause.code}", result.detail,
                         result.remedy, how))
    return rows


class DoctorScreen(Screen[None]):
    """Discover + doctor; see the module doc."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+r", "run", "Discover and diagnose"),
        Binding("ctrl+s", "save", "Save the plan"),
    ]

    def __init__(self, hosts: str = "") -> None:
        super().__init__()
        self.hosts = hosts
        self.plan_text: str | None = None
        self.results: list[Result] = []
        self.sudo_password: str | None = None

    def compose(self) -> ComposeResult:
        yield WizardHeader()
        with VerticalScroll(id="doctor"):
            yield Label("Troubleshoot an existing cluster", classes="heading")
            yield Static(INTRO, id="doctor-intro")
            yield Label("Hosts (names or IPv4 addresses, space-separated)")
            yield Input(self.hosts, placeholder="10.1.1.1 10.1.1.2", id="d-hosts")
            with Horizontal():
                yield Input("root", placeholder="SSH user", id="d-user")
                yield Input("", placeholder="SSH key (optional)", id="d-identity")
                yield Input("~/.ssh/known_hosts", placeholder="known_hosts", id="d-known")
            yield Checkbox("Trust new host keys on first use (accept-new)", id="d-accept")
            yield Button("Discover and diagnose  [ctrl+r]", id="d-run", variant="primary")
            yield Static("", id="d-status")
            yield Label("The nodes side by side", classes="heading")
            yield DataTable(id="d-matrix", zebra_stripes=True)
            yield Label("Findings", classes="heading")
            yield DataTable(id="d-findings", zebra_stripes=True)
            with Vertical(id="d-save-box"):
                yield Input("", placeholder="save the discovered plan to (path)", id="d-save")
                yield Button("Save the plan and open it  [ctrl+s]", id="d-save-button")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#d-hosts", Input).focus()
        self.query_one("#d-findings", DataTable).add_columns("node", "check", "what", "fix",
                                                               "apply?")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "d-run":
            self.action_run()
        elif event.button.id == "d-save-button":
            self.action_save()

    def action_back(self) -> None:
        self.dismiss()

    def status(self, text: str) -> None:
        self.query_one("#d-status", Static).update(text)

    def ssh_options(self) -> dict[str, Any]:
        ssh: dict[str, Any] = {"user": self.query_one("#d-user", Input).value.strip() or "root"}
        identity = self.query_one("#d-identity", Input).value.strip()
        if identity:
            ssh["identity"] = identity
        ssh["known_hosts"] = self.query_one("#d-known", Input).value.strip() or \
            "~/.ssh/known_hosts"
        accept = self.query_one("#d-accept", Checkbox).value
        ssh["host_keys"] = "accept-new" if accept else "strict"
        return ssh

    def action_run(self) -> None:
        hosts = self.query_one("#d-hosts", Input).value.split()
        if len(hosts) < 2:
            self.status("name at least two hosts: a cluster has two nodes or more")
            return
        self.status(f"discovering {', '.join(hosts)} ...")
        self.run_discover(hosts, self.ssh_options())

    async def confirm_host_key(self, node: Node, host: str, port: int, fingerprint: str
                               ) -> bool:
        if node.ssh.host_keys == "accept-new":
            return True
        screen: Any = HostKeyScreen(node.host, host, port, fingerprint)
        return bool(await self.app.push_screen_wait(screen))

    async def ask_password(self, node: Node, prompt: str) -> str | None:
        if self.sudo_password is None:
            value = await self.app.push_screen_wait(
                TextScreen("sudo password", prompt + " (kept in memory only)", password=True))
            self.sudo_password = value or ""
        return self.sudo_password or None

    @work(exclusive=True, group="doctor")
    async def run_discover(self, hosts: list[str], ssh: dict[str, Any]) -> None:
        from omwizard.engine.discover import DiscoverError, discover
        from omwizard.engine.doctor import doctor
        from omwizard.engine.session import Session

        hooks: dict[str, Any] = {"confirm_host_key": self.confirm_host_key,
                                 "ask_password": self.ask_password}
        try:
            found = await discover(hosts, ssh, **hooks)
        except DiscoverError as exc:
            self.status(f"discover failed: {exc}")
            return
        self.plan_text = found.text
        disagree = len(found.report["disagreements"])
        self.status(f"cluster {found.plan.cluster.name}: {len(found.plan.nodes)} nodes, "
                    f"{disagree} disagreement(s); running the doctor ...")
        session = Session(found.plan, **hooks)
        async with session:
            results = await doctor(session)
        self.show(results)
        causes = sum(len(r.data.causes) for r in results if isinstance(r.data, Diagnosis))
        self.status(f"cluster {found.plan.cluster.name}: {causes} finding(s), {disagree} "
                    "disagreement(s) between the nodes. Save the plan to check or apply it.")

    def show(self, results: list[Result]) -> None:
        """Fill the matrix and the findings from the doctor's results."""
        from omwizard.engine.doctor import matrix, matrix_table

        self.results = results
        table = self.query_one("#d-matrix", DataTable)
        table.clear(columns=True)
        lines = matrix_table(matrix(results))
        table.add_columns(*lines[0])
        for line in lines[1:]:
            table.add_row(*line)
        findings = self.query_one("#d-findings", DataTable)
        findings.clear()
        for row in finding_rows(results):
            findings.add_row(*row)

    def action_save(self) -> None:
        if not self.plan_text:
            self.status("nothing discovered yet: name the hosts and run it first")
            return
        raw = self.query_one("#d-save", Input).value.strip()
        if not raw:
            self.status("type where to save the plan (a .yaml path)")
            return
        from omwizard.engine.discover import DiscoverError, write_text

        try:
            path = write_text(Path(raw).expanduser(), self.plan_text)
        except (DiscoverError, OSError) as exc:
            self.status(f"cannot save: {exc}")
            return
        self.post_message(OpenPlanFile(str(path)))
