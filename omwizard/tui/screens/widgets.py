"""Small reusable widgets of the wizard (their DEFAULT_CSS lives with them)."""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Header
from textual.widgets._header import HeaderTitle


class WizardHeader(Header):
    """Textual's Header, safe when screens are switched quickly.

    Header watches the app's and the screen's title and, when either changes, looks up its
    HeaderTitle child. A screen replaced before that child is mounted (or after it is removed)
    made that look-up raise NoMatches and stop the app. Here a missing title simply waits for
    the next change (or is never needed: the screen is gone).
    """

    def _on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # not Header._on_mount: its watcher does not guard NoMatches
        Widget._on_mount(self, event)

        async def set_title() -> None:
            try:
                self.query_one(HeaderTitle).update(self.format_title())
            except Exception:  # noqa: BLE001 - NoMatches / NoScreen: the header is going away
                pass

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)

