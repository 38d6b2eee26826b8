"""Verify: the automatic checks (the verify section) and the documentation's manual checklist.

The manual answers (pass / fail and a note) are saved in the session as they are given, and go
into the export's report.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Label, Static, TabbedContent, TabPane

from omwizard.engine.export import MANUAL_CHECKS, manual_instructions, record_answer
from omwizard.engine.session import Session
from omwizard.tui.screens.section import SectionScreen


class ManualCheck(Vertical):
    """One manual check: what to do, what to expect, pass / fail and a note."""

    DEFAULT_CSS = """
    ManualCheck { height: auto; border: round $primary 50%; padding: 0 1; margin-bottom: 1; }
    ManualCheck .verdict { height: auto; }
    ManualCheck .verdict Button { margin-right: 1; min-width: 10; text-style: bold; }
    ManualCheck .verdict Button.-chosen { text-style: bold reverse; }
    ManualCheck .verdict Input { width: 1fr; }
    ManualCheck .answer { color: $text-muted; }
    """

    def __init__(self, check: dict[str, Any], answer: dict[str, Any] | None) -> None:
        super().__init__(id=f"manual-{check['id']}", classes="manual")
        self.check = check
        self.answer = answer or {}

    def compose(self) -> ComposeResult:
        c = self.check
        yield Label(c["title"], classes="heading")
        yield Static(c.get("doc", ""), classes="manual-doc")
        steps = c.get("steps") or []
        if steps:
            yield Static("\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)))
        expect = c.get("expect") or []
        if expect:
            yield Static("Expect:\n" + "\n".join(f"• {e}" for e in expect))
        with Horizontal(classes="verdict"):
            # bracketed: a button, not a word, in any theme (compact buttons have no border)
            verdict = self.answer.get("verdict")
            yield Button(Content("[ ✓ Pass ]"), id=f"pass-{c['id']}", variant="success",
                         compact=True, classes="-chosen" if verdict == "pass" else "")
            yield Button(Content("[ ✗ Fail ]"), id=f"fail-{c['id']}", variant="error",
                         compact=True, classes="-chosen" if verdict == "fail" else "")
            yield Input(self.answer.get("note", ""), placeholder="note (what you saw)",
                        id=f"note-{c['id']}", compact=True)
        yield Static(self.answer_text(), classes="answer", id=f"answer-{c['id']}")

    def answer_text(self) -> str:
        if not self.answer:
            return "no answer yet"
        return f"answer: {self.answer.get('verdict')}  ({self.answer.get('at', '')})"


class VerifyScreen(SectionScreen):
    BINDINGS = [
        *SectionScreen.BINDINGS,
        Binding("m", "manual", "Manual", tooltip="The manual checks"),
    ]

    def __init__(self, session: Session, step: str | None = None, *,
                 auto_check: bool = False) -> None:
        super().__init__(session, "verify", step=step, auto_check=auto_check)

    def extra_panes(self) -> ComposeResult:
        plan = self.session.plan
        state = self.session.state
        answers = state.answers() if state else {}
        try:
            checks = manual_instructions(plan)
        except Exception:  # noqa: BLE001 - fewer than two OM nodes: plain texts
            checks = [{"id": k, **v} for k, v in MANUAL_CHECKS.items()]
        with TabPane("Manual checks", id="tab-manual"):
            with VerticalScroll():
                for check in checks:
                    yield ManualCheck(check, answers.get(check["id"]))

    def action_manual(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "tab-manual"

    @on(Button.Pressed)
    def _verdict(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        verdict, _, check_id = bid.partition("-")
        if verdict in ("pass", "fail") and check_id in MANUAL_CHECKS:
            event.stop()
            note = self.query_one(f"#note-{check_id}", Input).value
            self.answer(check_id, verdict, note)

    def answer(self, check_id: str, verdict: str, note: str = "") -> dict[str, Any] | None:
        state = self.session.state
        if state is None:
            return None
        saved = record_answer(state, check_id, verdict, note)
        box = self.query_one(f"#manual-{check_id}", ManualCheck)
        box.answer = saved
        for which in ("pass", "fail"):
            self.query_one(f"#{which}-{check_id}", Button).set_class(which == verdict, "-chosen")
        self.query_one(f"#answer-{check_id}", Static).update(box.answer_text())
        self.notify(f"{MANUAL_CHECKS[check_id]['title']}: {verdict}")
        return saved
