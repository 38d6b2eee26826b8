"""The database section against the lab's real MariaDB and PostgreSQL, through the CLI.

Each test: check reports what is missing, apply creates the remote user and edits every OM
node, db-login is still to do before (typed: it waits on database.remote-user, which this
run's check found to do) and succeeds after from every node's own address, a second apply
changes nothing, rollback drops the user and restores every edited file byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.lab.services import (
    MARIADB_CNF,
    PG_CONF_DIR,
    mysql,
    psql,
    start_mariadb,
    start_postgres,
)

pytestmark = pytest.mark.lab

PASSWORD = "S3cret-'q\"x\\y"  # quotes and a backslash: proves the escaping end to end
PERSISTENCE = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml"
UNIT = "/etc/systemd/system/openmeetings.service"
DROPIN = "/etc/systemd/system/openmeetings.service.d/omwizard.conf"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "openmeetings"


def omw(command: str, plan: Path, state: Path, *extra: str) -> tuple[int, dict, str]:
    env = {**os.environ, "OMW_DB_PASSWORD": PASSWORD}
    proc = subprocess.run(
        [sys.executable, "-m", "omwizard", command, str(plan), "--section", "database",
         "--json", "--state", str(state), *extra],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert PASSWORD not in proc.stdout and PASSWORD not in proc.stderr
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from {command}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode, data, proc.stderr


def by_step(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["step"], r["node"]): r for r in data["results"]}


def digest(node, path: str) -> str:
    out = node.run(f"sha256sum {path} 2>/dev/null || echo absent").stdout.split()
    return out[0] if out else "absent"


def snapshot(lab, files: dict[str, list[str]]) -> dict[tuple[str, str], str]:
    return {(n, p): digest(lab.node(n), p) for n, paths in files.items() for p in paths}


def assert_no_secret_in_state(state: Path) -> None:
    for path in state.rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(errors="replace"), path


def drop_serialization_opts(node) -> None:
    """Make n1 look like an older install: the unit's JAVA_OPTS without the CVE lists."""
    node.run(["sed", "-i", "-e", "s/ -Dopenjpa.serialization[^ ']*//g", UNIT], check=True)


def assert_waits_on_remote_user(login: dict) -> None:
    """A login that fails only because remote-user is still to apply: to do, not failed."""
    assert login["status"] == "needs-change", login
    assert login["data"]["kind"] == "db-login-waits", login
    assert login["data"]["waits_on"] == "database.remote-user", login
    assert login["data"]["verdict"] in ("refused", "bad credentials", "no such database"), login


def run_cycle(lab, plan: Path, state: Path, db_files: list[str], user_count) -> None:
    om = list(lab.nodes)
    files = {n: [PERSISTENCE, UNIT, DROPIN] for n in om}
    files[lab.db.name] = db_files
    before = snapshot(lab, files)

    code, data, err = omw("check", plan, state)
    results = by_step(data)
    assert code == 1, err
    assert results[("remote-user", "db")]["status"] == "needs-change"
    for n in om:
        assert results[("db-type", n)]["status"] == "ok"
        assert results[("persistence-connection", n)]["status"] == "needs-change"
        assert results[("remote-commit-provider", n)]["status"] == "needs-change"
        assert_waits_on_remote_user(results[("db-login", n)])
    assert results[("openjpa-serialization", "n1")]["status"] == "needs-change"
    assert results[("openjpa-serialization", "n2")]["status"] == "ok"
    assert user_count() == 0

    code, data, err = omw("apply", plan, state, "--yes")
    results = by_step(data)
    assert code == 0, json.dumps(data["results"], indent=1) + err
    assert results[("remote-user", "db")]["status"] == "changed"
    for n in om:
        assert results[("persistence-connection", n)]["status"] == "changed"
        assert results[("remote-commit-provider", n)]["status"] == "changed"
        assert results[("db-login", n)]["status"] == "ok", results[("db-login", n)]
    assert results[("openjpa-serialization", "n1")]["status"] == "changed"
    assert digest(lab.node("n1"), DROPIN) != "absent"
    assert user_count() > 0
    assert_no_secret_in_state(state)

    code, data, err = omw("apply", plan, state, "--yes")
    assert code == 0, err
    assert data["summary"]["changed"] == 0
    assert all(r["status"] in ("ok", "skipped") for r in data["results"])

    code, data, err = omw("rollback", plan, state, "--yes")
    assert code == 0, json.dumps(data["results"], indent=1) + err
    assert user_count() == 0
    assert snapshot(lab, files) == before
    assert_no_secret_in_state(state)

    code, data, err = omw("check", plan, state)
    results = by_step(data)
    assert code == 1
    for n in om:
        assert_waits_on_remote_user(results[("db-login", n)])
    assert results[("remote-user", "db")]["status"] == "needs-change"


def test_mariadb_cycle(fresh_lab, tmp_path):
    lab = fresh_lab
    start_mariadb(lab.db)
    drop_serialization_opts(lab.node("n1"))
    plan = lab.write_plan(tmp_path / "plan.yaml")

    def users() -> int:
        out = mysql(lab.db, "SELECT count(*) FROM mysql.user WHERE User='om'").stdout.strip()
        return int(out)

    run_cycle(lab, plan, tmp_path / "state", [MARIADB_CNF], users)


def test_postgresql_cycle(fresh_lab, tmp_path):
    lab = fresh_lab
    start_postgres(lab.db)
    drop_serialization_opts(lab.node("n1"))
    source = FIXTURES / "9.1.0" / "persistence-postgresql.xml"
    for node in lab.nodes.values():  # the host's copy need not be visible in the node
        node.write_file(PERSISTENCE, source.read_text())
    plan = lab.write_plan(tmp_path / "plan.yaml",
                          database={"type": "postgresql", "port": 5432})

    def roles() -> int:
        out = psql(lab.db, "SELECT count(*) FROM pg_roles WHERE rolname='om'").stdout.strip()
        return int(out)

    run_cycle(lab, plan, tmp_path / "state",
              [f"{PG_CONF_DIR}/postgresql.conf", f"{PG_CONF_DIR}/pg_hba.conf"], roles)


def test_h2_node_is_refused_with_the_documentation_rule(fresh_lab, tmp_path):
    lab = fresh_lab
    meta = Path(PERSISTENCE).parent
    lab.node("n2").run(["cp", str(meta / "h2_persistence.xml"), PERSISTENCE], check=True)
    plan = lab.write_plan(tmp_path / "plan.yaml", database={"manage": False})
    code, data, _ = omw("check", plan, tmp_path / "state")
    results = by_step(data)
    assert code == 1
    h2 = results[("db-type", "n2")]
    assert h2["status"] == "failed"
    assert "Db other than H2 should be used" in h2["detail"]
    assert "re-install OpenMeetings" in h2["remedy"]
    assert results[("db-type", "n1")]["status"] == "ok"
    assert results[("db-login", "n1")]["status"] == "failed"  # no server started: refused
    assert "refused" in results[("db-login", "n1")]["detail"]


class _CountingTunnels:
    """A node's Remote whose tunnels note every chunk the wizard's client writes to the DB
    (the real tunnel underneath), so a test sees what the login sends after the greeting."""

    def __init__(self, remote) -> None:
        self.remote = remote
        self.sent: list[bytes] = []

    async def open_tunnel(self, host: str, port: int):
        reader, writer = await self.remote.open_tunnel(host, port)
        sent = self.sent

        class Writer:
            def write(self, data: bytes) -> None:
                sent.append(bytes(data))
                writer.write(data)

            def __getattr__(self, name: str):
                return getattr(writer, name)

        return reader, Writer()


def mysql_packets(chunks: list[bytes]) -> list[bytes]:
    """The client's MySQL packets (3-byte length, sequence id, payload) in order: payloads."""
    data, out = b"".join(chunks), []
    while len(data) >= 4:
        size = int.from_bytes(data[:3], "little")
        out.append(data[4:4 + size])
        data = data[4 + size:]
    return out


def test_mariadb_login_waits_on_one_answer_and_keeps_its_verdicts(fresh_lab, tmp_path):
    """db-login through n1's tunnel to the real MariaDB: the login is the handshake response
    and nothing after it waits on the server (no SET NAMES, no SET AUTOCOMMIT: one round trip
    after the tunnel and its greeting), and the verdicts are still the server's own."""
    import asyncio

    from omwizard.plan.model import load_plan
    from omwizard.remote import dblogin
    from omwizard.remote.ssh import RemotePool

    lab = fresh_lab
    start_mariadb(lab.db)
    plan = load_plan(lab.write_plan(tmp_path / "plan.yaml"))
    n1 = plan.node("n1")
    db = plan.database
    conf = lab.db.run(["cat", MARIADB_CNF]).stdout
    lab.db.write_file(MARIADB_CNF, conf.replace("= 127.0.0.1", f"= {db.host}"))
    assert lab.db.run("service mariadb restart", timeout=120).returncode == 0
    mysql(lab.db, f"CREATE DATABASE {db.name}; CREATE USER '{db.user}'@'{n1.address}' "
          f"IDENTIFIED BY 'lab-pw-1'; GRANT ALL ON {db.name}.* TO '{db.user}'@'{n1.address}'; "
          f"GRANT ALL ON nosuchdb.* TO '{db.user}'@'{n1.address}'")  # 1049, not 1044

    async def logins() -> list[tuple[str, list[bytes]]]:
        pool = RemotePool()
        out = []
        try:
            for password, database, port in (("lab-pw-1", db.name, db.port),
                                             ("wrong-pw", db.name, db.port),
                                             ("lab-pw-1", "nosuchdb", db.port),
                                             ("lab-pw-1", db.name, 3399)):
                tunnels = _CountingTunnels(pool.get(n1))
                verdict = await dblogin.login_through(tunnels, db.type, db.host, port,
                                                      db.user, password, database)
                out.append((verdict.verdict, mysql_packets(tunnels.sent)))
        finally:
            await pool.close()
        return out

    (ok, ok_sent), (bad, _), (nodb, _), (refused, none_sent) = asyncio.run(logins())
    assert (ok, bad, nodb, refused) == (dblogin.OK, dblogin.BAD_CREDENTIALS,
                                        dblogin.NO_DATABASE, dblogin.REFUSED)
    # the handshake response, then COM_QUIT (0x01, answered by nobody): one round trip
    assert len(ok_sent) == 2 and ok_sent[1] == b"\x01", ok_sent
    assert b"lab-pw-1" not in b"".join(ok_sent)  # the scrambled password, never the text
    assert none_sent == []
