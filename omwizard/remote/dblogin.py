"""A real database login from an OM node's own address, with nothing installed on the node.

The documentation only says every OM node must use the same database; what breaks clusters in
practice is that one node cannot log in (a user created for 'localhost' only, a pg_hba line
missing, a firewall). So the wizard proves it: an SSH local forward through the node to the DB
host (the DB server sees the node's address), then a pure-Python client (PyMySQL, pg8000)
from the wizard to 127.0.0.1:forwarded_port. The blocking driver runs in a thread with a short
timeout. Driver errors become one of a few verdicts an operator can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def classify_path_probe(exit_status: int | None, output: str) -> Verdict | None:
    """The node's own TCP probe to the DB (bash /dev/tcp under timeout); None = reachable."""
    if exit_status == 0:
        return None
    text = output.strip().splitlines()[-1] if output.strip() else ""
    if "refused" in output.lower():
        return Verdict(REFUSED, f"connection refused: nothing listens there ({text})")
    if exit_status == 124 or "timed out" in output.lower():
        return Verdict(UNREACHABLE, "no answer within the timeout (a firewall or wrong address)")
    return Verdict(UNREACHABLE, f"cannot reach it: {text or f'exit {exit_status}'}")


def login_blocking(kind: str, port: int, user: str, password: str, database: str,
                   timeout: float = 8.0) -> Verdict:
    """Log in at 127.0.0.1:port (the forward) and run SELECT 1. Blocking: run in a thread."""
    if kind in MYSQL_KINDS:
        import pymysql

        try:
            conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                                   database=database, connect_timeout=timeout,
                                   read_timeout=timeout, write_timeout=timeout)
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            return classify_mysql(code, message)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
        finally:
            conn.close()
        return Verdict(OK, f"logged in as {user} to {database} (server {row[0] if row else '?'})")
    if kind == "postgresql":
        import pg8000.native
        from pg8000.exceptions import DatabaseError, InterfaceError

        try:
            conn = pg8000.native.Connection(user, host="127.0.0.1", port=port,
                                            password=password, database=database,
                                            timeout=timeout)
        except DatabaseError as exc:
            info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            return classify_pg(info.get("C", "?"), str(info.get("M", exc)))
        except (InterfaceError, OSError) as exc:
            return classify_pg(None, str(exc))
        try:
            version = conn.run("SHOW server_version")[0][0]
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        return Verdict(OK, f"logged in as {user} to {database} (PostgreSQL {version})")
    return Verdict(ERROR, f"no built-in client for {kind}; check the login by hand")


async def login_through(remote: Remote, kind: str, db_host: str, db_port: int, user: str,
                        password: str, database: str, timeout: float = 8.0) -> Verdict:
    """Forward through the node's SSH connection (omwizard.remote.ssh.Remote), then log in."""
    listener, port = await remote.forward_local(db_host, db_port)
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(login_blocking, kind, port, user, password, database, timeout),
            timeout + 5,
        )
    except TimeoutError:
        return Verdict(UNREACHABLE, f"the login did not finish within {timeout + 5:g}s")
    finally:
        listener.close()
