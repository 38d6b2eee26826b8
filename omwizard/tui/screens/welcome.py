"""Welcome: start a new cluster plan, open a plan file, or resume a saved session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from omwizard.engine.catalog import TITLES
from omwizard.engine.state import list_sessions
from omwizard.tui.messages import NewPlan, OpenPlanFile, OpenSession, StartRehearsal
from omwizard.tui.screens.modals import ConfirmScreen, TextScreen
from omwizard.tui.screens.widgets import STATUS_WORDS, KeysFooter, WizardHeader

INTRO = (
    "omwizard turns Apache OpenMeetings servers into a cluster, following OpenMeetings' own "
    "Clustering page step by step: multicast, database, file systems, hazelcast.xml, and checks "
    "that it all works. Nothing is changed on a node before you have seen the diff and said yes."
)

REHEARSAL_INTRO = (
    "No servers yet, or not ready to touch production? Practise the whole procedure on a "
    "throwaway local cluster first: real sshd, a real MariaDB and real Hazelcast members in "
    "network namespaces on this machine (198.18.0.0/24 only), torn down when you quit.\n\n"
)
REHEARSAL_OPTIONS = (
    "Options: --nodes N, --om-version 9.1.0, --db postgresql, --keep; clean up: --down.\n"
    "The nodes get real OpenMeetings files: from the project's shared/ folder beside a "
    "checkout, or from an OpenMeetings you have: --om-files /path/to/openmeetings."
)


def rehearsal_text(command: str, can_start: bool, rehearsing: bool = False) -> str:
    """The Practise dialog: start it from here (root), or the exact command to run, both as
    the operator invoked this program (the CLI passes it); inside a rehearsal, say so."""
    command = command or "the rehearse command of this program, as root"
    if rehearsing:
        return ("This wizard already runs on a rehearsal cluster: a throwaway local cluster "
                "(real sshd, MariaDB or PostgreSQL and Hazelcast members in network "
                "namespaces, 198.18.0.0/24 only), torn down when you quit. Practise here; "
                f"another rehearsal later:\n\n    {command}\n\n" + REHEARSAL_OPTIONS)
    if can_start:
        how = (f"Start it now: this wizard closes and the rehearsal opens in its place (the "
               f"same as running  {command}).\n")
    else:
        how = f"It needs root. Quit, then run:\n\n    {command}\n\n"
    return REHEARSAL_INTRO + how + REHEARSAL_OPTIONS



# the order an operator reads a session's state in: what is wrong first
COUNT_ORDER = ("failed", "needs-change", "ok", "changed", "rolled-back", "skipped")


def describe_counts(counts: dict[str, int]) -> str:
    """Every status with its count, failures first, and a total they add up to:
    "18 results: 16 failed, 2 ok" (never "2/18 done" that hides the 16 failures)."""
    total = sum(counts.values())
    if not total:
        return "no results yet"
    order = [k for k in COUNT_ORDER if k in counts] + sorted(set(counts) - set(COUNT_ORDER))
    # the grid's full words ("needs change", "rolled back"), never the raw keys
    parts = [f"{counts[k]} {STATUS_WORDS[k][1] if k in STATUS_WORDS else k}"
             for k in order if counts[k]]
    return f"{total} result{'s' if total != 1 else ''}: {', '.join(parts)}"


def describe_session(s: dict[str, Any]) -> str:
    if s.get("error"):
        return f"{s['name']}  (cannot be read: {s['error']})"
    progress = describe_counts(s.get("counts") or {})
    section = TITLES.get(s.get("section") or "", s.get("section") or "inventory")
    when = s.get("last_activity") or "never"
    return f"{s['name']}  ·  {progress}  ·  {section}  ·  last activity {when}"


class WelcomeScreen(Screen[None]):
    BINDINGS = [
        Binding("n", "new", "New plan"),
        Binding("o", "open", "Open plan"),
        Binding("r", "resume", "Resume"),
        Binding("p", "rehearse", "Practise"),
        Binding("t", "troubleshoot", "Troubleshoot", show=False),
        Binding("q", "app.quit", "Quit", show=False),
        Binding("f2", "app.toggle_theme", "Theme"),
    ]
    PALETTE = [
        ("New cluster plan", "Start the inventory from scratch", "new"),
        ("Open a plan file", "Load a YAML plan", "open"),
        ("Resume session", "The highlighted (or latest) saved session", "resume"),
        ("Practise on a rehearsal cluster", "Start a throwaway local cluster", "rehearse"),
        ("Troubleshoot an existing cluster", "Discover its plan, then run the doctor",
         "troubleshoot"),
    ]

    def __init__(self, state_base: Path | None = None, *, rehearse_command: str = "",
                 can_rehearse: bool = False, rehearsing: bool = False) -> None:
        super().__init__()
        self.state_base = state_base  # where saved sessions are listed from (None: the default)
        self.rehearse_command = rehearse_command  # how this user starts a rehearsal
        self.can_rehearse = can_rehearse  # the wizard may start it itself (as root)
        self.rehearsing = rehearsing  # this wizard runs on a rehearsal cluster now
        self.sessions: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield WizardHeader()
        with Vertical(id="welcome"):
            yield Label("Welcome to omwizard", id="welcome-title")
            yield Static(INTRO, id="welcome-intro")
            yield Label("Start", classes="heading")
            yield OptionList(
                Option(Content("New cluster plan  [n]"), id="new"),
                Option(Content("Open a plan file  [o]"), id="open"),
                Option(Content("No servers yet? Practise on a rehearsal cluster  [p]"),
                       id="rehearse"),
                Option(Content("Troubleshoot an existing cluster  [t]"), id="troubleshoot"),
                id="start",
            )
            yield Label("Saved sessions  [r] resume", classes="heading", markup=False)
            yield OptionList(id="sessions")
        yield KeysFooter(compact=True)  # two rows: every key fits at 80 columns

    def on_mount(self) -> None:
        self.refresh_sessions()
        self.query_one("#start", OptionList).focus()

    def refresh_sessions(self) -> None:
        self.sessions = [s for s in list_sessions(self.state_base)
                         if s.get("has_plan") or s.get("error")]
        sessions = self.query_one("#sessions", OptionList)
        sessions.clear_options()
        if not self.sessions:
            sessions.add_option(Option("No saved session yet", id="none", disabled=True))
        for i, s in enumerate(self.sessions):
            sessions.add_option(Option(Content(describe_session(s)), id=f"s{i}"))
        if self.sessions:
            sessions.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        oid = event.option.id or ""
        if oid == "new":
            self.action_new()
        elif oid == "open":
            self.action_open()
        elif oid == "rehearse":
            self.action_rehearse()
        elif oid == "troubleshoot":
            self.action_troubleshoot()
        elif oid.startswith("s"):
            self.resume(self.sessions[int(oid[1:])])

    def action_new(self) -> None:
        self.post_message(NewPlan())

    def action_open(self) -> None:
        def opened(path: str | None) -> None:
            if path:
                self.post_message(OpenPlanFile(str(Path(path).expanduser())))

        self.app.push_screen(TextScreen("Open a plan file", "Path of the plan (YAML):"), opened)

    def action_rehearse(self) -> None:
        can_start = self.can_rehearse
        text = rehearsal_text(self.rehearse_command, can_start, self.rehearsing)
        if not can_start or self.rehearsing:
            self.app.push_screen(ConfirmScreen("Practise first", text, yes="OK", no="Back"))
            return

        def answered(start: bool | None) -> None:
            if start:
                self.post_message(StartRehearsal())

        self.app.push_screen(
            ConfirmScreen("Practise first", text, yes="Start the rehearsal", no="Back"),
            answered,
        )

    def action_troubleshoot(self) -> None:
        from omwizard.tui.screens.doctor import DoctorScreen

        self.app.push_screen(DoctorScreen())

    def action_resume(self) -> None:
        if not self.sessions:
            self.notify("no saved session to resume", severity="warning")
            return
        index = self.query_one("#sessions", OptionList).highlighted or 0
        self.resume(self.sessions[index])

    def resume(self, session: dict[str, Any]) -> None:
        if session.get("error"):
            self.notify(session["error"], severity="error", timeout=10)
            return
        self.post_message(OpenSession(Path(session["path"])))
