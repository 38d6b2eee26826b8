"""An SSH login in about 4 round trips instead of 7: asyncssh's client, told not to wait.

After the key exchange asyncssh 2.24 spends four round trips on a key login: SERVICE_REQUEST
and wait for SERVICE_ACCEPT; a USERAUTH `none` request only to learn the server's methods; a
public-key query without a signature (wait for PK_OK); then the signed request. OpenSSH's own
client signs at once, and RFC 4252 lets a client send its requests without waiting for the
replies to earlier ones (a server handles them in order; OpenSSH's sshd does). So our
connections:

1. start with `publickey` (no `none` probe; the server's list arrives with any refusal and
   asyncssh goes on from it as before: the next key, then the other methods);
2. sign the request at once for every key but a security key (an `sk-` key wants a touch per
   signature, so it is still asked about first);
3. send that first request right behind SERVICE_REQUEST, and take the later SERVICE_ACCEPT as
   a confirmation instead of a start.

One wait stays: a signature's algorithm follows the server's EXT_INFO (an RSA key signed
before it would be signed with SHA-1, which OpenSSH refuses), and OpenSSH sends EXT_INFO in
the same flight as the key exchange's reply, so the wait costs nothing there; a server without
EXT_INFO gets the request after SERVICE_ACCEPT, as before.

The key exchange, host-key checking and everything after the login are asyncssh's, untouched.
The class is used only for the connections this module opens (nothing global is patched). It
leans on asyncssh internals, so `fast_auth_support()` checks them first, and any surprise
means plain `asyncssh.connect`; so does `OMW_FAST_AUTH=0`, and a server that broke the early
request once (that host:port is then logged in the plain way for the rest of the run).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh import auth as _auth
from asyncssh import connection as _conn

try:  # the internals the classes below build on (a future asyncssh may lack them)
    from asyncssh.auth import _ClientPublicKeyAuth as _PublicKeyAuth
    from asyncssh.packet import Boolean, String
except ImportError:  # pragma: no cover - fast_auth_support() then says so: never used
    _PublicKeyAuth = _auth.ClientAuth  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from asyncssh.packet import SSHPacket

_USERAUTH = b"ssh-userauth"
_PUBLICKEY = b"publickey"
MSG_SERVICE_ACCEPT = 6  # RFC 4253
MSG_EXT_INFO = 7  # RFC 8308
# asyncssh's _connect(options, config, loop, flags, sock, conn_factory, msg): how
# asyncssh.connect builds its connection, the one place a connection class can be chosen
_CONNECT_PARAMS = ["options", "config", "loop", "flags", "sock", "conn_factory", "msg"]
# the instance state a fresh asyncssh client connection must have for the early start
_STATE = ("_auth", "_auth_methods", "_auth_in_progress", "_next_service", "_owner",
          "_username", "_preferred_auth", "_public_key_auth", "_server_sig_algs")

# asyncssh.connect's own parameters that _connect_fast does not pass on: those go plain
_CONNECT_ONLY = frozenset({"sock", "flags", "options"})

_plain_hosts: set[tuple[str, int]] = set()  # servers that broke the early request once


def enabled() -> bool:
    """The off switch: OMW_FAST_AUTH=0 logs in the plain asyncssh way."""
    return os.environ.get("OMW_FAST_AUTH", "1") != "0"


def fast_auth_support() -> str | None:
    """None when this asyncssh has what the fast login relies on; else what is missing."""
    connect = getattr(_conn, "_connect", None)
    if connect is None or not inspect.iscoroutinefunction(connect):
        return "asyncssh.connection._connect"
    if list(inspect.signature(connect).parameters) != _CONNECT_PARAMS:
        return "the parameters of asyncssh.connection._connect"
    if not inspect.iscoroutinefunction(
            getattr(asyncssh.SSHClientConnectionOptions, "construct", None)):
        return "SSHClientConnectionOptions.construct"
    handlers = getattr(asyncssh.SSHClientConnection, "_packet_handlers", None)
    if not isinstance(handlers, dict) or not {MSG_SERVICE_ACCEPT, MSG_EXT_INFO} <= set(handlers):
        return "SSHClientConnection._packet_handlers"
    for name in ("send_service_request", "try_next_auth", "public_key_auth_requested"):
        if not callable(getattr(asyncssh.SSHClientConnection, name, None)):
            return f"SSHClientConnection.{name}"
    if getattr(_auth, "_ClientPublicKeyAuth", None) is not _PublicKeyAuth:
        return "asyncssh.auth._ClientPublicKeyAuth"
    for name in ("_send_signed_request", "send_request", "_process_public_key_ok"):
        if not callable(getattr(_PublicKeyAuth, name, None)):
            return f"_ClientPublicKeyAuth.{name}"
    return None


def _plain_handler(code: int) -> Callable[..., Any]:
    return asyncssh.SSHClientConnection._packet_handlers[code]


class _SignedAtOnce(_PublicKeyAuth):
    """Public-key auth that sends the signed request at once (no PK_OK query first)."""

    async def _start(self) -> None:
        conn = self._conn
        assert isinstance(conn, FastAuthConnection)
        await conn.signature_algorithms_known()
        self._keypair = await conn.public_key_auth_requested()
        if self._keypair is None:
            conn.try_next_auth(next_method=True)
            return
        if self._keypair.algorithm.startswith(b"sk-"):
            # a security key wants a touch per signature: asked about first, as asyncssh does
            # (its PK_OK handler then sends the signed request)
            await self.send_request(Boolean(False), String(self._keypair.algorithm),
                                    String(self._keypair.public_data))
            return
        conn.signed_at_once += 1
        await self._send_signed_request()


class FastAuthConnection(asyncssh.SSHClientConnection):
    """asyncssh's client connection with the login started early (see the module's doc)."""

    _packet_handlers = dict(getattr(asyncssh.SSHClientConnection, "_packet_handlers", {}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        state_ok = all(hasattr(self, name) for name in _STATE)
        # without a key to offer, asyncssh's `none` probe learns the server's methods
        self.fast = (state_ok and self._auth_methods == [b"none"]
                     and bool(self._public_key_auth)
                     and _PUBLICKEY in (self._preferred_auth or ()))
        self.early = False  # the first USERAUTH_REQUEST went out before SERVICE_ACCEPT
        self.signed_at_once = 0  # keys offered with their signature at once
        self._sig_algs_known = asyncio.Event()
        # our guess of the server's methods, until its first refusal replaces the list
        self._guess = [_PUBLICKEY]
        if self.fast:
            self._auth_methods = self._guess

    async def signature_algorithms_known(self) -> None:
        """Until the server's EXT_INFO (or SERVICE_ACCEPT, when it sends none) is in."""
        await self._sig_algs_known.wait()

    def send_service_request(self, service: bytes) -> None:
        super().send_service_request(service)
        if self.fast and service == _USERAUTH:
            self.early = True
            self.logger.info("Beginning auth for user %s (before SERVICE_ACCEPT)",
                             self._username)
            self._auth_in_progress = True
            assert self._owner is not None
            self._owner.begin_auth(self._username)
            self.try_next_auth()

    def try_next_auth(self, *, next_method: bool = False) -> None:
        if not self.fast:
            super().try_next_auth(next_method=next_method)
            return
        if self._auth:
            self._auth.cancel()
            self._auth = None
        if next_method and self._auth_methods is self._guess:
            # no key to offer before the server said anything: asyncssh's `none` probe
            # learns its methods (a password or keyboard-interactive login goes on from there)
            self._auth_methods = [b"none"]
        elif next_method:
            self._auth_methods.pop(0)
        if self._auth_methods[:1] == [_PUBLICKEY]:
            self._auth = _SignedAtOnce(self, _PUBLICKEY)
            return
        super().try_next_auth()  # the other methods, and PermissionDenied when none is left

    def _ext_info(self, pkttype: int, pktid: int, packet: SSHPacket) -> None:
        _plain_handler(MSG_EXT_INFO)(self, pkttype, pktid, packet)
        self._sig_algs_known.set()

    def _service_accept(self, pkttype: int, pktid: int, packet: SSHPacket) -> None:
        if not self.early:
            _plain_handler(MSG_SERVICE_ACCEPT)(self, pkttype, pktid, packet)
            return
        service = packet.get_string()
        packet.check_end()
        if service != self._next_service:
            raise asyncssh.ServiceNotAvailable("Unexpected service in service accept")
        self.logger.debug2("Request for service %s accepted", service)
        self._next_service = None
        self._sig_algs_known.set()  # EXT_INFO, if any, came before it (RFC 8308)

    _packet_handlers[MSG_EXT_INFO] = _ext_info
    _packet_handlers[MSG_SERVICE_ACCEPT] = _service_accept


async def _connect_fast(host: str, options: dict[str, Any]) -> asyncssh.SSHClientConnection:
    """asyncssh.connect's own steps (2.24), with our connection class."""
    loop = asyncio.get_running_loop()
    kwargs = dict(options)
    config = kwargs.pop("config", ())
    new_options = await asyncssh.SSHClientConnectionOptions.construct(
        None, config=config, host=host, **kwargs)

    def conn_factory() -> FastAuthConnection:
        return FastAuthConnection(loop, new_options, wait="auth")

    conn = await asyncio.wait_for(
        _conn._connect(new_options, config, loop, 0, None, conn_factory,
                       "Opening SSH connection to"),
        timeout=new_options.connect_timeout)
    return conn


async def connect(host: str, **options: Any) -> asyncssh.SSHClientConnection:
    """asyncssh.connect(host, **options), logged in with fewer round trips when this asyncssh
    allows it (fast_auth_support) and OMW_FAST_AUTH is not 0."""
    port = int(options.get("port", 22))
    if (not enabled() or fast_auth_support() is not None or (host, port) in _plain_hosts
            or _CONNECT_ONLY & set(options)):
        return await asyncssh.connect(host, **options)
    try:
        return await _connect_fast(host, options)
    except (asyncssh.ProtocolError, asyncssh.ServiceNotAvailable, asyncssh.ConnectionLost):
        _plain_hosts.add((host, port))  # the caller's retry logs in the plain way
        raise
