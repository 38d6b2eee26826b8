"""The only place that talks SSH: one asyncssh connection per node, reused for every command.

Facts that shape this module are in SSH-NOTES.md: asyncssh has no accept-new, run(timeout=)
does not stop the remote command, a dropped connection returns exit status None, OpenSSH
allows ~10 sessions per connection, and a sudo password sent to a NOPASSWD account becomes the
command's stdin. Each of those is handled here so that no step has to know about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import inspect
import os
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from omwizard.plan.model import Node
from omwizard.remote import handshake, sshconfig
from omwizard.remote.mux import CommandMux, MuxLost, MuxUnavailable
from omwizard.remote.results import (  # re-exported: the public names of this module
    CommandTimeout,
    HostKeyError,
    RemoteError,
    RunResult,
    TunnelRefused,
    command_timeout_cap,
    quote_argv,
    sha256,
)
from omwizard.remote.writes import WRITE_REFUSED, write_script

__all__ = [
    "CommandTimeout", "HostKeyError", "Remote", "RemoteError", "RemotePool", "RunResult",
    "command_timeout_cap", "pin_host_key", "quote_argv", "sha256",
]

# concurrent sessions per connection: OpenSSH's MaxSessions is 10 (SSH-NOTES); a check runs
# its steps at once, so a node has several live probes open together. A server that allows
# fewer refuses the channel: _open_session waits and retries.
SESSIONS_PER_CONNECTION = 8
# commands at once on a node's command channel (remote.mux): each is a process on the node
MUX_COMMANDS_AT_ONCE = 32
SESSION_RETRIES = 6
CONNECTS_AT_ONCE = 10
CONNECT_RETRIES = 3
# a sudo command sent before the mode is known (Remote._sudo_first): `sudo -n` said no
SUDO_PROBE_EXIT = 97
SUDO_PROBE_MARK = "==OMW-SUDO-N-REFUSED "

ConfirmHostKey = Callable[[Node, str, int, str], Awaitable[bool] | bool]
AskPassword = Callable[[Node, str], Awaitable[str | None] | str | None]
LineSink = Callable[[str], None]
_T = TypeVar("_T")


async def _maybe_await(value: Awaitable[_T] | _T) -> _T:
    """The answer of a hook that may be sync or async (the faces pass either)."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass
class _Output:
    """A command's outcome as the channel gave it: bytes for a binary run, else text."""

    command: str
    status: int | None  # None: the connection was lost
    stdout: str | bytes
    stderr: str | bytes

    def as_text(self) -> RunResult:
        return RunResult(self.command, self.status, _text(self.stdout), _text(self.stderr))


def _text(data: str | bytes) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _known_hosts_match(path: Path, host: str, port: int) -> list[asyncssh.SSHKey]:
    if not path.exists():
        return []
    try:
        known = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError):
        return []
    addr = host if _is_ip(host) else ""
    keys = known.match(host, addr, port if port != 22 else None)[0]
    return list(keys)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def pin_host_key(path: Path, host: str, port: int, key: asyncssh.SSHKey) -> None:
    """Append the key to known_hosts under an exclusive lock (0600), OpenSSH format."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = host if port == 22 else f"[{host}]:{port}"
    line = f"{name} {key.export_public_key('openssh').decode().strip()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _hop_words(node: Node, hop: sshconfig.Hop, via: sshconfig.Hop | None,
               jump_for: bool) -> str:
    """How an operator tells the hops of a route apart in a message ('' for a direct node)."""
    if jump_for:
        return f" (jump host {hop.name}, ProxyJump)"
    if via is not None:
        return f" (reached through jump host {via.name})"
    return ""


def _as_node(exc: RemoteError, node: str) -> RemoteError:
    """A jump host's failure, said for another node behind it (same type, same evidence)."""
    again = copy.copy(exc)
    again.node = node
    again.args = (f"{node}: {exc.message}",)
    return again


OpenJump = Callable[
    [tuple[sshconfig.Hop, ...], "asyncssh.SSHClientConnection | None"],
    Awaitable[asyncssh.SSHClientConnection],
]


class JumpHosts:
    """Jump-host connections shared by the nodes behind them: one per chain, opened once
    (SSH-NOTES: asyncssh's ProxyJump string would open a new one per target)."""

    def __init__(self) -> None:
        self._conns: dict[tuple[sshconfig.Hop, ...], asyncssh.SSHClientConnection] = {}
        self._locks: dict[tuple[sshconfig.Hop, ...], asyncio.Lock] = {}
        self.opened = 0  # connections made (a test's proof that one bastion serves all)
        self._failed: dict[tuple[sshconfig.Hop, ...], RemoteError] = {}

    async def open(self, chain: tuple[sshconfig.Hop, ...], opener: OpenJump,
                   ) -> asyncssh.SSHClientConnection:
        lock = self._locks.setdefault(chain, asyncio.Lock())
        async with lock:
            conn = self._conns.get(chain)
            if conn is not None and not conn.is_closed():
                return conn
            if chain in self._failed:  # said once, not retried by every node behind it
                raise self._failed[chain]
            before = self._conns.get(chain[:-1]) if len(chain) > 1 else None
            try:
                conn = await opener(chain, before)
            except RemoteError as exc:
                self._failed[chain] = exc
                raise
            self.opened += 1
            self._conns[chain] = conn
            return conn

    def forget_failures(self) -> None:
        self._failed.clear()

    async def close(self) -> None:
        for conn in reversed(list(self._conns.values())):  # the innermost first
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
        self._conns.clear()


class Remote:
    """One node's SSH connection, with sudo and file helpers on top."""

    def __init__(
        self,
        node: Node,
        *,
        confirm_host_key: ConfirmHostKey | None = None,
        ask_password: AskPassword | None = None,
        connect_gate: asyncio.Semaphore | None = None,
        jumps: JumpHosts | None = None,
    ) -> None:
        self.node = node
        self._jumps = jumps or JumpHosts()
        self._own_jumps = jumps is None  # a Remote outside a pool closes its jump hosts
        self._confirm = confirm_host_key
        self._ask_password = ask_password
        self._gate = connect_gate or asyncio.Semaphore(CONNECTS_AT_ONCE)
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(SESSIONS_PER_CONNECTION)
        self._mux: CommandMux | None = None  # this connection's command channel
        self._mux_off: object | None = None  # the connection whose node cannot run it
        self._mux_slots = asyncio.Semaphore(MUX_COMMANDS_AT_ONCE)
        self._sudo_mode: str | None = None  # "none" | "nopasswd" | "password"
        self._sudo_password: str | None = None
        self._sudo_lock = asyncio.Lock()  # concurrent first sudo commands: one password path
        self.connects = 0
        self.channels = 0
        self._failure: RemoteError | None = None

    # -- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """Connect once; a node that failed stays failed until forget_failure (no retry storm)."""
        async with self._lock:
            if self.connected:
                return
            if self._failure is not None:
                raise self._failure
            try:
                await self._connect()
            except RemoteError as exc:
                self._failure = exc
                raise

    def forget_failure(self) -> None:
        self._failure = None

    @property
    def failure(self) -> RemoteError | None:
        """Why the last connect failed (the node is unreachable until forget_failure)."""
        return self._failure

    async def _connect(self) -> None:
        try:
            path = sshconfig.route(self.node)
        except sshconfig.SshConfigError as exc:
            raise RemoteError(self.node.name, exc.problem, exc.fix) from exc
        tunnel: asyncssh.SSHClientConnection | None = None
        for i in range(len(path.jumps)):
            try:
                tunnel = await self._jumps.open(path.jumps[: i + 1], self._open_jump)
            except RemoteError as exc:
                if exc.node == self.node.name:
                    raise
                raise _as_node(exc, self.node.name) from exc
        self._conn = await self._open(path.target, tunnel, path.jumps[-1] if path.jumps else None)
        self.connects += 1

    async def _open_jump(self, chain: tuple[sshconfig.Hop, ...],
                         tunnel: asyncssh.SSHClientConnection | None,
                         ) -> asyncssh.SSHClientConnection:
        """A jump host of this node's route (opened once per pool; its key checked too)."""
        return await self._open(chain[-1], tunnel, chain[-2] if len(chain) > 1 else None,
                                jump_for=True)

    async def _open(self, hop: sshconfig.Hop, tunnel: asyncssh.SSHClientConnection | None,
                    via: sshconfig.Hop | None, *, jump_for: bool = False,
                    ) -> asyncssh.SSHClientConnection:
        """One authenticated connection to `hop`, through `tunnel` (a jump host) when given,
        with the plan's known_hosts and host-key policy: unknown keys asked or refused."""
        ssh = self.node.ssh
        known_hosts = Path(os.path.expanduser(ssh.known_hosts))
        host, port = hop.host, hop.port
        what = _hop_words(self.node, hop, via, jump_for)
        if not _known_hosts_match(known_hosts, host, port):
            await self._first_contact(known_hosts, host, port, tunnel, what)
        options: dict[str, object] = {
            "port": port,
            "username": hop.user,
            "known_hosts": str(known_hosts),
            "connect_timeout": ssh.connect_timeout,
            "keepalive_interval": 15,
            "keepalive_count_max": 3,
            "config": None,  # the route is resolved already (sshconfig); nothing re-applied
        }
        if tunnel is not None:
            options["tunnel"] = tunnel
        keys = self._client_keys(hop)
        if keys is not None:
            options["client_keys"] = keys
        last: Exception | None = None
        for attempt in range(CONNECT_RETRIES):
            try:
                async with self._gate:
                    conn = await handshake.connect(host, **options)  # fewer round trips
                return conn
            except asyncssh.HostKeyNotVerifiable as exc:
                await self._raise_changed_key(known_hosts, host, port, tunnel, exc)
            except asyncssh.PermissionDenied as exc:
                key = ("the key " + ", ".join(hop.identities) if hop.identities
                       else "ssh-agent's keys")
                where = (f"the ssh config's block for {hop.name}" if jump_for
                         else "ssh.user and ssh.identity in the plan (or the ssh config)")
                raise RemoteError(
                    self.node.name,
                    f"SSH login as {hop.label()}{what} was refused ({exc.reason}): "
                    f"the server did not accept {key}",
                    f"check {where} (or load the key into ssh-agent) and that the public key "
                    f"is in ~{hop.user}/.ssh/authorized_keys there; try "
                    f"`ssh -p {port} {hop.user}@{host}`",
                ) from exc
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                last = exc
                if _cause(exc) == "resolve":
                    break  # a name that does not resolve will not on a retry either
                await asyncio.sleep(0.3 * (2**attempt))
        error = connect_error(self.node, host, port, last)
        if what:
            error = RemoteError(self.node.name, f"{error.message}{what}", error.remedy)
        raise error

    def _client_keys(self, hop: sshconfig.Hop) -> list[str] | None:
        """The hop's key files, loaded; None: ssh-agent's keys and the default ones. As
        OpenSSH: a missing file is skipped when another is there, and a passphrase-protected
        key is left to ssh-agent (asyncssh cannot ask for its passphrase here)."""
        if not hop.identities:
            return None
        loaded: list[str] = []  # paths, so that asyncssh pairs a -cert.pub beside them
        locked: list[str] = []
        for path in hop.identities:
            try:
                asyncssh.read_private_key(path)
                loaded.append(path)
            except OSError:
                continue
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
                locked.append(path)
        if loaded:
            return loaded
        if locked and os.environ.get("SSH_AUTH_SOCK"):
            return None
        if locked:
            raise RemoteError(
                self.node.name, f"the key {locked[0]} for {hop.label()} needs its passphrase",
                f"load it into ssh-agent (`ssh-add {locked[0]}`) and run omwizard where "
                "SSH_AUTH_SOCK is set, or use a key without a passphrase")
        raise RemoteError(
            self.node.name, f"no key file for {hop.label()} exists: {', '.join(hop.identities)}",
            "correct ssh.identity in the plan (or IdentityFile in the ssh config), or remove "
            "it to use ssh-agent's keys")

    async def _fetch_key(self, host: str, port: int,
                         tunnel: asyncssh.SSHClientConnection | None = None) -> asyncssh.SSHKey:
        try:
            async with self._gate:
                key = await asyncio.wait_for(
                    asyncssh.get_server_host_key(host, port, tunnel=tunnel or (), config=None),
                    self.node.ssh.connect_timeout,
                )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise connect_error(self.node, host, port, exc) from exc
        if key is None:
            raise RemoteError(self.node.name, f"{host}:{port} offered no host key")
        return key

    async def _first_contact(self, known_hosts: Path, host: str, port: int,
                             tunnel: asyncssh.SSHClientConnection | None = None,
                             what: str = "") -> None:
        """Unknown host: only a key exchange (no credentials sent), then ask or refuse."""
        key = await self._fetch_key(host, port, tunnel)
        fingerprint = key.get_fingerprint("sha256")
        accepted = False
        if self._confirm is not None:
            accepted = bool(await _maybe_await(self._confirm(self.node, host, port, fingerprint)))
        if not accepted:
            raise HostKeyError(
                self.node.name,
                f"host key of {host}:{port}{what} is not in {known_hosts} ({fingerprint})",
                "compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
                "on that host, then accept it in the wizard or set ssh.host_keys: accept-new",
                fingerprint,
            )
        pin_host_key(known_hosts, host, port, key)

    async def _raise_changed_key(
        self, known_hosts: Path, host: str, port: int,
        tunnel: asyncssh.SSHClientConnection | None, exc: Exception,
    ) -> None:
        known = _known_hosts_match(known_hosts, host, port)
        key = await self._fetch_key(host, port, tunnel)
        fingerprint = key.get_fingerprint("sha256")
        was = ", ".join(dict.fromkeys(k.get_fingerprint("sha256") for k in known)) or "(none)"
        raise HostKeyError(
            self.node.name,
            f"HOST KEY CHANGED for {host}:{port}: known {was}, offered {fingerprint}",
            "this may be an attack or a reinstalled node; verify the new key on the node's "
            f"console, then remove the old entry (`ssh-keygen -R {host} -f {known_hosts}`)",
            fingerprint,
            was,
        ) from exc

    async def close(self) -> None:
        if self._mux is not None:
            self._mux.close()
            self._mux = None
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
            self._conn = None
        if self._own_jumps:
            await self._jumps.close()

    # -- commands ---------------------------------------------------------------------------

    async def _ensure(self) -> asyncssh.SSHClientConnection:
        if not self.connected:
            await self.connect()
        assert self._conn is not None
        return self._conn

    async def sudo_mode(self) -> str:
        """How this node reaches root: none (is root / sudo never), nopasswd, password.

        Concurrent callers share one probe (a lock); a sudo command sent before the mode is
        known folds the probe into itself instead (_run), so it costs no round trip."""
        if self._sudo_mode is not None:
            return self._sudo_mode
        async with self._sudo_lock:
            if self._sudo_mode is not None:
                return self._sudo_mode
            if self._no_sudo():
                self._sudo_mode = "none"
                return self._sudo_mode
            probe = (await self._exec("sudo -n true", None, 20, None)).as_text()
            if probe.ok:
                self._sudo_mode = "nopasswd"
                return self._sudo_mode
            return await self._sudo_refused(probe.output)

    def _no_sudo(self) -> bool:
        ssh = self.node.ssh
        return ssh.sudo == "never" or (ssh.user == "root" and ssh.sudo != "always")

    async def _sudo_refused(self, said: str) -> str:
        """`sudo -n` said no (its words): the password path, or why this user cannot sudo.
        Called with the sudo lock held."""
        ssh = self.node.ssh
        text = said.lower()
        if "password is required" in text or "a terminal is required" in text:
            password = None
            if self._ask_password is not None:
                password = await _maybe_await(
                    self._ask_password(self.node, f"sudo password for {ssh.user}@{self.node.name}")
                )
            if not password:
                raise RemoteError(
                    self.node.name,
                    f"sudo needs a password for {ssh.user} and none was given",
                    "run interactively to be asked, set OMW_SUDO_PASSWORD, "
                    "or allow NOPASSWD for this user",
                )
            check = (await self._exec("sudo -S -p '' true", password + "\n", 20, None)).as_text()
            if not check.ok:
                raise RemoteError(
                    self.node.name,
                    f"sudo refused the password for {ssh.user}",
                    "check the sudo password (it is asked again on the next run)",
                )
            self._sudo_password = password
            self._sudo_mode = "password"
            return self._sudo_mode
        raise RemoteError(
            self.node.name,
            f"{ssh.user} cannot use sudo: {said or 'no output'}",
            "log in as root (ssh.user: root) or give this user sudo rights",
        )

    async def _sudo_first(self, command: str, stdin: str | bytes | None, timeout: float,
                          on_line: LineSink | None, binary: bool) -> _Output | None:
        """A sudo command while the mode is still unknown, with the probe folded in: the
        wire runs `sudo -n true` and, when that passes, the command under `sudo -n` (no
        password is ever sent: SSH-NOTES' NOPASSWD danger); when it does not, the command
        never ran and the wire ends with SUDO_PROBE_EXIT and sudo's words after a marker
        line on stderr. None: the mode is known now (password, or another caller's probe);
        run the command again the ordinary way."""
        inner = f"sudo -n -- sh -c {shlex.quote(command)}"
        wire = (f"m=$(sudo -n true 2>&1) && exec {inner}; "
                f"printf '{SUDO_PROBE_MARK}%s\\n' \"$m\" >&2; exit {SUDO_PROBE_EXIT}")
        out = await self._exec(wire, stdin, timeout, on_line, binary=binary, shown=command)
        said = _text(out.stderr)
        if out.status == SUDO_PROBE_EXIT and SUDO_PROBE_MARK in said:
            async with self._sudo_lock:
                if self._sudo_mode is None:
                    await self._sudo_refused(said.split(SUDO_PROBE_MARK, 1)[1].strip())
            return None
        if out.status is not None and self._sudo_mode is None:
            self._sudo_mode = "nopasswd"  # sudo -n ran the command
        return out

    async def run(
        self,
        argv: list[str] | str,
        *,
        sudo: bool = False,
        input: str | bytes | None = None,
        timeout: float = 60,
        on_line: LineSink | None = None,
    ) -> RunResult:
        """Run one command; as root through sudo when asked and needed."""
        out = await self._run(argv, sudo=sudo, input=input, timeout=timeout, on_line=on_line)
        return out.as_text()

    async def _run(
        self,
        argv: list[str] | str,
        *,
        sudo: bool = False,
        input: str | bytes | None = None,
        timeout: float = 60,
        on_line: LineSink | None = None,
        binary: bool = False,
    ) -> _Output:
        """run(), with the output left as bytes when ``binary`` (the file helpers need that)."""
        command = quote_argv(argv)
        timeout = min(timeout, command_timeout_cap() or timeout)
        wire = command
        stdin: str | bytes | None = input
        if sudo and self._sudo_mode is None and on_line is None and not self._no_sudo():
            first = await self._sudo_first(command, input, timeout, on_line, binary)
            if first is not None:
                return first
        if sudo:
            mode = await self.sudo_mode()
            if mode != "none":
                inner = f"sh -c {shlex.quote(command)}"
                if mode == "nopasswd":
                    wire = f"sudo -n -- {inner}"
                else:
                    wire = f"sudo -S -p '' -- {inner}"
                    secret = (self._sudo_password or "") + "\n"
                    if isinstance(input, bytes):
                        stdin = secret.encode() + input
                    else:
                        stdin = secret + (input or "")
        return await self._exec(wire, stdin, timeout, on_line, binary=binary, shown=command)

    async def _exec(
        self,
        wire: str,
        stdin: str | bytes | None,
        timeout: float,
        on_line: LineSink | None,
        *,
        binary: bool = False,
        shown: str | None = None,
    ) -> _Output:
        """One command on the node: over its command channel (remote.mux), or on a session
        channel of its own when the node cannot run that (no python3) or OMW_MUX=0."""
        conn = await self._ensure()
        shown = shown or wire
        if os.environ.get("OMW_MUX", "1") != "0" and self._mux_off is not conn:
            out = await self._mux_exec(conn, wire, stdin, timeout, on_line, binary, shown)
            if out is not None:
                return out
        return await self._exec_channel(conn, wire, stdin, timeout, on_line, binary, shown)

    async def _mux_exec(self, conn: asyncssh.SSHClientConnection, wire: str,
                        stdin: str | bytes | None, timeout: float, on_line: LineSink | None,
                        binary: bool, shown: str) -> _Output | None:
        """`wire` as a frame on the connection's command channel, started by the first
        command (counted once in `channels`). None: the node cannot run the channel's
        program (decided once per connection), or the channel is still opening; the
        command never ran and goes on a channel of its own."""
        mux = self._mux
        if mux is not None and mux.conn is conn and mux.unavailable:
            self._mux_off = conn  # as its first command says below (this one came between)
            return None
        if mux is not None and mux.conn is conn and mux.starting:
            return None  # a burst at the start (a check's first reads): each on its own
            # channel, in parallel with the program's, costs 2 round trips, not 3
        if mux is None or mux.conn is not conn or mux.failed:
            mux = self._mux = CommandMux(
                conn, lambda line: self._open_session(conn, line, True))
            self.channels += 1
        cmd = mux.command(wire, None if stdin is None else _bytes(stdin), on_line)
        async with self._mux_slots:
            try:
                async with asyncio.timeout(timeout):
                    status, out, err = await mux.run(cmd)
            except TimeoutError as exc:
                mux.kill(cmd)
                raise self._timed_out(shown, timeout) from exc
            except MuxUnavailable:
                self._mux_off = conn
                return None
            except MuxLost as exc:
                if conn.is_closed():
                    self._conn = None  # the next command reconnects
                return _Output(shown, None, "", f"connection lost: {exc}")
        if status < 0:
            status = 255  # killed by a signal
        if binary:
            return _Output(shown, status, out, err)
        return _Output(shown, status, _text(out), _text(err))

    def _timed_out(self, shown: str, timeout: float) -> CommandTimeout:
        return CommandTimeout(
            self.node.name,
            f"`{shown}` did not finish within {timeout:g}s; its effect is unknown",
            "re-run the check; if it hangs again, look at the node directly",
        )

    async def _exec_channel(self, conn: asyncssh.SSHClientConnection, wire: str,
                            stdin: str | bytes | None, timeout: float,
                            on_line: LineSink | None, binary: bool, shown: str) -> _Output:
        """`wire` on a session channel of its own (2 round trips, 3 with stdin)."""
        async with self._sessions:
            process: asyncssh.SSHClientProcess[Any] | None = None
            try:
                async with asyncio.timeout(timeout):
                    self.channels += 1
                    process = await self._open_session(conn, wire, binary)
                    if stdin is not None:
                        if isinstance(stdin, str) and binary:
                            stdin = stdin.encode()
                        elif isinstance(stdin, bytes) and not binary:
                            stdin = stdin.decode()
                        process.stdin.write(stdin)
                    process.stdin.write_eof()
                    out, err = await asyncio.gather(
                        _drain(process.stdout, on_line), _drain(process.stderr, on_line)
                    )
                    completed = await process.wait(check=False)
                    status = completed.exit_status
                    if status is not None and status < 0:
                        status = 255  # killed by a signal
            except TimeoutError as exc:
                if process is not None:
                    with contextlib.suppress(Exception):
                        process.kill()
                    process.close()
                raise self._timed_out(shown, timeout) from exc
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, OSError) as exc:
                self._conn = None
                return _Output(shown, None, "", f"connection lost: {_describe(exc)}")
        if status is None:
            self._conn = None  # keepalive dropped it: the next command reconnects
        return _Output(shown, status, out, err)

    async def _open_session(self, conn: asyncssh.SSHClientConnection, wire: str,
                            binary: bool) -> asyncssh.SSHClientProcess[Any]:
        """A session channel running `wire`. A server whose MaxSessions is below ours
        refuses the channel on a live connection ("open failed"): wait for one of ours to
        end and try again (bounded), instead of taking it for a lost connection."""
        for attempt in range(SESSION_RETRIES):
            try:
                return await conn.create_process(
                    wire, encoding=None if binary else "utf-8", errors="replace")
            except asyncssh.ChannelOpenError:
                if conn.is_closed() or attempt == SESSION_RETRIES - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # -- files ------------------------------------------------------------------------------

    async def read_file(self, path: str, *, sudo: bool = True) -> bytes | None:
        """The file's bytes, or None when it does not exist (one round trip)."""
        q = shlex.quote(path)
        result = await self._run(
            f"if [ -e {q} ]; then cat -- {q}; else exit 44; fi", sudo=sudo, binary=True
        )
        if result.status == 44:
            return None
        if result.status != 0:
            err = _text(result.stderr)
            raise RemoteError(
                self.node.name, f"cannot read {path}: {err.strip() or result.status}"
            )
        return _bytes(result.stdout)

    async def write_file(
        self,
        path: str,
        data: bytes,
        *,
        sudo: bool = True,
        backup: str | None = None,
        mode: str = "0644",
        expect: str | None = None,
    ) -> bool:
        """Back up, then write atomically: temp file in the same directory, fsync, rename.

        Owner and mode of an existing file are kept; the backup keeps them too (cp -p).
        The whole dance is one shell script, so it is one round trip, and the temp file is
        removed when anything fails, so no half-written file is ever left behind.

        expect: a compare-and-swap in the same script: the sha256 the file must have now (or
        ABSENT: it must not exist); when it differs nothing is backed up or written and the
        answer is False, so a caller that transformed a copy it read earlier reads again.
        """
        script = write_script(path, backup=backup, mode=mode, expect=expect)
        result = await self._run(script, sudo=sudo, input=data, binary=True)
        if expect is not None and result.status == WRITE_REFUSED:
            return False
        if result.status != 0:
            err = _text(result.stderr)
            if result.status is None:
                raise RemoteError(
                    self.node.name,
                    f"connection lost while writing {path}",
                    "re-run: the write is atomic, so the file is either old or new",
                )
            raise RemoteError(
                self.node.name,
                f"cannot write {path}: {err.strip() or 'exit ' + str(result.status)}",
                "check free space and that the file system is writable; "
                "the file was left as it was",
            )
        return True

    async def run_changes(self, script: str, data: bytes, *, timeout: float) -> RunResult:
        """A batch of changes (remote.batch) as root, its stdin given as bytes (file contents
        are not always text); the output as text, for its markers."""
        out = await self._run(script, sudo=True, input=data, timeout=timeout, binary=True)
        return out.as_text()

    # -- forwards ---------------------------------------------------------------------------

    async def forward_local(
        self, dest_host: str, dest_port: int
    ) -> tuple[asyncssh.SSHListener, int]:
        """A local port (127.0.0.1, ephemeral) that reaches dest through this node."""
        conn = await self._ensure()
        listener = await conn.forward_local_port("127.0.0.1", 0, dest_host, dest_port)
        return listener, listener.get_port()

    async def open_tunnel(
        self, dest_host: str, dest_port: int
    ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        """A TCP connection from this node to dest (one channel open, no local port); the
        node's own refusal (its connect failed) raises TunnelRefused with sshd's reason."""
        conn = await self._ensure()
        try:
            return await conn.open_connection(dest_host, dest_port, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            raise TunnelRefused(self.node.name, exc.reason or "channel open failed") from None


async def _drain(stream: asyncssh.SSHReader[Any], on_line: LineSink | None) -> str | bytes:
    """All of a stream (text, or bytes for a binary run), each line passed to on_line."""
    if on_line is None:
        return await stream.read()
    texts: list[str] = []
    raw: list[bytes] = []
    async for line in stream:
        if isinstance(line, bytes):
            raw.append(line)
            text = line.decode(errors="replace")
        else:
            texts.append(line)
            text = line
        on_line(text.rstrip("\n"))
    return b"".join(raw) if raw else "".join(texts)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text


def _cause(exc: BaseException | None) -> str:
    """Why a connection failed: resolve | refused | timeout | unreachable | other."""
    import errno
    import socket

    if isinstance(exc, socket.gaierror):
        return "resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    return "other"


def connect_error(node: Node, host: str, port: int, exc: BaseException | None) -> RemoteError:
    """The connection failure said for its cause, with the remedy that cause calls for."""
    cause = _cause(exc)
    where = f"{host}:{port}"
    if cause == "resolve":
        return RemoteError(
            node.name,
            f"cannot resolve the host name {host!r} ({_describe(exc)})",
            f"check the spelling of nodes[].host for {node.name}, that DNS or /etc/hosts on "
            "this machine knows the name, or put the node's IP address in host; an alias needs "
            f"a `Host {host}` block with HostName in ~/.ssh/config (or the plan's ssh.config)",
        )
    if cause == "refused":
        return RemoteError(
            node.name,
            f"cannot connect to {where}: connection refused",
            f"{host} answers but nothing listens on port {port}: start sshd on the node "
            "(`systemctl start ssh`) or set ssh.port to the port sshd listens on",
        )
    if cause == "timeout":
        return RemoteError(
            node.name,
            f"cannot connect to {where}: no answer within {node.ssh.connect_timeout:g}s",
            f"check that {host} is the node's address and the node is up (`ping {host}`); a "
            f"firewall that drops port {port} looks the same; a slow link: raise "
            "ssh.connect_timeout",
        )
    if cause == "unreachable":
        return RemoteError(
            node.name,
            f"cannot connect to {where}: {_describe(exc)}",
            f"this machine has no route to {host}: check the address in nodes[].host and "
            "this machine's network (VPN, routes)",
        )
    return RemoteError(
        node.name,
        f"cannot connect to {where}: {_describe(exc)}",
        f"the SSH handshake with {where} failed: check that sshd (not another service) "
        f"listens on port {port} and that its log on the node says why",
    )


class RemotePool:
    """One Remote per node, created lazily; shared connect gate against MaxStartups."""

    def __init__(
        self,
        *,
        confirm_host_key: ConfirmHostKey | None = None,
        ask_password: AskPassword | None = None,
    ) -> None:
        self.confirm_host_key = confirm_host_key
        self.ask_password = ask_password
        self._gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
        self._remotes: dict[str, Remote] = {}
        self._jumps = JumpHosts()

    def get(self, node: Node) -> Remote:
        remote = self._remotes.get(node.name)
        if remote is None:
            remote = Remote(
                node,
                confirm_host_key=self.confirm_host_key,
                ask_password=self.ask_password,
                connect_gate=self._gate,
                jumps=self._jumps,
            )
            self._remotes[node.name] = remote
        return remote

    def failure(self, node: Node) -> RemoteError | None:
        """Why the node's connection failed this run (None: not tried, or reached)."""
        remote = self._remotes.get(node.name)
        return remote.failure if remote is not None else None

    def forget_failures(self) -> None:
        for remote in self._remotes.values():
            remote.forget_failure()
        self._jumps.forget_failures()

    @property
    def jump_connects(self) -> int:
        """Jump-host connections opened so far (one per bastion, shared by its nodes)."""
        return self._jumps.opened

    @property
    def remotes(self) -> dict[str, Remote]:
        return dict(self._remotes)

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self._remotes.values()), return_exceptions=True)
        await self._jumps.close()
