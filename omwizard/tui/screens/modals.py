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
    """A yes/no question with an optional body (what will be changed or undone)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str = "", yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            if self.body:
                with VerticalScroll(id="dialog-body"):
                    yield Static(self.body, markup=False, id="dialog-text")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} [y]", id="yes", variant="primary")
                yield Button(f"{self.no} [n]", id="no")

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
        super().__init__(f"Unknown host key: {node}", body, yes="Trust and pin", no="Refuse")
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
                yield Button("OK [enter]", id="ok", variant="primary")
                yield Button("Cancel [esc]", id="cancel")

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
                yield Button("Cancel [esc]", id="cancel")

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
