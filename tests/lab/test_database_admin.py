"""The database section's two less common paths, on the lab through the CLI.

1. Admin credentials (`database.admin_user` / `admin_password`) instead of socket auth, on
   MariaDB and PostgreSQL: the users are created, every OM node logs in, the admin password
   is nowhere (output, state, argv of any process, the db node's /tmp), and what rollback
   cannot undo (SQL made with the admin account) is named with the exact SQL to run by hand.
2. JAVA_OPTS through Tomcat's bin/setenv.sh (OM 4.0.11 has no systemd unit) on a lab of its
   own, next to a 9.1.0 node that gets the systemd drop-in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.configs.javaopts import SERIALIZATION_OPTS
from omwizard.facts.database import mysql_string
from omwizard.lab import build_lab
from omwizard.lab.services import (
    MARIADB_CNF,
    PG_CONF_DIR,
    mysql,
    psql,
    start_mariadb,
    start_postgres,
)
from tests.conftest import LAB_WAIT
from tests.lab.test_security import CmdlineWatch, files_holding

pytestmark = pytest.mark.lab

DB_PASSWORD = "Om-pw'q\"x\\y"
# quotes, backslash, '#', ':' (pgpass separator), a space and shell syntax
ADMIN_PASSWORD = "Adm1n-'q\"x\\y#z: $(touch /tmp/pwned-admin)`id`;%s"
PERSISTENCE = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml"
UNIT = "/etc/systemd/system/openmeetings.service"
DROPIN = "/etc/systemd/system/openmeetings.service.d/omwizard.conf"
SETENV = "/opt/om/bin/setenv.sh"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "openmeetings"
ADMIN_PLAN = {"admin_user": "omwadmin", "admin_password": "${OMW_DB_ADMIN_PASSWORD}"}
BY_HAND = re.compile(r"by hand: (.*) \(as omwadmin; rollback has no admin password")


def omw(command: str, plan: Path, state: Path, *extra: str,
        admin_password: str = ADMIN_PASSWORD) -> tuple[int, dict, str, str]:
    env = {**os.environ, "OMW_DB_PASSWORD": DB_PASSWORD,
           "OMW_DB_ADMIN_PASSWORD": admin_password}
    env.pop("OMW_FAULT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "omwizard", command, str(plan), "--section", "database",
         "--json", "--state", str(state), *extra],
        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from {command}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode, data, proc.stdout, proc.stderr


def by_step(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["step"], r["node"]): r for r in data["results"]}


def digest(node, path: str) -> str:
    out = node.run(f"sha256sum {path} 2>/dev/null || echo absent").stdout.split()
    return out[0] if out else "absent"


def tmp_listing(node) -> list[str]:
    return sorted(node.run("ls -a /tmp", check=True).stdout.split())


def drop_serialization_opts(node) -> None:
    node.run(["sed", "-i", "-e", "s/ -Dopenjpa.serialization[^ ']*//g", UNIT], check=True)


def assert_admin_password_nowhere(lab, state: Path, texts: list[str], watch: CmdlineWatch,
                                  tmp_before: list[str]) -> None:
    for secret in (ADMIN_PASSWORD, DB_PASSWORD):
        for text in texts:
            assert secret not in text
        assert files_holding(state, secret) == []
    assert watch.seen > 100, "the argv watch saw no processes"
    assert watch.leaks == []
    db = lab.db
    assert tmp_listing(db) == tmp_before  # no temp file (option file, pgpass) left behind
    for folder in ("tmp", "home", "etc-upper"):
        assert files_holding(db.root / folder, ADMIN_PASSWORD) == []
    assert files_holding(Path("/var/backups/omwizard"), ADMIN_PASSWORD) == []
    assert not any("pwned" in name for node in lab.all_nodes for name in tmp_listing(node))


def manual_sql(result: dict) -> list[str]:
    """The SQL the apply result names as 'by hand' in its changes' undo texts."""
    return [m.group(1) for c in result["changes"] if (m := BY_HAND.search(c["undo"]))]


def admin_cycle(lab, plan: Path, state: Path, db_files: list[str], count,
                expected: int) -> tuple[list[str], list[str], dict[str, str]]:
    om = list(lab.nodes)
    hosts = [lab.node(n).address for n in om]
    db = lab.db
    before_files = {p: digest(db, p) for p in db_files}

    # a wrong admin password: refused, and it is the admin account that is used
    code, data, out, err = omw("check", plan, state, admin_password="wrong-admin-pw")
    remote = by_step(data)[("remote-user", "db")]
    assert code == 1
    assert remote["status"] == "failed" and "as admin" in remote["detail"], remote
    assert "wrong-admin-pw" not in out + err

    tmp_before = tmp_listing(db)
    watch = CmdlineWatch([ADMIN_PASSWORD, DB_PASSWORD])
    watch.start()
    try:
        code, data, out, err = omw("apply", plan, state, "--yes")
        code2, data2, out2, err2 = omw("apply", plan, state, "--yes")
    finally:
        watch.stop.set()
        watch.join()
    results = by_step(data)
    assert code == 0, json.dumps(data["results"], indent=1) + err
    remote = results[("remote-user", "db")]
    assert remote["status"] == "changed", remote
    for n in om:
        assert results[("db-login", n)]["status"] == "ok", results[("db-login", n)]
    assert code2 == 0 and data2["summary"]["changed"] == 0, err2
    assert count() == expected
    assert_admin_password_nowhere(lab, state, [out, err, out2, err2], watch, tmp_before)
    manual = manual_sql(remote)
    for undo in (c["undo"] for c in remote["changes"]):
        assert ADMIN_PASSWORD not in undo
    return manual, hosts, before_files


# -- 1. admin credentials -----------------------------------------------------------------------


def test_mariadb_with_admin_credentials(fresh_lab, tmp_path):
    lab = fresh_lab
    start_mariadb(lab.db)
    lab.db.run(["mysql"], check=True, input=(
        "SET SESSION sql_mode = '';\n"
        f"CREATE USER 'omwadmin'@'localhost' IDENTIFIED BY {mysql_string(ADMIN_PASSWORD)};\n"
        "GRANT ALL ON *.* TO 'omwadmin'@'localhost' WITH GRANT OPTION;\n"))
    plan = lab.write_plan(tmp_path / "plan.yaml", database=ADMIN_PLAN)
    state = tmp_path / "state"

    def users() -> int:
        return int(mysql(lab.db, "SELECT count(*) FROM mysql.user WHERE User='om'").stdout)

    manual, hosts, before_files = admin_cycle(lab, plan, state, [MARIADB_CNF], users, 3)
    assert manual == ["DROP DATABASE IF EXISTS `openmeetings`"] + [
        f"DROP USER IF EXISTS 'om'@'{h}'" for h in hosts]

    code, data, out, err = omw("rollback", plan, state, "--yes")
    assert code == 0, json.dumps(data["results"], indent=1) + err
    assert ADMIN_PASSWORD not in out + err
    # the config file is restored; the SQL made as admin stays, as the apply result said
    assert {p: digest(lab.db, p) for p in before_files} == before_files
    assert users() == len(hosts)
    # ... and the SQL it named works as written
    for sql in manual:
        assert mysql(lab.db, sql).returncode == 0
    assert users() == 0
    assert mysql(lab.db, "SHOW DATABASES LIKE 'openmeetings'").stdout.strip() == ""


def test_postgresql_with_admin_credentials(fresh_lab, tmp_path):
    lab = fresh_lab
    start_postgres(lab.db)
    escaped = ADMIN_PASSWORD.replace("'", "''")
    lab.db.run(["su", "postgres", "-c", "psql -X -At -v ON_ERROR_STOP=1 -f -"], check=True,
               input=f"CREATE ROLE omwadmin LOGIN SUPERUSER PASSWORD '{escaped}';\n")
    source = FIXTURES / "9.1.0" / "persistence-postgresql.xml"
    for node in lab.nodes.values():  # the host's copy need not be visible in the node
        node.write_file(PERSISTENCE, source.read_text())
    plan = lab.write_plan(tmp_path / "plan.yaml",
                          database={"type": "postgresql", "port": 5432, **ADMIN_PLAN})
    state = tmp_path / "state"

    def roles() -> int:
        return int(psql(lab.db, "SELECT count(*) FROM pg_roles WHERE rolname='om'").stdout)

    files = [f"{PG_CONF_DIR}/postgresql.conf", f"{PG_CONF_DIR}/pg_hba.conf"]
    manual, hosts, before_files = admin_cycle(lab, plan, state, files, roles, 1)
    assert manual == ['DROP ROLE IF EXISTS "om"', 'DROP DATABASE IF EXISTS "openmeetings"']

    code, data, out, err = omw("rollback", plan, state, "--yes")
    assert code == 0, json.dumps(data["results"], indent=1) + err
    assert ADMIN_PASSWORD not in out + err
    assert {p: digest(lab.db, p) for p in before_files} == before_files
    assert roles() == 1
    for sql in reversed(manual):  # the database first: it is owned by the role
        assert psql(lab.db, sql).returncode == 0, sql
    assert roles() == 0


# -- 2. JAVA_OPTS through Tomcat's bin/setenv.sh -------------------------------------------------


@pytest.mark.lab_build
def test_setenv_route_on_om_4_0_11(own_lab_slot, tmp_path):
    small = build_lab(n_nodes=2, om_versions=["4.0.11", "9.1.0"], wait=LAB_WAIT)
    try:
        n1, n2 = small.nodes["n1"], small.nodes["n2"]
        assert n1.run(["test", "-e", UNIT]).returncode == 1  # 4.0.11: no systemd unit
        drop_serialization_opts(n2)
        start_mariadb(small.db)
        original = n1.run(["cat", SETENV], check=True).stdout
        mode = n1.run(["stat", "-c", "%a", SETENV], check=True).stdout.strip()
        unit_before = digest(n2, UNIT)
        plan = small.write_plan(tmp_path / "plan.yaml")
        state = tmp_path / "state"

        code, data, _, err = omw("check", plan, state)
        results = by_step(data)
        ser1 = results[("openjpa-serialization", "n1")]
        assert ser1["status"] == "needs-change" and SETENV in ser1["detail"], ser1
        assert results[("openjpa-serialization", "n2")]["status"] == "needs-change"

        code, data, _, err = omw("apply", plan, state, "--yes")
        results = by_step(data)
        assert code == 0, json.dumps(data["results"], indent=1) + err
        for n in ("n1", "n2"):
            assert results[("openjpa-serialization", n)]["status"] == "changed"
            assert results[("db-login", n)]["status"] == "ok"
        line = 'JAVA_OPTS="$JAVA_OPTS ' + " ".join(SERIALIZATION_OPTS) + '"'
        assert line == ('JAVA_OPTS="$JAVA_OPTS -Dopenjpa.serialization.class.blacklist=* '
                        "-Dopenjpa.serialization.class.whitelist="
                        '[B,java.util,org.apache.openjpa,org.apache.openmeetings.db.entity"')
        edited = n1.run(["cat", SETENV], check=True).stdout
        assert edited == original + line + "\n"
        assert n1.run(["sh", "-n", SETENV]).returncode == 0
        assert n1.run(["stat", "-c", "%a", SETENV], check=True).stdout.strip() == mode
        opts = n1.run(["sh", "-c", f'JAVA_OPTS=-Xmx1g; . {SETENV}; printf "%s" "$JAVA_OPTS"'],
                      check=True).stdout.split()
        assert opts[0] == "-Xmx1g" and "-Djava.awt.headless=true" in opts
        for opt in SERIALIZATION_OPTS:
            assert opts.count(opt) == 1, opts
        # n1 has no drop-in; n2 has one, and its unit is untouched
        assert digest(n1, DROPIN) == "absent"
        dropin = n2.run(["cat", DROPIN], check=True).stdout
        assert all(opt in dropin for opt in SERIALIZATION_OPTS)
        assert digest(n2, UNIT) == unit_before
        assert digest(n2, SETENV) == "absent"

        code, data, _, err = omw("apply", plan, state, "--yes")
        assert code == 0 and data["summary"]["changed"] == 0, err

        code, data, _, err = omw("rollback", plan, state, "--yes")
        assert code == 0, json.dumps(data["results"], indent=1) + err
        assert n1.run(["cat", SETENV], check=True).stdout == original  # byte for byte
        assert n1.run(["stat", "-c", "%a", SETENV], check=True).stdout.strip() == mode
        assert digest(n2, DROPIN) == "absent"
        assert n2.run(["test", "-e", os.path.dirname(DROPIN)]).returncode == 1
    finally:
        small.teardown()
