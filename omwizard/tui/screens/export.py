"""Export: the plan plus a report of what was checked, changed and verified, as YAML."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from omwizard.engine.export import MANUAL_CHECKS, ExportError, export_target, write_export
from omwizard.engine.session import Session
from omwizard.engine.state import StateStore
from omwizard.tui.messages import GoToSection
from omwizard.tui.screens.modals import ConfirmScreen
from omwizard.tui.screens.welcome import describe_counts
from omwizard.tui.screens.widgets import WizardHeader


def home_path(path: Path) -> str:
    """A path as the operator reads it: under the home folder as ~/... (the Input expands it)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def report_summary(state: StateStore | None) -> str:
    """What the report will hold: the results by status, failures first, and the manual checks
    answered (of how many)."""
    if state is None:
        return "no session: the report would be empty"
    counts = Counter(str(r.get("status")) for r in state.results().values())
    answers = state.answers()
    verdicts = Counter(str(a.get("verdict")) for a in answers.values())
    said = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "none"
    return (f"The report: {describe_counts(dict(counts))}.\n"
            f"Manual checks answered: {len(answers)} of {len(MANUAL_CHECKS)} ({said}).")


class ExportScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "write", "Write export"),
        Binding("escape", "back", "Back to verify"),
        Binding("f2", "app.toggle_theme", "Theme"),
    ]
    PALETTE = [("Write export", "Write the plan and the report", "write")]

    def __init__(self, session: Session, *, program: str = "omwizard") -> None:
        super().__init__()
        self.session = session
        self.program = program  # named in the texts as the operator runs it
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        cluster = self.session.plan.cluster.name
        state = self.session.state
        # beside the session it reports on, never wherever the wizard happened to be started
        folder = state.directory if state is not None else Path.home()
        default = folder / f"{cluster}-omwizard.yaml"
        yield WizardHeader()
        with Vertical(id="export"):
            yield Label("Export", id="section-title")
            yield Static(
                f"The export is the plan (re-loadable with `{self.program} validate FILE`) and a "
                "`report:` of every check, change and manual answer. Secrets appear only as "
                "${VAR} references.", markup=False,
            )
            with Horizontal(classes="field"):
                yield Label("Write to", classes="field-label")
                yield Input(home_path(default), id="export-path", compact=True)
            yield Button("Write export ^s", id="write", variant="primary", compact=True)
            yield Static("", id="export-result")
            yield Static(report_summary(state), id="report-summary")
            yield Label("Session", classes="heading")
            yield Static(
                f"The session is saved in {home_path(state.directory) if state else '(none)'}\n"
                "(plan, journal of changes, results, answers). Quit at any time and start "
                f"{self.program} again to resume.",
                id="session-path", markup=False,
            )
        yield Footer(compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "write":
            self.action_write()

    def action_write(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        if not value:
            self.query_one("#export-result", Static).update(
                "✗ no file named: type where the export goes")
            return
        if self.session.state is None:  # the App's sessions always have one
            self.notify("no session state to export", severity="error")
            return
        path = export_target(self.session.plan, value)
        if path.exists() and path != self.written:
            def answered(overwrite: bool | None) -> None:
                if overwrite:
                    self.write(path)

            self.app.push_screen(ConfirmScreen(
                f"Replace {path}?", "A file of that name exists; the export would replace it.",
                yes="Replace", no="Keep it", default="no"), answered)
            return
        self.write(path)

    def write(self, path: Path) -> None:
        assert self.session.state is not None
        try:
            self.written = write_export(self.session.plan, self.session.state, path)
        except ExportError as exc:
            self.query_one("#export-result", Static).update(f"✗ {exc}")
            return
        except OSError as exc:
            self.query_one("#export-result", Static).update(f"✗ cannot write {path}: {exc}")
            self.notify(str(exc), severity="error")
            return
        self.query_one("#export-result", Static).update(f"✓ wrote {home_path(self.written)}")
        self.notify(f"wrote {self.written}")

    def action_back(self) -> None:
        self.post_message(GoToSection("verify"))
