"""Small reusable widgets of the wizard (their DEFAULT_CSS lives with them)."""

from __future__ import annotations

from textual import events
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.widgets import Header, Static


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
