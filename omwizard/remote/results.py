"""What a remote command gives back and the errors a node raises: no asyncssh here.

Kept apart from omwizard.remote.ssh so the step API, the sections and the TUI's first screen load
without importing asyncssh (about a tenth of a second), which only the pool needs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass


@dataclass
class RunResult:
    """What one remote command did. exit_status None means the connection was lost: unknown."""

    command: str
    exit_status: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()

    def evidence(self) -> str:
        text = self.output
        if len(text) > 2000:
            text = text[:2000] + "\n[...]"
        status = "lost connection" if self.exit_status is None else f"exit {self.exit_status}"
        return f"$ {self.command}\n{text}\n({status})".replace("\n\n(", "\n(")


class RemoteError(Exception):
    """A node could not be reached or used; message and remedy are for the operator."""

    def __init__(self, node: str, message: str, remedy: str = "") -> None:
        super().__init__(f"{node}: {message}")
        self.node = node
        self.message = message
        self.remedy = remedy


class TunnelRefused(RemoteError):
    """The node could not open a forwarded connection: message is sshd's reason (its connect
    was refused, no route, ...)."""


class HostKeyError(RemoteError):
    """The node's host key is unknown (strict) or differs from the pinned one."""

    def __init__(
        self, node: str, message: str, remedy: str, fingerprint: str, known: str = ""
    ) -> None:
        super().__init__(node, message, remedy)
        self.fingerprint = fingerprint
        self.known_fingerprint = known


class CommandTimeout(RemoteError):
    """A command outlived its bound; the remote side was killed and its state is unknown."""


def command_timeout_cap() -> float | None:
    """OMW_COMMAND_TIMEOUT: an upper bound (seconds) for any one remote command, for operators
    on slow links who want a hang reported sooner (and for the hang tests)."""
    value = os.environ.get("OMW_COMMAND_TIMEOUT", "")
    try:
        cap = float(value)
    except ValueError:
        return None
    return cap if cap > 0 else None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def quote_argv(argv: list[str] | str) -> str:
    """A command line for the remote shell: lists are quoted token by token, strings trusted.

    Strings are only built inside omwizard from constants and shlex-quoted values.
    """
    if isinstance(argv, str):
        return argv
    return shlex.join(str(a) for a in argv)
