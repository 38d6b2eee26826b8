"""The Textual face of omwizard: one App, one screen per stage of the documentation.

The App owns what outlives a screen: the plan's session (omwizard.engine.session: plan, state,
redactor, event bus, SSH pool), the raw dict the inventory edits and the secrets typed by the
operator (memory only). It gives each screen what it reads when it makes it (attributes down);
screens never touch a host themselves but run the engine of the session they were given, in
workers, and ask for everything else with messages (omwizard.tui.messages) that the App
handles below (messages up).
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from omwizard.engine.catalog import SECTIONS, TITLES
from omwizard.engine.events import EventBus
from omwizard.engine.state import StateError, StateStore, default_state_dir
from omwizard.plan.model import (
    Node,
    Plan,
    PlanError,
    dump_plan,
    load_plan,
    parse_plan_text,
    plan_to_dict,
)
from omwizard.tui import messages, planning
from omwizard.tui.screens.modals import ConfirmScreen, HostKeyScreen, TextScreen
from omwizard.tui.screens.welcome import WelcomeScreen, describe_counts

if TYPE_CHECKING:  # imported on first use: the first screen is up ~30 ms sooner without them
    from omwizard.engine.session import Session
    from omwizard.tui.screens.section import SectionScreen

class OmWizardApp(App[int]):
    """omwizard's TUI."""

    CSS_PATH = "assets/omwizard.tcss"
    TITLE = "omwizard"
    SUB_TITLE = "OpenMeetings clustering"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # shown by the screens that have room for it (80 columns); always in the palette
        Binding("f2", "toggle_theme", "Theme", show=False),
        # every screen: its keys and the status symbols (section screens show it as "? Keys")
        Binding("question_mark", "help", "Keys", key_display="?", show=False),
        # who is in the cluster, what the plan being edited would touch (issue 19)
        Binding("f3", "membership", "Membership", show=False),
    ]

    def __init__(
        self,
        plan_path: str | None = None,
        state_dir: str | None = None,
        *,
        state_base: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.plan_path = plan_path
        self.state_dir = Path(state_dir).expanduser() if state_dir else None
        self.state_base = state_base
        self.env = dict(os.environ if env is None else env)
        self.plan_data: dict[str, Any] | None = None  # the inventory's working copy
        self.session: Session | None = None  # the current plan's; None before a valid plan
        self.db_password = ""  # typed by the operator; memory only
        self.sudo_password = ""  # typed by the operator; memory only
        self.bus = EventBus()  # one bus for every session: screens stay subscribed
        self.host_key_answers: list[tuple[str, str, bool]] = []  # (node, fingerprint, trusted)
        # set by the CLI: the rehearsal command as the operator would type it, and whether
        # this process can start it itself (root); welcome's Practise shows or starts it
        self.rehearse_command = ""
        self.can_rehearse = False
        self.rehearsing = False  # set by the rehearsal: this wizard runs on its cluster
        self.program = "omwizard"  # this program as the operator runs it (scripts/wizard, ...)
        self.rehearse_requested = False
        # set by run_app only: a section's first visit checks it by itself (read-only). Tests
        # drive the App on example plans whose addresses must never be contacted.
        self.auto_check = False
        # per cluster, the plan text saved before this TUI first saved over it: the base a
        # plan change (a node added or removed) is shown against on the membership screen
        self.membership_base: dict[str, str | None] = {}
        # the file the current plan was opened from: adding or removing a node rewrites it
        self.plan_file: Path | None = None

    @property
    def plan(self) -> Plan | None:
        return self.session.plan if self.session is not None else None

    @property
    def state(self) -> StateStore | None:
        return self.session.state if self.session is not None else None

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(self.welcome_screen())
        if self.plan_path:
            self.call_after_refresh(self.open_plan_file, self.plan_path)

    def open_plan_file(self, path: str) -> bool:
        """Load a plan file; offer to resume when its cluster has a session, else inventory."""
        try:
            plan = load_plan(path, env=self.secret_env())
        except PlanError as exc:
            self.notify(f"{path}: the plan is not valid:\n{exc}", severity="error", timeout=10)
            return False
        except OSError as exc:
            self.notify(f"{path}: {exc.strerror or exc}", severity="error")
            return False
        data = plan_to_dict(plan)
        planning.keep_secret_refs(plan, data)
        if not self.adopt(plan, data):
            return False
        self.plan_file = Path(path)
        if self.state is not None and (self.state.results() or self.state.meta()):
            self.offer_resume()
        else:
            self.goto_inventory()
        return True

    def open_session(self, directory: Path) -> bool:
        """Resume a saved session: its plan, its results, its place."""
        self.plan_file = None
        text = StateStore(directory).load_plan_text()
        if not text:
            self.notify(f"{directory}: no plan saved in this session", severity="error")
            return False
        try:
            plan = parse_plan_text(text, env=self.secret_env(), source=directory / "plan.yaml")
        except PlanError as exc:
            self.notify(f"the saved plan is not valid:\n{exc}", severity="error", timeout=10)
            return False
        data = plan_to_dict(plan)
        planning.keep_secret_refs(plan, data)
        if not self.adopt(plan, data, directory=directory):
            return False
        self.goto_resume_point()
        return True

    def offer_resume(self) -> None:
        assert self.state is not None
        meta = self.state.meta()
        where = meta.get("section") or "?"
        body = (
            f"Cluster {self.state.cluster} has a saved session\n"
            f"last activity: {meta.get('last_activity') or '?'}, section: {where}\n"
            f"{progress_text(self.state)}"
        )

        def done(yes: bool | None) -> None:
            if yes:
                self.goto_resume_point()
            else:
                self.goto_inventory()

        self.push_screen(ConfirmScreen("Resume the saved session?", body, "Resume", "Inventory"),
                         done)

    # -- plan, session, secrets ---------------------------------------------------------------

    def secret_env(self) -> dict[str, str]:
        return planning.secret_env(self.env, self.plan_data, self.db_password)

    def adopt(self, plan: Plan, data: dict[str, Any], directory: Path | None = None) -> bool:
        """Make this the current plan: its session (state opened and locked, the plan saved
        there), a new one when the plan's state folder changed."""
        from omwizard.engine.session import Session, open_state

        directory = directory or self.state_dir or default_state_dir(plan.cluster.name)
        session = self.session
        if session is None or session.state is None or session.state.directory != directory:
            try:
                state = open_state(plan, directory)
            except StateError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return False
            if session is not None:
                self.retire(session)
            session = self.session = Session(
                plan, state=state, confirm_host_key=self.confirm_host_key,
                ask_password=self.ask_password, bus=self.bus)
        else:
            session.set_plan(plan)
        self.plan_data = copy.deepcopy(data)
        try:
            if session.state is not None:  # always: the App's sessions are opened on a state
                self.membership_base.setdefault(plan.cluster.name,
                                                session.state.load_plan_text())
                session.state.save_plan(dump_plan(plan))
        except (OSError, StateError) as exc:
            self.notify(f"cannot save the plan: {exc}", severity="error")
        return True

    def retire(self, session: Session) -> None:
        """A session no longer current: its state unlocked now, its connections closed in the
        background."""
        if session.state is not None:
            session.state.unlock()
        self.run_worker(session.close(), group="session-close")

    # -- the operator's answers (the pool calls these, from the screens' workers) -------------

    async def confirm_host_key(self, node: Node, host: str, port: int, fingerprint: str) -> bool:
        if node.ssh.host_keys == "accept-new":
            self.notify(f"{node.name}: new host key pinned: {fingerprint}")
            self.host_key_answers.append((node.name, fingerprint, True))
            return True
        trusted = await self.push_screen_wait(HostKeyScreen(node.name, host, port, fingerprint))
        answer = bool(trusted)
        self.host_key_answers.append((node.name, fingerprint, answer))
        return answer

    async def ask_password(self, node: Node, prompt: str) -> str | None:
        if not self.sudo_password:
            value = await self.push_screen_wait(
                TextScreen("sudo password", prompt + " (kept in memory only)", password=True))
            self.sudo_password = value or ""
        return self.sudo_password or None

    def touch(self, **meta: Any) -> None:
        if self.state is not None:
            try:
                self.state.touch(**meta)
            except (OSError, StateError):
                pass

    # -- where to go --------------------------------------------------------------------------

    def first_unfinished(self) -> tuple[str, str | None]:
        """The first section not finished, and the step to land on in it."""
        from omwizard.engine import operator

        meta = self.state.meta() if self.state else {}
        if meta.get("section") in SECTIONS:  # where the operator was: same section, same step
            return meta["section"], meta.get("step")
        if self.session is None:
            return SECTIONS[0], None
        for section in SECTIONS:
            done, total = operator.section_progress(self.session.engine([section]), section)
            if total == 0 or done < total:
                step = meta.get("step") if meta.get("section") == section else None
                return section, step
        return "verify", None

    def goto_resume_point(self) -> None:
        section, step = self.first_unfinished()
        self.goto_section(section, step)

    def goto_welcome(self) -> None:
        self.switch_screen(self.welcome_screen())

    def goto_inventory(self) -> None:
        from omwizard.tui.screens.inventory import InventoryScreen

        if self.plan_data is None:
            self.plan_data = planning.new_plan_dict()
        self.touch(section="inventory", step=None)
        self.switch_screen(InventoryScreen(self.plan_data, env=self.env,
                                           db_password=self.db_password,
                                           sudo_password=self.sudo_password))

    def goto_section(self, section: str, step: str | None = None) -> None:
        if self.session is None:
            self.notify("complete the inventory first: the plan is not valid yet",
                        severity="warning")
            return
        self.switch_screen(section_screen(self.session, section, step,
                                          auto_check=self.auto_check))

    def goto_export(self) -> None:
        if self.session is None:
            self.notify("no valid plan yet", severity="warning")
            return
        from omwizard.tui.screens.export import ExportScreen

        self.switch_screen(ExportScreen(self.session, program=self.program))

    # -- what the screens ask for -------------------------------------------------------------

    def on_go_to_welcome(self, _: messages.GoToWelcome) -> None:
        self.goto_welcome()

    def on_go_to_inventory(self, _: messages.GoToInventory) -> None:
        self.goto_inventory()

    def on_go_to_section(self, message: messages.GoToSection) -> None:
        self.goto_section(message.section, message.step)

    def on_go_to_export(self, _: messages.GoToExport) -> None:
        self.goto_export()

    def on_start_rehearsal(self, _: messages.StartRehearsal) -> None:
        if self.can_rehearse:
            self.rehearse_requested = True
            self.run_worker(self._quit_now(), group="quit")

    def on_new_plan(self, _: messages.NewPlan) -> None:
        self.plan_file = None
        if self.session is not None:
            self.retire(self.session)
            self.session = None
        self.plan_data = planning.new_plan_dict()
        self.goto_inventory()

    def on_open_plan_file(self, message: messages.OpenPlanFile) -> None:
        self.open_plan_file(message.path)

    def on_open_session(self, message: messages.OpenSession) -> None:
        self.open_session(message.directory)

    def on_plan_edited(self, message: messages.PlanEdited) -> None:
        self.plan_data = message.data

    def on_adopt_plan(self, message: messages.AdoptPlan) -> None:
        if not self.adopt(message.plan, message.data) or self.session is None:
            return
        from omwizard.tui.screens.inventory import InventoryScreen

        if message.then == "continue":
            self.goto_section(SECTIONS[0])
        elif message.then == "test" and isinstance(self.screen, InventoryScreen):
            self.screen.test_connections(self.session)

    def on_secret_typed(self, message: messages.SecretTyped) -> None:
        if message.name == "db":
            self.db_password = message.value
        else:
            self.sudo_password = message.value

    def on_visiting(self, message: messages.Visiting) -> None:
        self.touch(section=message.section, step=message.step)

    def on_node_added(self, message: messages.NodeAdded) -> None:
        from omwizard.plan.edit import add_node_text

        if self.adopt(message.plan, message.data):
            self.save_plan_file(lambda text: add_node_text(text, message.node), message.plan)

    def on_node_removed(self, message: messages.NodeRemoved) -> None:
        from omwizard.plan.edit import remove_node_text

        if self.adopt(message.plan, message.data):
            self.save_plan_file(lambda text: remove_node_text(text, message.name), message.plan)

    def save_plan_file(self, edit: Callable[[str], str], plan: Plan) -> None:
        """The plan file the plan came from, edited the same way (comments kept)."""
        from omwizard.engine.plan_file import PlanFileError, update_plan_file

        if self.plan_file is None:
            return
        try:
            update_plan_file(self.plan_file, edit, plan, self.secret_env())
        except PlanFileError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.notify(f"{self.plan_file} updated (comments kept)")

    # -- actions ------------------------------------------------------------------------------

    def action_membership(self) -> None:
        from omwizard.tui.screens.membership import MembershipScreen, base_plan

        if self.plan is None or isinstance(self.screen, MembershipScreen):
            return
        before = base_plan(self.membership_base.get(self.plan.cluster.name))
        results = self.state.results() if self.state is not None else {}
        self.push_screen(MembershipScreen(
            before, self.plan, results, session=self.session, data=self.plan_data,
            env=self.secret_env(), program=self.program,
            plan_file=str(self.plan_file) if self.plan_file else None))

    def action_help(self) -> None:
        from omwizard.tui.screens.help import HelpScreen, screen_keys, screen_name

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(screen_name(self.screen), screen_keys(self.screen)))

    def welcome_screen(self) -> Screen[Any]:

        return WelcomeScreen(self.state_base, rehearse_command=self.rehearse_command,
                             can_rehearse=self.can_rehearse, rehearsing=self.rehearsing)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def action_quit(self) -> None:
        unsaved = getattr(self.screen, "unsaved_changes", None)
        if callable(unsaved) and unsaved():  # a half-filled plan is not saved anywhere yet
            def answered(quit_anyway: bool | None) -> None:
                if quit_anyway:
                    self.run_worker(self._quit_now(), group="quit")

            self.push_screen(ConfirmScreen(
                "Quit and lose the plan you are editing?",
                "The plan is saved in its session only once it is valid; these edits are "
                "not saved yet. Stay to finish it (the problems are listed under the form), "
                "or quit and lose them.",
                yes="Quit", no="Stay", default="no"), answered)
            return
        await self._quit_now()

    async def _quit_now(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        """Close the session: its SSH connections (bounded) and its state's lock."""
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Inventory", "Nodes, SSH, database, storage", self.goto_inventory)
        for section in SECTIONS:
            yield SystemCommand(
                f"Section: {TITLES[section]}", f"Go to the {section} section",
                lambda s=section: self.goto_section(s),
            )
        yield SystemCommand("Resume", "The first unfinished section", self.goto_resume_point)
        yield SystemCommand("Export", "Write the plan and the report", self.goto_export)
        yield SystemCommand("Light/Dark theme", "Toggle the theme", self.action_toggle_theme)
        yield SystemCommand("Keys and symbols", "Every key of this screen, every status symbol",
                            self.action_help)
        actions = getattr(screen, "PALETTE", ())
        for title, help_text, action in actions:
            yield SystemCommand(title, help_text,
                                lambda a=action, s=screen: s.run_action(a))


def section_screen(session: Session, section: str, step: str | None = None, *,
                   auto_check: bool = False) -> SectionScreen:
    """The screen of a section: network and verify have their own, the others share one.

    Imported here, on first use: the section screens bring the sections' step modules.
    """
    if section == "verify":
        from omwizard.tui.screens.verify import VerifyScreen

        return VerifyScreen(session, step=step, auto_check=auto_check)
    if section == "network":
        from omwizard.tui.screens.network import NetworkScreen

        return NetworkScreen(session, step=step, auto_check=auto_check)
    from omwizard.tui.screens.section import SectionScreen

    return SectionScreen(session, section, step=step, auto_check=auto_check)


def progress_text(state: StateStore) -> str:
    counts = Counter(str(r.get("status")) for r in state.results().values())
    return describe_counts(dict(counts))  # failures first, and the total they add up to


def make_app(
    plan_path: str | None = None, state_dir: str | None = None, **kwargs: Any
) -> OmWizardApp:
    """The App, for run_app and for the tests (state_base=..., env=...)."""
    return OmWizardApp(plan_path, state_dir, **kwargs)


def run_app(
    plan_path: str | None,
    state_dir: str | None = None,
    *,
    rehearse_command: str = "",
    rehearse: Callable[[], int] | None = None,
    rehearsing: bool = False,
    program: str = "omwizard",
) -> int:
    """The wizard; rehearse (given when this process may start one) runs after it closes if
    the operator chose to practise on a rehearsal cluster."""
    app = make_app(plan_path, state_dir)
    app.rehearse_command = rehearse_command
    app.program = program
    app.can_rehearse = rehearse is not None and not rehearsing
    app.rehearsing = rehearsing
    app.auto_check = True  # an operator's run: a section's first visit checks it (read-only)
    result = app.run()
    if app.state is not None:  # the app stopped without its quit action
        app.state.unlock()
    if app.rehearse_requested and rehearse is not None:
        return rehearse()
    if isinstance(result, int):
        return result
    return app.return_code or 0
