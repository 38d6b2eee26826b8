"""The Textual face of omwizard: one App, one screen per stage of the documentation.

The App owns what outlives a screen: the plan (and the raw dict the inventory edits), the
session state, the secrets typed by the operator (memory only), the SSH pool and the event bus.
Screens never touch a host: they call the engine through the App's helpers, in workers, and
listen to the engine's events.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from omwizard.engine.events import EventBus
from omwizard.engine.state import StateError, StateStore, default_state_dir
from omwizard.engine.step import Redactor, Step
from omwizard.plan.model import (
    Node,
    Plan,
    PlanError,
    dump_plan,
    load_plan,
    plan_from_dict,
    plan_to_dict,
)
from omwizard.sections import SECTIONS, TITLES, steps_for

if TYPE_CHECKING:  # asyncssh (behind the engine and the pool) is imported on first use:
    from omwizard.engine.runner import Engine  # the first screen is up ~0.1 s sooner without it
    from omwizard.remote.ssh import RemotePool

DONE = {"ok", "changed", "skipped"}
DB_PASSWORD_VAR = "OMW_DB_PASSWORD"


def section_steps(section: str) -> tuple[Step, ...]:
    """The section's steps; () while a section module is not written yet (work in progress)."""
    try:
        return steps_for(section)
    except ImportError:
        return ()


def new_plan_dict() -> dict[str, Any]:
    """A starting point for a new cluster: the contract's defaults, two empty nodes."""
    return {
        "omwizard": 1,
        "cluster": {"name": "", "timezone": "UTC", "om_home": "/opt/om"},
        "ssh": {"user": "root", "port": 22, "known_hosts": "~/.ssh/known_hosts",
                "host_keys": "strict", "sudo": "auto", "connect_timeout": 10},
        "nodes": [],
        "database": {"type": "mysql", "host": "", "port": 3306, "name": "openmeetings",
                     "user": "om", "password": "${" + DB_PASSWORD_VAR + "}", "manage": True},
        "network": {"join": "multicast", "multicast_group": "224.0.0.0", "multicast_port": 54327,
                    "multicast_ttl": 32, "multicast_timeout": 2, "route": "224.0.0.0/4"},
        "storage": {"kind": "nfs", "path": "/opt/omdata",
                    "export_options": "rw,sync,no_subtree_check,no_root_squash",
                    "mount_options": "timeo=50,hard,intr"},
    }


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
        self.plan: Plan | None = None
        self.plan_data: dict[str, Any] | None = None
        self.state: StateStore | None = None
        self.db_password = ""  # typed by the operator; memory only
        self.sudo_password = ""  # typed by the operator; memory only
        self.bus = EventBus()
        self.redactor = Redactor()
        self._pool: RemotePool | None = None
        self.host_key_answers: list[tuple[str, str, bool]] = []  # (node, fingerprint, trusted)

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        from omwizard.tui.screens.welcome import WelcomeScreen

        self.push_screen(WelcomeScreen())
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
        self._keep_secret_refs(plan, data)
        if not self.adopt(plan, data):
            return False
        if self.state is not None and (self.state.results() or self.state.meta()):
            self.offer_resume()
        else:
            self.goto_inventory()
        return True

    def open_session(self, directory: Path) -> bool:
        """Resume a saved session: its plan, its results, its place."""
        store = StateStore(directory)
        text = store.load_plan_text()
        if not text:
            self.notify(f"{directory}: no plan saved in this session", severity="error")
            return False
        from omwizard.plan.model import parse_plan_text

        try:
            plan = parse_plan_text(text, env=self.secret_env(), source=directory / "plan.yaml")
        except PlanError as exc:
            self.notify(f"the saved plan is not valid:\n{exc}", severity="error", timeout=10)
            return False
        data = plan_to_dict(plan)
        self._keep_secret_refs(plan, data)
        if not self.adopt(plan, data, directory=directory):
            return False
        self.goto_resume_point()
        return True

    def offer_resume(self) -> None:
        from omwizard.tui.screens.modals import ConfirmScreen

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

    # -- plan, state, secrets -----------------------------------------------------------------

    def secret_env(self) -> dict[str, str]:
        env = dict(self.env)
        if self.db_password:
            var = DB_PASSWORD_VAR
            if self.plan_data:
                ref = str(self.plan_data.get("database", {}).get("password") or "")
                if ref.startswith("${") and ref.endswith("}"):
                    var = ref[2:-1]
            env[var] = self.db_password
        return env

    @staticmethod
    def _keep_secret_refs(plan: Plan, data: dict[str, Any]) -> None:
        if not plan.database.password.ref:
            data["database"]["password"] = "${" + DB_PASSWORD_VAR + "}"

    def adopt(self, plan: Plan, data: dict[str, Any], directory: Path | None = None) -> bool:
        """Make this the current plan; open (lock) its session state and save the plan there."""
        directory = directory or self.state_dir or default_state_dir(plan.cluster.name)
        if self.state is None or self.state.directory != directory:
            store = StateStore(directory)
            try:
                store.lock()
            except StateError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return False
            if self.state is not None:
                self.state.unlock()
            self.state = store
        nodes_changed = self.plan is None or self.plan.nodes != plan.nodes
        self.plan = plan
        self.plan_data = copy.deepcopy(data)
        self.redactor.add(plan.database.password.value)
        if nodes_changed:
            self.reset_pool()
        try:
            self.state.save_plan(dump_plan(plan))
        except (OSError, StateError) as exc:
            self.notify(f"cannot save the plan: {exc}", severity="error")
        return True

    def validate(self, data: dict[str, Any]) -> Plan:
        """plan_from_dict with the typed secrets in the environment (raises PlanError)."""
        return plan_from_dict(data, env=self.secret_env())

    # -- SSH and engine -----------------------------------------------------------------------

    @property
    def pool(self) -> RemotePool:
        if self._pool is None:
            from omwizard.remote.ssh import RemotePool

            self._pool = RemotePool(
                confirm_host_key=self.confirm_host_key, ask_password=self.ask_password
            )
        return self._pool

    def reset_pool(self) -> None:
        old, self._pool = self._pool, None
        if old is not None:
            self.run_worker(old.close(), group="pool-close")

    async def ask(self, screen: Screen[Any]) -> Any:
        """Push a modal and wait for its answer (usable from any task on the app's loop)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        self.push_screen(screen, done)
        return await future

    async def confirm_host_key(self, node: Node, host: str, port: int, fingerprint: str) -> bool:
        from omwizard.tui.screens.modals import HostKeyScreen

        if node.ssh.host_keys == "accept-new":
            self.notify(f"{node.name}: new host key pinned: {fingerprint}")
            self.host_key_answers.append((node.name, fingerprint, True))
            return True
        answer = bool(await self.ask(HostKeyScreen(node.name, host, port, fingerprint)))
        self.host_key_answers.append((node.name, fingerprint, answer))
        return answer

    async def ask_password(self, node: Node, prompt: str) -> str | None:
        from omwizard.tui.screens.modals import TextScreen

        if not self.sudo_password:
            value = await self.ask(TextScreen("sudo password", prompt + " (kept in memory only)",
                                              password=True))
            self.sudo_password = value or ""
        self.redactor.add(self.sudo_password)
        return self.sudo_password or None

    def engine(self, sections: Iterable[str] | None = None, *, dry_run: bool = False,
               only_steps: Iterable[str] | None = None) -> Engine:
        from omwizard.engine.runner import Engine

        assert self.plan is not None
        return Engine(self.plan, pool=self.pool, state=self.state, bus=self.bus,
                      sections=sections, dry_run=dry_run, redact=self.redactor,
                      steps=only_steps)

    def touch(self, **meta: Any) -> None:
        if self.state is not None:
            try:
                self.state.touch(**meta)
            except (OSError, StateError):
                pass

    # -- where to go --------------------------------------------------------------------------

    def section_progress(self, section: str) -> tuple[int, int]:
        """(done, total) step-node pairs of a section, from the saved results."""
        if self.plan is None:
            return 0, 0
        results = self.state.results() if self.state else {}
        steps = section_steps(section)
        engine = self.engine([section])
        ctx = engine.context()
        done = total = 0
        for step in steps:
            bound = ctx.bind(step)
            for node in self.plan.nodes:
                if step.applies(bound, node) is not None:
                    continue
                total += 1
                result = results.get(f"{section}/{step.name}/{node.name}")
                if result and result.get("status") in DONE:
                    done += 1
        return done, total

    def first_unfinished(self) -> tuple[str, str | None]:
        """The first section not finished, and the step to land on in it."""
        meta = self.state.meta() if self.state else {}
        if meta.get("section") in SECTIONS:  # where the operator was: same section, same step
            return meta["section"], meta.get("step")
        for section in SECTIONS:
            done, total = self.section_progress(section)
            if total == 0 or done < total:
                step = meta.get("step") if meta.get("section") == section else None
                return section, step
        return "verify", None

    def goto_resume_point(self) -> None:
        section, step = self.first_unfinished()
        self.goto_section(section, step)

    def goto_welcome(self) -> None:
        from omwizard.tui.screens.welcome import WelcomeScreen

        self.switch_screen(WelcomeScreen())

    def goto_inventory(self) -> None:
        from omwizard.tui.screens.inventory import InventoryScreen

        if self.plan_data is None:
            self.plan_data = new_plan_dict()
        self.touch(section="inventory", step=None)
        self.switch_screen(InventoryScreen())

    def goto_section(self, section: str, step: str | None = None) -> None:
        if self.plan is None:
            self.notify("complete the inventory first: the plan is not valid yet",
                        severity="warning")
            return
        if section == "verify":
            from omwizard.tui.screens.verify import VerifyScreen

            self.switch_screen(VerifyScreen(step=step))
            return
        if section == "network":
            from omwizard.tui.screens.network import NetworkScreen

            self.switch_screen(NetworkScreen(step=step))
            return
        from omwizard.tui.screens.section import SectionScreen

        self.switch_screen(SectionScreen(section, step=step))

    def goto_export(self) -> None:
        if self.plan is None:
            self.notify("no valid plan yet", severity="warning")
            return
        from omwizard.tui.screens.export import ExportScreen

        self.switch_screen(ExportScreen())

    # -- actions ------------------------------------------------------------------------------

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
        if self.state is not None:
            self.state.unlock()

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
        actions = getattr(screen, "PALETTE", ())
        for title, help_text, action in actions:
            yield SystemCommand(title, help_text,
                                lambda a=action, s=screen: s.run_action(a))


def progress_text(state: StateStore) -> str:
    from collections import Counter

    counts = Counter(str(r.get("status")) for r in state.results().values())
    if not counts:
        return "no results yet"
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def make_app(
    plan_path: str | None = None, state_dir: str | None = None, **kwargs: Any
) -> OmWizardApp:
    """The App, for run_app and for the tests (state_base=..., env=...)."""
    return OmWizardApp(plan_path, state_dir, **kwargs)


def run_app(plan_path: str | None, state_dir: str | None = None) -> int:
    app = make_app(plan_path, state_dir)
    result = app.run()
    if app.state is not None:
        app.state.unlock()
    if isinstance(result, int):
        return result
    return app.return_code or 0
