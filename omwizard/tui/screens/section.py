"""One screen per section: steps x nodes, the documentation's words, live log, diffs, actions.

Apply always shows first what would change (a dry run of the step: its diffs and commands) and
asks; Roll back lists what the journal will undo and asks. The engine runs in workers; its
events arrive here as EngineEvent messages.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from omwizard.engine import operator
from omwizard.engine.catalog import SECTIONS, TITLES, steps_for
from omwizard.engine.events import (
    ChangeMade,
    CommandRun,
    Event,
    OutputLine,
    StepFinished,
    StepStarted,
)
from omwizard.engine.session import Session
from omwizard.engine.step import STATUS_SYMBOLS, Step
from omwizard.tui.messages import GoToExport, GoToInventory, GoToSection, Visiting
from omwizard.tui.screens.help import HelpScreen, app_keys
from omwizard.tui.screens.modals import ConfirmScreen, TextScreen
from omwizard.tui.screens.welcome import describe_counts
from omwizard.tui.screens.widgets import (
    FULL_WIDTH,
    SHORT_WIDTH,
    KeysFooter,
    WizardHeader,
    status_text,
)

SYMBOLS = {
    **STATUS_SYMBOLS,
    "running": "⟳",
}
FIRST_VISIT = ("Nothing checked here yet: C checks every step on every node, c the highlighted "
               "one. Checks only read (the shared-folder check writes one test file and removes "
               "it); nothing changes before you apply. ? lists every key and symbol.")
STEP_MIN = 14  # the step column never narrower (titles are cut with …, statuses never)
LOG_FLUSH = 0.1  # seconds between two writes of the live log
LOG_KEEP = 20000  # lines kept for re-filtering


def grid_widths(width: int, titles: list[str], nodes: list[str]) -> tuple[bool, int, int]:
    """(short words?, step column width, node column width) for a grid `width` cells wide.

    Full words when they fit, else the short ones (never cut); the step column takes what is
    left (its titles cut with …, the doc panel shows them whole), down to STEP_MIN, past which
    the grid scrolls sideways rather than cut a status."""
    step = max([len("step"), *(len(t) for t in titles)])
    name = max([0, *(len(n) for n in nodes)])
    pad = 2 * (len(nodes) + 1)  # a cell's padding, both sides
    for short, word in ((False, FULL_WIDTH), (True, SHORT_WIDTH)):
        node = max(word, name)
        if step + node * len(nodes) + pad <= width:
            return short, step, node
    node = max(SHORT_WIDTH, name)
    return True, max(STEP_MIN, min(step, width - node * len(nodes) - pad)), node


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def log_entry(ev: Event) -> tuple[str, str, bool] | None:
    """The live log's line for an engine event: (node, text, raw?).

    Raw lines are our own plumbing: a step starting, the probe scripts we run (with their
    output markers) and what they print. The Log tab shows them only in its raw view (l); by
    default it shows the results and the changes made."""
    if isinstance(ev, StepStarted):
        return ev.node, f"{ev.phase} {ev.section}.{ev.step}", True
    if isinstance(ev, CommandRun):
        return ev.node, f"$ {ev.command}", True
    if isinstance(ev, OutputLine):
        return ev.node, ev.line, True
    if isinstance(ev, ChangeMade):
        return ev.node, f"changed {ev.change.get('kind')}: {ev.change.get('target')}", False
    if isinstance(ev, StepFinished):
        r = ev.result.as_json()
        status = r.get("status", "")
        return (r.get("node", ""),
                f"{SYMBOLS.get(status, '?')} {r.get('step')}: {status} {r.get('detail', '')}",
                False)
    return None


def log_text(node: str, line: str) -> str:
    return f"[{node}] {line}" if node else line


def describe_result(r: dict[str, Any]) -> str:
    lines = [f"{r['step']} on {r['node']}: {r['status']}", r.get("detail", "")]
    if r.get("remedy"):
        lines.append(f"→ {r['remedy']}")
    for change in r.get("changes", []):
        kind, target, undo = change.get("kind"), change.get("target"), change.get("undo")
        lines.append(f"  {kind}: {target}  (undo: {undo})")
    for ev in r.get("evidence", []):
        lines.append("")
        lines.append(ev)
    if r.get("diff"):
        lines.append("")
        lines.append(r["diff"])
    return "\n".join(lines)


class SectionScreen(Screen[None]):
    # in pairs: the footer shows each pair in one column (KeysFooter), the help screen lists
    # them with their tooltips
    BINDINGS = [
        Binding("c", "check_step", "Check", tooltip="Check the highlighted step (read-only)"),
        Binding("C", "check_section", "all", key_display="C",
                tooltip="Check every step of the section on every node (read-only)"),
        Binding("a", "apply_step", "Apply",
                tooltip="Apply the highlighted step: its diff first, then your yes"),
        Binding("A", "apply_section", "all", key_display="A",
                tooltip="Apply every step of the section, each after its diff"),
        Binding("b", "rollback_step", "Undo", tooltip="Roll back the highlighted step"),
        Binding("B", "rollback_section", "all", key_display="B",
                tooltip="Roll back what the journal holds for this section"),
        Binding("s", "skip", "Skip", tooltip="Mark the step skipped, with a reason"),
        Binding("f", "filter", "Filter", tooltip="Log of all nodes, then of each node in turn"),
        Binding("n", "next", "Next", tooltip="The next section"),
        Binding("p", "previous", "Prev", tooltip="The previous section"),
        Binding("i", "inventory", "Inventory", tooltip="Nodes, SSH, database, storage"),
        Binding("e", "export", "Export", tooltip="Write the plan and the report"),
        Binding("d", "doc", "Doc", tooltip="Scroll the documentation's text (↑↓; d again: back)"),
        Binding("question_mark", "help", "Keys", key_display="?",
                tooltip="Every key and status symbol"),
        Binding("escape", "back", "Back", tooltip="Back to the inventory"),
        Binding("l", "raw_log", "Raw log",
                tooltip="The log with every probe script and its output (l again: results "
                        "and changes only)"),
    ]
    PALETTE = [
        ("Re-check step", "Run the highlighted step's check on every node", "check_step"),
        ("Check section", "Run every check of this section", "check_section"),
        ("Apply step", "Show the diff of the highlighted step, then apply it", "apply_step"),
        ("Apply section", "Every step of the section, each after its diff", "apply_section"),
        ("Roll back step", "Undo what the journal holds for this step", "rollback_step"),
        ("Roll back section", "Undo what the journal holds for this section", "rollback_section"),
        ("Skip step", "Mark the step skipped, with a reason", "skip"),
        ("Raw log", "Every probe script and its output in the log, or results only", "raw_log"),
        ("Next section", "", "next"),
        ("Previous section", "", "previous"),
    ]

    @dataclass
    class EngineEvent(Message):
        """An engine event, carried from the bus to this screen."""

        event: Event

    def __init__(self, session: Session, section: str, step: str | None = None, *,
                 auto_check: bool = False) -> None:
        super().__init__()
        # a first visit (no result yet) checks the whole section by itself (read-only); the
        # App asks for it only when it runs for an operator (run_app), never in a test's Pilot
        self.auto_check = auto_check
        self.session = session  # the plan, its state, the bus and the engine: read, never swapped
        self.section = section
        self.start_step = step
        self.steps: tuple[Step, ...] = ()
        self.results: dict[str, dict[str, Any]] = {}  # "step/node" -> result
        self.log_lines: list[tuple[str, str, bool]] = []  # (node, line, raw?)
        self.log_filter: str | None = None
        self.raw_log = False  # the Log tab shows probe scripts and their output too
        self.busy = False
        self._pending: list[tuple[str, str, bool]] = []  # log lines not written yet
        self.log_batches = 0
        self.short_words = False  # the grid's status words: short ones when full ones do not fit
        self.what = ""  # the long work running now, its current step, since when
        self.doing = ""
        self.asking = ""  # what a dialog asks the operator now (the activity line says so)
        self.started = 0.0

    # -- layout -------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return [n.name for n in self.session.plan.nodes]

    def compose(self) -> ComposeResult:
        self.steps = steps_for(self.section)
        index = SECTIONS.index(self.section) + 1 if self.section in SECTIONS else 0
        yield WizardHeader()
        with Vertical(id="section"):
            yield Label(f"{index}/{len(SECTIONS)}  {TITLES.get(self.section, self.section)}",
                        id="section-title")
            yield DataTable(id="grid", cursor_type="cell", zebra_stripes=True)
            with VerticalScroll(id="doc-scroll"):
                yield Static("", id="doc")
            with Horizontal(id="progress-row"):
                yield Label("", id="activity")
                yield ProgressBar(id="progress", show_eta=False)
            with TabbedContent(id="tabs"):
                with TabPane("Log", id="tab-log"):
                    yield Select([], prompt="all nodes", id="log-filter", compact=True)
                    yield Static(FIRST_VISIT, id="first-visit", markup=False)
                    yield RichLog(id="log", wrap=True, markup=False, max_lines=5000)
                with TabPane("Diff", id="tab-diff"):
                    yield RichLog(id="diff", wrap=False, markup=False)
                with TabPane("Details", id="tab-details"):
                    yield RichLog(id="details", wrap=True, markup=False)
                yield from self.extra_panes()
        yield KeysFooter(compact=True)

    def extra_panes(self) -> ComposeResult:
        return iter(())

    def on_mount(self) -> None:
        grid = self.query_one("#grid", DataTable)
        stored = self.session.state.results() if self.session.state else {}
        for key, r in stored.items():
            section, _, rest = key.partition("/")
            if section == self.section:
                self.results[rest] = r
        self.build_grid()
        self.query_one("#log-filter", Select).set_options([(n, n) for n in self.nodes])
        self.query_one("#progress-row").display = False
        if not self.steps:
            self.query_one("#doc", Static).update(
                "This section's steps are not available in this build yet.")
        start = 0
        names = [s.name for s in self.steps]
        if self.start_step in names:
            start = names.index(self.start_step)
        if self.steps:
            grid.move_cursor(row=start, column=1, animate=False)
        self.show_doc()
        grid.focus()
        self.session.bus.subscribe(self._listen)
        self.set_interval(LOG_FLUSH, self.flush_log)
        self.set_interval(1.0, self.tick)
        self.post_message(Visiting(self.section,
                                   self.current_step.name if self.current_step else None))
        # a first visit says how to start (read-only), where the results will appear
        first = bool(self.steps and not self.results)
        self.query_one("#first-visit", Static).display = first
        if first and self.auto_check:  # and checks the section by itself: checks only read
            self.call_after_refresh(self.action_check_section)
        elif self.results:  # a resumed section: the log says what the grid shows, and when
            self.log_line("", saved_results_line(self.results.values()))

    def on_unmount(self) -> None:
        self.session.bus.unsubscribe(self._listen)

    def drop_first_visit_hint(self) -> None:
        """The first-visit hint goes once work starts: it would tell something no longer true.
        (A line above the log, not a toast: it covers nothing and does not follow to other
        screens.)"""
        self.query_one("#first-visit", Static).display = False

    def build_grid(self) -> None:
        """(Re)build the grid's columns for the screen's width: every status word whole."""
        grid = self.query_one("#grid", DataTable)
        titles = [s.title or s.name for s in self.steps]
        width = (self.size.width or self.app.size.width) - 2  # the grid's scrollbar
        self.short_words, step_w, node_w = grid_widths(width, titles, self.nodes)
        row, col = grid.cursor_row, grid.cursor_column
        grid.clear(columns=True)
        grid.add_column("step", key="step", width=step_w)
        for node in self.nodes:
            grid.add_column(cut(node, node_w), key=node, width=node_w)
        for step, title in zip(self.steps, titles, strict=True):
            cells = [self._cell(step.name, n) for n in self.nodes]
            grid.add_row(cut(title, step_w), *cells, key=step.name)
        if self.steps:
            grid.move_cursor(row=row, column=col, animate=False)

    def on_resize(self) -> None:
        if self.steps and self.is_mounted:
            short = self.short_words
            titles = [s.title or s.name for s in self.steps]
            width = self.size.width - 2
            if grid_widths(width, titles, self.nodes) != (short, *self.column_widths()):
                self.build_grid()

    def column_widths(self) -> tuple[int, int]:
        columns = list(self.query_one("#grid", DataTable).columns.values())
        return (columns[0].width if columns else 0,
                columns[1].width if len(columns) > 1 else 0)

    def _listen(self, event: Event) -> None:
        """Called by the engine for every event: log lines are queued and written in batches
        (a tcpdump or a package install can print hundreds a second); grid changes travel as
        messages."""
        line = log_entry(event)
        if line is not None:
            self._pending.append(line)
        if isinstance(event, (StepStarted, StepFinished)):
            self.post_message(self.EngineEvent(event))

    # -- state of the grid --------------------------------------------------------------------

    def _cell(self, step: str, node: str, status: str | None = None) -> Text:
        if status is None:
            status = (self.results.get(f"{step}/{node}") or {}).get("status")
        return status_text(status, self.app.current_theme, short=self.short_words)

    def set_cell(self, step: str, node: str, status: str | None = None) -> None:
        grid = self.query_one("#grid", DataTable)
        try:
            grid.update_cell(step, node, self._cell(step, node, status))
        except Exception:  # noqa: BLE001 - a node or step not on this grid
            pass

    @property
    def current_step(self) -> Step | None:
        if not self.steps:
            return None
        row = self.query_one("#grid", DataTable).cursor_row
        return self.steps[max(0, min(row, len(self.steps) - 1))]

    @property
    def current_node(self) -> str | None:
        col = self.query_one("#grid", DataTable).cursor_column
        return self.nodes[col - 1] if 0 < col <= len(self.nodes) else None

    def status_of(self, step: str, node: str) -> str | None:
        return (self.results.get(f"{step}/{node}") or {}).get("status")

    def show_doc(self) -> None:
        step = self.current_step
        if step is None:
            return
        doc = Text()
        doc.append(f"{step.title or step.name}: ", style="bold")
        doc.append(step.doc or "")
        self.query_one("#doc", Static).update(doc)
        self.query_one("#doc-scroll", VerticalScroll).scroll_home(animate=False)
        details = self.query_one("#details", RichLog)
        details.clear()
        node = self.current_node
        shown = [node] if node else self.nodes
        for name in shown:
            r = self.results.get(f"{step.name}/{name}")
            if r:
                details.write(describe_result(r))
                details.write("")
        if not any(self.results.get(f"{step.name}/{n}") for n in shown):
            details.write("no result yet: press c to check")

    @on(DataTable.CellHighlighted, "#grid")
    def _highlight(self, event: DataTable.CellHighlighted) -> None:
        self.show_doc()
        step = self.current_step
        if step is not None:
            self.post_message(Visiting(self.section, step.name))

    # -- events -------------------------------------------------------------------------------

    def log_line(self, node: str, line: str, raw: bool = False) -> None:
        """Queue one line for the live log (written with the next batch)."""
        self._pending.append((node, line, raw))

    def shown_in_log(self, node: str, raw: bool) -> bool:
        return self.log_filter in (None, node) and (self.raw_log or not raw)

    def flush_log(self) -> None:
        """Write the queued lines: one RichLog write per batch, filtered by node."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self.log_lines.extend(batch)
        if len(self.log_lines) > LOG_KEEP:
            del self.log_lines[: len(self.log_lines) - LOG_KEEP]
        shown = [log_text(node, line) for node, line, raw in batch
                 if self.shown_in_log(node, raw)]
        if shown:
            self.query_one("#log", RichLog).write("\n".join(shown))
        self.log_batches += 1

    def tick(self) -> None:
        """While working: the elapsed time and what runs now (restarts take minutes)."""
        if not self.busy:
            return
        if self.asking:  # a dialog waits for the operator: no work, no clock
            self.query_one("#activity", Label).update(f"{self.what} · {self.asking}")
            return
        elapsed = int(time.monotonic() - self.started - getattr(self, "waited", 0.0))
        doing = f" · {self.doing}" if self.doing else ""
        self.query_one("#activity", Label).update(f"{self.what}{doing} · {elapsed}s")

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        if isinstance(ev, StepStarted):
            if ev.section == self.section:
                self.set_cell(ev.step, ev.node, "running")
            self.doing = f"{ev.phase} {ev.step} on {ev.node}"
        elif isinstance(ev, StepFinished):
            r = ev.result.as_json()
            status = r.get("status", "")
            if r.get("section") == self.section:
                if status != "would-change":
                    self.results[f"{r['step']}/{r['node']}"] = r
                    self.set_cell(r["step"], r["node"])
                else:  # a dry run's finding: waits for the operator, no longer running
                    self.set_cell(r["step"], r["node"], "would-change")
                self.query_one("#progress", ProgressBar).advance(1)
                self.show_doc()

    @on(Select.Changed, "#log-filter")
    def _filter(self, event: Select.Changed) -> None:
        self.flush_log()
        self.log_filter = None if event.value is Select.NULL else str(event.value)
        self.rewrite_log()

    def rewrite_log(self) -> None:
        """The Log tab again from the lines kept, for the current filter and view."""
        log = self.query_one("#log", RichLog)
        log.clear()
        shown = [log_text(node, line) for node, line, raw in self.log_lines
                 if self.shown_in_log(node, raw)]
        if shown:
            log.write("\n".join(shown))

    def action_raw_log(self) -> None:
        """l: the raw log (probe scripts, their output) or results and changes only."""
        self.flush_log()
        self.raw_log = not self.raw_log
        self.query_one("#tabs", TabbedContent).get_tab("tab-log").label = (
            "Log (raw)" if self.raw_log else "Log")
        self.query_one("#tabs", TabbedContent).active = "tab-log"
        self.rewrite_log()

    def action_filter(self) -> None:
        """Cycle the log filter: all nodes, then each node."""
        sel = self.query_one("#log-filter", Select)
        order: list[Any] = [Select.NULL, *self.nodes]
        current = sel.value if sel.value in order else Select.NULL
        nxt = order[(order.index(current) + 1) % len(order)]
        if nxt is Select.NULL:
            sel.clear()
        else:
            sel.value = nxt
        self.query_one("#tabs", TabbedContent).active = "tab-log"

    # -- running ------------------------------------------------------------------------------

    def begin(self, what: str, total: int) -> bool:
        if self.busy:
            self.notify("still working; wait for it to finish", severity="warning")
            return False
        self.busy = True
        self.drop_first_visit_hint()
        self.what, self.doing, self.started = what, "", time.monotonic()
        self.waited = 0.0  # seconds a dialog waited for the operator: not working time
        self.query_one("#progress-row").display = True
        self.query_one("#activity", Label).update(what)
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(total, 1), progress=0)
        return True

    def end(self, text: str = "") -> None:
        self.busy = False
        self.flush_log()
        if self.started:
            worked = time.monotonic() - self.started - getattr(self, "waited", 0.0)
            text = f"{text} in {int(worked)}s"
        self.query_one("#activity", Label).update(text)
        bar = self.query_one("#progress", ProgressBar)
        if bar.total is not None:
            bar.update(progress=bar.total)
        self.show_doc()

    def action_check_step(self) -> None:
        if self.current_step is not None:
            self.run_checks([self.current_step])

    def action_check_section(self) -> None:
        self.run_checks(list(self.steps))

    @work(exclusive=True, group="engine")
    async def run_checks(self, steps: list[Step]) -> None:
        if not self.begin("checking…", len(steps) * len(self.nodes)):
            return
        try:
            self.session.pool.forget_failures()
            engine = self.session.engine([self.section])
            if len(steps) == 1:
                self.post_message(Visiting(self.section, steps[0].name))
                await engine.check_step(steps[0])
            else:  # a whole section: its steps at once, as the CLI's check (issue 21)
                await engine.check_steps(steps)
        finally:
            self.end("checked")

    def action_apply_step(self) -> None:
        if self.current_step is not None:
            self.run_apply([self.current_step])

    def action_apply_section(self) -> None:
        self.run_apply(list(self.steps))

    @work(exclusive=True, group="engine")
    async def run_apply(self, steps: list[Step]) -> None:
        if not self.begin("applying…", len(steps) * len(self.nodes) * 2):
            return
        applied = 0
        try:
            session = self.session
            session.pool.forget_failures()
            # one engine for the run, as the CLI's apply: a node that cannot be reached is
            # said once, its later steps refer to it. Each step's dry run is new (it reads
            # what the previous step changed) but knows the nodes already found unreachable.
            real = session.engine([self.section])
            for step in steps:
                self.post_message(Visiting(self.section, step.name))
                if not step.has_apply:
                    await real.check_step(step)
                    continue
                dry = session.engine([self.section], dry_run=True)
                dry.unreached = real.unreached
                planned = [r.as_json() for r in await dry.apply_step(step)]
                todo = [r for r in planned if r["status"] == "would-change"]
                self.show_diff(step, todo)
                for r in planned:
                    if r["status"] != "would-change":
                        self.results[f"{r['step']}/{r['node']}"] = r
                        self.set_cell(r["step"], r["node"])
                if any(r["status"] == "failed" for r in planned):
                    self.notify(f"{step.name}: the check failed on some node; see Details",
                                severity="error")
                    break
                if not todo:
                    continue
                body = plan_text(todo)
                self.query_one("#tabs", TabbedContent).active = "tab-diff"
                for r in todo:  # waiting for the operator, not running
                    self.set_cell(r["step"], r["node"], "would-change")
                asked = time.monotonic()
                self.asking = f"{step.name}: waiting for your answer"
                try:
                    yes = await self.app.push_screen_wait(ConfirmScreen(
                        f"Apply {step.title or step.name} on "
                        f"{', '.join(r['node'] for r in todo)}?",
                        body, yes="Apply", no="Not now"))
                finally:
                    self.asking = ""
                    self.waited += time.monotonic() - asked
                if not yes:
                    for r in todo:
                        self.set_cell(r["step"], r["node"])
                    self.notify("not applied")
                    break
                results = await real.apply_step(step)
                applied += 1
                if any(r.status == "failed" for r in results):
                    self.notify(f"{step.name} failed; see Details", severity="error")
                    break
        finally:
            self.end(f"applied {applied} step{'' if applied == 1 else 's'}")
            if applied:  # the results of what was applied, not the last diff
                self.query_one("#tabs", TabbedContent).active = "tab-log"

    def show_diff(self, step: Step, todo: list[dict[str, Any]]) -> None:
        log = self.query_one("#diff", RichLog)
        log.clear()
        if not todo:
            log.write(f"{step.name}: nothing would change")
            return
        for r in todo:
            log.write(Text(f"── {r['node']}: {r['step']} ──", style="bold"))
            for c in r.get("changes", []):
                log.write(f"{c.get('kind')}: {c.get('target')}   (undo: {c.get('undo')})")
            for line in (r.get("diff") or "").splitlines():
                style = ("green" if line.startswith("+") else
                         "red" if line.startswith("-") else "")
                log.write(Text(line, style=style))

    def action_rollback_step(self) -> None:
        if self.current_step is not None:
            self.run_rollback(self.current_step.name)

    def action_rollback_section(self) -> None:
        self.run_rollback(None)

    @work(exclusive=True, group="engine")
    async def run_rollback(self, step: str | None) -> None:
        engine = self.session.engine([self.section], steps=[step] if step else None)
        records = engine.undo_records()
        what = f"step {step}" if step else f"section {self.section}"
        if not records:
            self.notify(f"nothing to roll back for {what}: the journal has no change")
            return
        body = "\n".join(f"{r['node']}: {r['step']}: {r.get('undo') or r.get('target')}"
                         for r in records)
        yes = await self.app.push_screen_wait(ConfirmScreen(
            f"Roll back {what}? These changes will be undone (newest first):", body,
            yes="Roll back", no="Keep"))
        if not yes:
            return
        if not self.begin("rolling back…", len(records)):
            return
        try:
            results = await engine.rollback()
            failed = [r for r in results if r.status == "failed"]
            if failed:
                self.notify("roll back failed on " + ", ".join(r.node for r in failed),
                            severity="error")
        finally:
            self.end("rolled back")

    def action_skip(self) -> None:
        step = self.current_step
        if step is None:
            return

        def skipped(reason: str | None) -> None:
            if not reason:
                return
            self.skip(step, reason)

        self.app.push_screen(TextScreen(f"Skip {step.title or step.name}",
                                        "Why is this step skipped? (saved in the report)"),
                             skipped)

    def skip(self, step: Step, reason: str) -> None:
        for result in operator.skip_step(self.session.engine([self.section]), step, reason):
            self.results[f"{step.name}/{result.node}"] = result.as_json()
            self.set_cell(step.name, result.node)
        self.show_doc()

    # -- navigation ---------------------------------------------------------------------------

    def _go(self, delta: int) -> None:
        if self.busy:
            self.notify("still working; wait for it to finish", severity="warning")
            return
        i = SECTIONS.index(self.section) + delta
        if i < 0:
            self.post_message(GoToInventory())
        elif i >= len(SECTIONS):
            self.post_message(GoToExport())
        else:
            self.post_message(GoToSection(SECTIONS[i]))

    def action_next(self) -> None:
        self._go(1)

    def action_previous(self) -> None:
        self._go(-1)

    def action_inventory(self) -> None:
        self.post_message(GoToInventory())

    def action_export(self) -> None:
        self.post_message(GoToExport())

    def action_back(self) -> None:
        """Esc: out of the section, back to the inventory (not while work runs). From a field
        or the doc, Esc first returns to the grid (a note being typed is not thrown away)."""
        grid = self.query_one("#grid", DataTable)
        if self.focused is not None and self.focused is not grid:
            grid.focus()
            return
        if self.busy:
            self.notify("still working; wait for it to finish", severity="warning")
            return
        self.post_message(GoToInventory())

    def action_doc(self) -> None:
        """d: the documentation's text takes the keys (↑↓ scroll it); d again: the grid."""
        doc = self.query_one("#doc-scroll", VerticalScroll)
        if doc.has_focus:
            self.query_one("#grid", DataTable).focus()
        else:
            doc.focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(TITLES.get(self.section, self.section),
                                        self.key_legend()))

    def key_legend(self) -> list[tuple[str, str]]:
        """This screen's keys, then the app's, each with what it does."""
        rows: list[tuple[str, str]] = []
        for binding in self._bindings_in_order():
            rows.append((self.app.get_key_display(binding), binding.tooltip or binding.description))
        rows += [row for row in app_keys(self.app) if row[0] != "?"]
        rows.append(("←↑↓→", "Move on the grid: a step (row) on a node (column)"))
        rows.append(("Tab", "The next part of the screen (grid, doc, log filter, tabs)"))
        return rows

    def _bindings_in_order(self) -> list[Binding]:
        """The screen's own keys (BINDINGS of its class), as declared."""
        out: list[Binding] = []
        for item in type(self).BINDINGS:
            if isinstance(item, Binding):
                out.append(item)
        return out


def saved_results_line(results: Any) -> str:
    """The log's first line on a section with saved results: their counts and newest time."""
    results = list(results)
    counts = Counter(str(r.get("status")) for r in results)
    times = [str(r.get("at") or r.get("ts") or "") for r in results]
    when = max(times) if any(times) else ""
    return (f"saved results of this section: {describe_counts(dict(counts))}"
            + (f" (newest {when})" if when else "") + "; c or C checks again")


def plan_text(todo: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for r in todo:
        lines.append(f"{r['node']}:")
        for c in r.get("changes", []):
            lines.append(f"  {c.get('kind')}: {c.get('target')}")
            lines.append(f"    undo: {c.get('undo')}")
        for line in (r.get("diff") or "").splitlines():
            lines.append("  " + line)
    return "\n".join(lines)
