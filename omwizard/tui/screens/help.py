"""The key and status legend (`?` on a section screen, "Keys and symbols" in the palette).

The keys listed are the asking screen's own bindings (so the legend never disagrees with
them), then the statuses a grid cell can show, symbol, word and meaning.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from omwizard.tui.screens.widgets import NOT_CHECKED, STATUS_WORDS, status_text, status_word

APP_KEYS = (("quit", "Quit (the session is saved as you go)"),
            ("toggle_theme", "Light or dark theme"),
            ("command_palette", "The palette: every command, by name"),
            ("help", "This list"))


def app_keys(app: App[Any]) -> list[tuple[str, str]]:
    """The App's own keys, wherever the operator is."""
    rows: list[tuple[str, str]] = []
    bindings = [b for _node, b, _enabled, _tip in app.active_bindings.values()]
    for action, what in APP_KEYS:
        for binding in bindings:
            if binding.action == action:
                rows.append((app.get_key_display(binding), what))
                break
    return rows


def screen_keys(screen: Screen[Any]) -> list[tuple[str, str]]:
    """A screen's keys, as it declares them (its key_legend, else its BINDINGS), then the
    App's."""
    legend = getattr(screen, "key_legend", None)
    if callable(legend):
        return list(legend())
    rows = [(screen.app.get_key_display(b), b.tooltip or b.description)
            for b in type(screen).BINDINGS if isinstance(b, Binding) and b.description]
    return rows + [row for row in app_keys(screen.app) if row not in rows]


def screen_name(screen: Screen[Any]) -> str:
    return type(screen).__name__.removesuffix("Screen") or "omwizard"


def keys_table(keys: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in keys:
        table.add_row(key, what)
    return table


def status_table(theme: Any = None) -> Table:
    """Every status as the grid draws it (symbol, word, colour), its short word, its meaning."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for status, (_, _, short, meaning) in STATUS_WORDS.items():
        full = status_word(status)
        table.add_row(status_text(status, theme),
                      status_text(status, theme, short=True) if short not in full else "",
                      meaning)
    table.add_row(NOT_CHECKED[0], "", NOT_CHECKED[1])
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and status symbols; any of Esc, ?, q, Enter closes it."""

    BINDINGS = [
        Binding("escape,question_mark,q,enter", "close", "Close"),
        Binding("up", "scroll(-1)", "Scroll up", show=False),
        Binding("down", "scroll(1)", "Scroll down", show=False),
        Binding("pageup", "scroll(-10)", "Page up", show=False),
        Binding("pagedown", "scroll(10)", "Page down", show=False),
    ]

    def __init__(self, title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Label(f"Keys and symbols: {self.title_text}", id="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Label("Status of a step on a node (the grid's cells)",
                            classes="help-heading first")
                yield Static(status_table(self.app.current_theme), id="help-status")
                yield Label("Keys", classes="help-heading")
                yield Static(keys_table(self.keys), id="help-keys")
                yield Static(Text(
                    "Checks read the node and change nothing, except the shared-folder check, "
                    "which writes one small test file into the shared folder and removes it. "
                    "Nothing else changes before you apply and confirm the diff.",
                    style="italic"), id="help-note")
            yield Static("Esc, ?, Enter: close   ↑↓ PgUp PgDn: scroll", id="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#help-body", VerticalScroll).focus()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#help-body", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
