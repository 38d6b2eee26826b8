"""Typed modal screens: confirmations, the host-key question, passwords, a skip reason,
a choice from a list (which node sends the multicast ping).

Each one dismisses with its answer: a worker (a screen's engine run, or the App's host-key and
password callbacks called from one) awaits it with Textual's ``App.push_screen_wait``; other
callers pass a callback to ``push_screen``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question with an optional body (what will be changed or undone).

    One button has the focus from the start (`default`: "yes", the primary action the operator
    asked for, or "no" where saying yes needs a look first), so Enter answers at once; ←/→ and
    Tab move between the two buttons only, and a hint line under them says which key does what.
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left,right", "switch", "Other button", show=False),
        Binding("tab,shift+tab", "switch", "Other button", show=False, priority=True),
        Binding("up", "scroll_body(-1)", "Scroll up", show=False),
        Binding("down", "scroll_body(1)", "Scroll down", show=False),
        Binding("pageup", "scroll_body(-10)", "Page up", show=False),
        Binding("pagedown", "scroll_body(10)", "Page down", show=False),
    ]

    def __init__(self, title: str, body: str = "", yes: str = "Yes", no: str = "No",
                 *, default: str = "yes") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no
        self.default = "no" if default == "no" else "yes"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            if self.body:
                with VerticalScroll(id="dialog-body", can_focus=False):
                    yield Static(self.body, markup=False, id="dialog-text")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.yes, id="yes", variant="primary")
                yield Button(self.no, id="no")
            yield Static("", id="dialog-keys", markup=False)

    def on_mount(self) -> None:
        self.query_one(f"#{self.default}", Button).focus()
        self.show_keys()

    def on_descendant_focus(self) -> None:
        self.show_keys()

    def focused_answer(self) -> str:
        focused = self.focused
        return focused.id if isinstance(focused, Button) and focused.id in ("yes", "no") \
            else self.default

    def show_keys(self) -> None:
        """The hint line: what Enter does now, and the other keys."""
        enter = self.yes if self.focused_answer() == "yes" else self.no
        keys = (f"Enter: {enter}  ·  y: {self.yes}  ·  n or Esc: {self.no}\n"
                "←→ or Tab: the other button")
        if self.body:
            keys += "  ·  ↑↓: scroll the text"
        self.query_one("#dialog-keys", Static).update(keys)

    def action_switch(self) -> None:
        other = "no" if self.focused_answer() == "yes" else "yes"
        self.query_one(f"#{other}", Button).focus()

    def action_scroll_body(self, lines: int) -> None:
        for body in self.query("#dialog-body").results(VerticalScroll):
            body.scroll_relative(y=lines, animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class HostKeyScreen(ConfirmScreen):
    """An unknown SSH host key: show the SHA256 fingerprint and ask before pinning it."""

    def __init__(self, node: str, host: str, port: int, fingerprint: str) -> None:
        body = (
            f"Node {node} ({host}:{port}) offers a host key that is not in known_hosts:\n\n"
            f"    {fingerprint}\n\n"
            "Compare it with the node's own key, on its console:\n"
            "    ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\n\n"
            "Trust it and pin it in known_hosts?"
        )
        # Enter refuses: trusting a key is a decision made after comparing it (y, or ← Enter)
        super().__init__(f"Unknown host key: {node}", body, yes="Trust and pin", no="Refuse",
                         default="no")
        self.fingerprint = fingerprint
        self.add_class("hostkey")


class TextScreen(ModalScreen[str | None]):
    """Ask one line of text (masked for passwords); None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, *, password: bool = False, value: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.prompt = prompt
        self.password = password
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.prompt, markup=False)
            yield Input(value=self.value, password=self.password, id="answer")
            with Horizontal(id="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")
            yield Static("Enter: OK  ·  Esc: cancel", id="dialog-keys", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.dismiss(self.query_one("#answer", Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseScreen(ModalScreen[str | None]):
    """Pick one of a few choices (id, label); None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, choices: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.prompt = prompt
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.prompt, markup=False)
            yield OptionList(*(Option(label, id=cid) for cid, label in self.choices),
                             id="choices")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
            yield Static("↑↓: choose  ·  Enter: pick the highlighted one  ·  Esc: cancel",
                         id="dialog-keys", markup=False)

    def on_mount(self) -> None:
        options = self.query_one("#choices", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
