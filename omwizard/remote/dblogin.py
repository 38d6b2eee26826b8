"""A real database login from an OM node's own address, with nothing installed on the node.

The documentation only says every OM node must use the same database; what breaks clusters in
practice is that one node cannot log in (a user created for 'localhost' only, a pg_hba line
missing, a firewall). So the wizard proves it: an SSH tunnel (one forwarded connection)
through the node to the DB host (the DB server sees the node's address), then a pure-Python
client (PyMySQL, pg8000) from the wizard over it (a local socket pair bridged to the tunnel).
The node's refused or unanswered connect is already the verdict (no probe goes first); the
blocking driver runs in a thread with a short timeout. Driver errors become one of a few
verdicts an operator can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omwizard.remote.results import TunnelRefused

if TYPE_CHECKING:  # the pool imports asyncssh; this module is loaded without it
    from omwizard.remote.ssh import Remote

OK = "ok"
UNREACHABLE = "unreachable"
REFUSED = "refused"
BAD_CREDENTIALS = "bad credentials"
NO_DATABASE = "no such database"
ERROR = "error"

MYSQL_KINDS = ("mysql", "mariadb")


@dataclass(frozen=True)
class Verdict:
    verdict: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.verdict == OK


def classify_mysql(code: int | None, message: str) -> Verdict:
    """PyMySQL error code to a verdict (1045 access denied, 1049 unknown database, ...)."""
    if code == 1045:
        return Verdict(BAD_CREDENTIALS, f"access denied (MySQL 1045): {message}")
    if code == 1049:
        return Verdict(NO_DATABASE, f"unknown database (MySQL 1049): {message}")
    if code in (1130, 1044):
        return Verdict(BAD_CREDENTIALS, f"this host may not log in (MySQL {code}): {message}")
    if code in (2003, 2013, 2006):
        return Verdict(UNREACHABLE, f"no MySQL answer through the tunnel ({code}): {message}")
    return Verdict(ERROR, f"MySQL error {code}: {message}")


def classify_pg(sqlstate: str | None, message: str) -> Verdict:
    """PostgreSQL SQLSTATE to a verdict (28P01/28000 auth, 3D000 no database)."""
    if sqlstate in ("28P01", "28000"):
        extra = " (no pg_hba.conf line for this address?)" if sqlstate == "28000" else ""
        return Verdict(BAD_CREDENTIALS, f"authentication failed ({sqlstate}){extra}: {message}")
    if sqlstate == "3D000":
        return Verdict(NO_DATABASE, f"database does not exist (3D000): {message}")
    if sqlstate is None:
        return Verdict(UNREACHABLE, f"no PostgreSQL answer through the tunnel: {message}")
    return Verdict(ERROR, f"PostgreSQL error {sqlstate}: {message}")


def classify_tunnel_refusal(reason: str) -> Verdict:
    """The node's own connect to the DB failed (sshd's reason for refusing the forward)."""
    text = reason.strip()
    if "refused" in text.lower():
        return Verdict(REFUSED, f"connection refused: nothing listens there ({text})")
    if "timed out" in text.lower():
        return Verdict(UNREACHABLE, "no answer within the timeout (a firewall or wrong address)")
    return Verdict(UNREACHABLE, f"cannot reach it: {text or 'the forward was refused'}")


TUNNEL_TIMEOUT = 5.0  # s for the node to connect to the DB (a dropped SYN waits minutes)
UNANSWERED = Verdict(UNREACHABLE, "no answer within the timeout (a firewall or wrong address)")


@functools.cache
def _login_only() -> type[Any]:
    """PyMySQL's Connection that ends at the login: after the server's OK it sends nothing
    that waits (each of those is a round trip over the tunnel, and a query is no part of
    the proof). `autocommit=None` drops its `SET AUTOCOMMIT`; `SET NAMES`, which connect()
    sends unasked since PyMySQL 1.1, is skipped here: no text is exchanged after the login
    (the charset of the handshake response, utf8mb4, is what the server uses anyway)."""
    import pymysql
    from pymysql.charset import charset_by_name

    class LoginOnly(pymysql.connections.Connection):
        def set_character_set(self, charset: str, collation: str | None = None) -> None:
            self.encoding = charset_by_name(charset).encoding
            self.charset = charset
            self.collation = collation

    return LoginOnly


def login_blocking(kind: str, sock: socket.socket, user: str, password: str, database: str,
                   timeout: float = 8.0) -> Verdict:
    """Log in over `sock` (the tunnel); the login itself is the proof (the server's version
    comes with its greeting), so no query follows. Blocking: run in a thread."""
    sock.settimeout(timeout)
    if kind in MYSQL_KINDS:
        import pymysql

        conn = _login_only()(user=user, password=password, database=database,
                             connect_timeout=timeout, read_timeout=timeout,
                             write_timeout=timeout, defer_connect=True, autocommit=None)
        try:
            conn.connect(sock)
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            return classify_mysql(code, message)
        version = conn.get_server_info()
        with contextlib.suppress(Exception):
            conn.close()
        return Verdict(OK, f"logged in as {user} to {database} (server {version or '?'})")
    if kind == "postgresql":
        import pg8000.native
        from pg8000.exceptions import DatabaseError, InterfaceError

        try:
            pg = pg8000.native.Connection(user, password=password, database=database,
                                          timeout=timeout, sock=sock)
        except DatabaseError as exc:
            info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            return classify_pg(info.get("C", "?"), str(info.get("M", exc)))
        except (InterfaceError, OSError) as exc:
            return classify_pg(None, str(exc))
        version = pg.parameter_statuses.get("server_version", "?")
        with contextlib.suppress(Exception):
            pg.close()
        return Verdict(OK, f"logged in as {user} to {database} (PostgreSQL {version})")
    return Verdict(ERROR, f"no built-in client for {kind}; check the login by hand")


async def _pump(reader: Any, writer: Any) -> None:
    """Copy one direction of the tunnel until its end, then end the other side's writing."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()


async def login_through(remote: Remote, kind: str, db_host: str, db_port: int, user: str,
                        password: str, database: str, timeout: float = 8.0) -> Verdict:
    """Open a tunnel through the node's SSH connection (omwizard.remote.ssh.Remote) to the
    DB, then log in over it: the node's refused or unanswered connect is the verdict itself,
    so no separate probe goes first."""
    try:
        far_reader, far_writer = await asyncio.wait_for(
            remote.open_tunnel(db_host, db_port), TUNNEL_TIMEOUT)
    except TimeoutError:
        return UNANSWERED
    except TunnelRefused as exc:
        return classify_tunnel_refusal(exc.message)
    ours, theirs = socket.socketpair()
    try:
        near_reader, near_writer = await asyncio.open_connection(sock=theirs)
        pumps = [asyncio.ensure_future(_pump(far_reader, near_writer)),
                 asyncio.ensure_future(_pump(near_reader, far_writer))]
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(login_blocking, kind, ours, user, password, database,
                                  timeout),
                timeout + 5,
            )
        except TimeoutError:
            return Verdict(UNREACHABLE, f"the login did not finish within {timeout + 5:g}s")
        finally:
            for pump in pumps:
                pump.cancel()
            near_writer.close()
            far_writer.close()
    finally:
        ours.close()
        theirs.close()
