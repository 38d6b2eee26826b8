"""``/etc/exports``: one ``PATH CLIENT(options)`` line per OM node, as the documentation does.

The documentation: ``/opt/omdata 10.1.1.2(rw,sync,no_subtree_check,no_root_squash)``, one line
per node except the storage node. An operator's file may export the same path to several
clients on one line, continue lines with a backslash, set line defaults (``-ro``), or write
options in another order; all of that is recognised, and every line we do not touch stays byte
for byte. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_CLIENT = re.compile(r"^[A-Za-z0-9._*?/:@-]+$")
_OPTIONS = re.compile(r"^[a-z0-9_=,.:/-]+$")
_TOKEN = re.compile(r'"[^"]*"|[^\s"(]+(?:\([^)]*\))?|\([^)]*\)')


class ExportsConflict(ValueError):
    """The client is already exported that path with other options."""

    def __init__(self, path: str, client: str, options: tuple[str, ...], line: int) -> None:
        super().__init__(
            f"/etc/exports line {line + 1} already exports {path} to {client} "
            f"with ({','.join(options)})"
        )
        self.path = path
        self.client = client
        self.options = options
        self.line = line


@dataclass(frozen=True)
class ExportClient:
    """One client of an export line and where its token sits (physical line, span)."""

    path: str
    client: str
    options: tuple[str, ...]
    line: int  # physical line index of the client token
    start: int  # span of the token (with the whitespace before it) in that physical line
    end: int
    first_line: int  # physical lines of the whole logical entry
    last_line: int


def _norm_path(path: str) -> str:
    path = path.strip('"')
    return path.rstrip("/") or "/"


def _options(text: str) -> tuple[str, ...]:
    return tuple(o for o in text.split(",") if o)


def _clients(text: str) -> list[ExportClient]:
    """Every (path, client) of the file, with backslash continuations followed."""
    lines = text.splitlines()
    out: list[ExportClient] = []
    i = 0
    while i < len(lines):
        first = i
        group = [i]
        while lines[i].endswith("\\") and i + 1 < len(lines):
            i += 1
            group.append(i)
        i += 1
        tokens: list[tuple[int, int, int, str]] = []  # (line, start, end, token)
        for index in group:
            body = lines[index]
            if body.lstrip().startswith("#") and index == first:
                break
            cut = body.find("#")
            if cut >= 0:
                body = body[:cut]
            if body.endswith("\\"):
                body = body[:-1]
            previous_end = 0
            for match in _TOKEN.finditer(body):
                tokens.append((index, previous_end, match.end(), match.group(0)))
                previous_end = match.end()
        if not tokens:
            continue
        path = _norm_path(tokens[0][3])
        defaults: tuple[str, ...] = ()
        for index, start, end, token in tokens[1:]:
            if token.startswith("-"):
                defaults = _options(token[1:])
                continue
            name, _, rest = token.partition("(")
            opts = _options(rest.rstrip(")")) if rest else ()
            merged = tuple(dict.fromkeys(defaults + opts))
            out.append(
                ExportClient(path, name.lower(), merged, index, start, end, first, group[-1])
            )
    return out


def _check(path: str, client: str, options: str | None = None) -> None:
    if not _PATH.match(path):
        raise ValueError(f"export path {path!r} is not an absolute path of safe characters")
    if not _CLIENT.match(client):
        raise ValueError(f"NFS client {client!r} holds unsafe characters")
    if options is not None and not _OPTIONS.match(options):
        raise ValueError(f"export options {options!r} hold characters outside [a-z0-9_=,.:/-]")


def exports_line(path: str, clients: list[tuple[str, str]]) -> str:
    """The documentation's lines: ``PATH CLIENT(options)``, one line per client."""
    if not clients:
        raise ValueError("an export needs at least one client")
    lines = []
    for client, options in clients:
        _check(path, client, options)
        lines.append(f"{path} {client}({options})")
    return "\n".join(lines)


def _find(text: str, path: str, client: str) -> list[ExportClient]:
    target, name = _norm_path(path), client.lower()
    return [c for c in _clients(text) if c.path == target and c.client == name]


def exports_has(text: str, path: str, client: str, options: str) -> bool:
    """Whether the client is exported that path with these options (any order)."""
    _check(path, client, options)
    wanted = frozenset(_options(options))
    return any(frozenset(c.options) == wanted for c in _find(text, path, client))


def exports_conflict(text: str, path: str, client: str, options: str) -> ExportClient | None:
    """An export of the path to the client with other options, if any."""
    _check(path, client, options)
    wanted = frozenset(_options(options))
    for found in _find(text, path, client):
        if frozenset(found.options) != wanted:
            return found
    return None


def exports_ensure(text: str, path: str, client: str, options: str) -> str:
    """Append ``PATH CLIENT(options)`` unless already exported so; conflicts raise."""
    if exports_has(text, path, client, options):
        return text
    conflict = exports_conflict(text, path, client, options)
    if conflict is not None:
        raise ExportsConflict(path, client, conflict.options, conflict.line)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + exports_line(path, [(client, options)]) + "\n"


def exports_remove(text: str, path: str, client: str) -> str:
    """Remove the client's last export of the path; the whole entry if it was the only client."""
    _check(path, client)
    found = _find(text, path, client)
    if not found:
        return text
    target = found[-1]
    siblings = [c for c in _clients(text) if c.first_line == target.first_line and c != target]
    lines = text.splitlines(keepends=True)
    if not siblings:
        del lines[target.first_line : target.last_line + 1]
        return "".join(lines)
    line = lines[target.line]
    line = line[: target.start] + line[target.end :]
    if line.strip(" \t\r\n\\") or target.line == target.first_line:
        lines[target.line] = line
        return "".join(lines)
    # The continuation line held only this client: drop it, and if it ended the entry, the
    # backslash that led to it.
    del lines[target.line]
    if target.line == target.last_line:
        previous = lines[target.line - 1]
        body = previous.rstrip("\r\n")
        ending = previous[len(body) :]
        lines[target.line - 1] = body.rstrip("\\").rstrip(" \t") + ending
    return "".join(lines)
