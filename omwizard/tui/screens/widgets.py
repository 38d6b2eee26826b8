"""Small reusable widgets of the wizard (their DEFAULT_CSS lives with them)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static


class WizardHeader(Header):
    """Textual's Header, safe when screens are switched quickly.

    Header watches the app's and the screen's title and, when either changes, looks up its
    title child. A screen replaced before that child is mounted (or after it is removed) made
    that look-up raise NoMatches and stop the app. Here a missing title simply waits for the
    next change (or is never needed: the screen is gone). Header's own mount handler is
    replaced through the public route: a handler here that prevents the base classes' default.
    """

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # not Header's handler: its watcher does not guard NoMatches

        async def set_title() -> None:
            try:
                self.query_one("HeaderTitle", Static).update(self.format_title())
            except (NoMatches, NoScreen):  # the title is not there (yet, or any more)
                pass

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)


# -- the grid's status words ------------------------------------------------------------------

# Every status a grid cell can show: its symbol, its full word, a short word (at most 7
# characters, so "symbol word" fits 9 columns) and what it means (the help screen's legend).
STATUS_WORDS: dict[str, tuple[str, str, str, str]] = {
    "ok": ("✓", "ok", "ok", "as the documentation says: nothing to do"),
    "needs-change": ("!", "needs change", "to do", "differs from the documentation: a applies "
                     "the fix (after showing its diff)"),
    "would-change": ("~", "would change", "planned", "a dry run: this change is planned, "
                     "nothing was written"),
    "changed": ("✎", "changed", "changed", "omwizard changed it (journaled: b undoes it)"),
    "rolled-back": ("↶", "rolled back", "undone", "omwizard's change was undone"),
    "failed": ("✗", "failed", "failed", "the check or the change failed: see Details"),
    "skipped": ("-", "skipped", "skipped", "not for this node (its roles), or skipped by you "
                "(s) with a reason"),
    "running": ("⟳", "running", "running", "being checked or applied now"),
}
NOT_CHECKED = ("·", "not checked yet: c checks the step, C the whole section")
FULL_WIDTH = max(len(f"{sym} {full}") for sym, full, _, _ in STATUS_WORDS.values())
SHORT_WIDTH = max(len(f"{sym} {short}") for sym, _, short, _ in STATUS_WORDS.values())


def status_word(status: str, *, short: bool = False) -> str:
    """The cell text of a status: its symbol and its (short) word, never cut."""
    sym, full, brief, _ = STATUS_WORDS.get(status, ("?", status, status, ""))
    return f"{sym} {brief if short else full}"


# the theme colour of each status: told apart by colour as well as by symbol (the built-in
# themes' accent is their warning colour, so a change is not drawn in it); rolled-back is bold
# text, skipped dim
THEME_COLOUR = {"ok": "success", "changed": "primary", "would-change": "warning",
                "needs-change": "warning", "failed": "error", "running": "primary"}


def status_text(status: str | None, theme: Any = None, *, short: bool = False) -> Text:
    """A status as the grid and the legend draw it: symbol and (short) word, in its colour."""
    if not status:
        return Text("·", style="dim")
    colour = getattr(theme, THEME_COLOUR.get(status, ""), None) if theme else None
    style = f"bold {colour}" if colour else "bold"
    if status == "skipped":
        style = "dim"
    return Text(status_word(status, short=short), style=style, no_wrap=True)


class KeyColumn(Vertical):
    """Two keys of the footer, one above the other."""

    DEFAULT_CSS = """
    KeyColumn { width: auto; height: 2; margin-right: 1; }
    KeyColumn FooterKey { margin: 0; }
    """


class KeysFooter(Footer):
    """The Footer on two rows: every key of the screen shown, none cut at 80 columns.

    The keys are laid out column by column, in the order of the screen's bindings: a key and
    its partner (c and C, n and p) share a column; the bindings' own descriptions are the
    labels. The palette key comes last, when there is room for it. (Textual's one-row Footer
    cuts off what does not fit, and its compact style runs grouped keys into each other.)
    """

    DEFAULT_CSS = """
    KeysFooter {
        height: 2;
        FooterKey.-command-palette { dock: none; border-left: none; padding-right: 0; }
        KeyColumn FooterKey, &.-compact KeyColumn FooterKey { margin: 0; }
    }
    """

    def compose(self) -> ComposeResult:
        # Footer's keys (FooterKey is not exported: known by the key they carry)
        widgets = [w for w in super().compose() if hasattr(w, "key_display")]
        keys = [w for w in widgets if not w.has_class("-command-palette")]
        palette = [w for w in widgets if w.has_class("-command-palette")]
        pairs = [keys[i:i + 2] for i in range(0, len(keys), 2)]
        used = sum(max(key_width(k) for k in pair) + 1 for pair in pairs)
        if palette and used + key_width(palette[0]) <= self.app.size.width:
            pairs.append(palette)  # else ctrl+p still opens it, and ? lists it
        for pair in pairs:
            yield KeyColumn(*pair)

    def on_resize(self) -> None:
        """The palette key shown or not: decided again for the new width."""
        if self.is_attached:
            self.call_after_refresh(self.recompose)


def key_width(key: Widget) -> int:
    return len(str(getattr(key, "key_display", ""))) + 1 + len(str(getattr(key, "description", "")))
