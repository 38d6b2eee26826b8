"""Secrets out of everything shown or saved: one redactor per session, built from the plan.

The DB and admin passwords come from the plan; a sudo password is added once the operator typed
it (engine.session wraps the face's ask). Values are masked raw, XML-escaped (persistence.xml
holds the password escaped) and URL-encoded (a password in a URL); a short secret only as a
whole token.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omwizard.plan.model import Plan


class Redactor:
    """Masks secret values (raw, XML-escaped, URL-ish) in anything shown or saved."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._values: list[str] = []
        for value in secrets:
            self.add(value)

    def add(self, value: str | None) -> None:
        if not value:
            return
        forms = {value, html.escape(value, quote=True), html.escape(value, quote=False),
                 html.escape(value, quote=True).replace("&#x27;", "&apos;"),  # XML's own
                 urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        for form in forms:
            if form not in self._values:
                self._values.append(form)
        self._values.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if len(value) >= 6:
                text = text.replace(value, "********")
            else:  # a short secret only as a whole token: "x" must not turn exit into e***it
                pattern = rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
                text = re.sub(pattern, "********", text)
        return text


def plan_secrets(plan: Plan) -> list[str | None]:
    """Every secret value the plan holds (None where unset): what must never be shown."""
    admin = plan.database.admin_password
    return [plan.database.password.value, admin.value if admin is not None else None]


def redactor_for(plan: Plan) -> Redactor:
    """A redactor that masks the plan's secrets."""
    return Redactor(plan_secrets(plan))
