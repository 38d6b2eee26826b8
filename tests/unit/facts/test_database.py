"""Pure decisions of the database section: SQL builders, probe parsers, config transforms."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from omwizard.configs import persistence
from omwizard.facts import database as dbsql
from omwizard.facts.database import (
    judge_db_type,
    manual_undo,
    mysql_client,
    mysql_undo,
    pick_cnf,
    psql_script,
    restart_script,
)
from omwizard.plan.model import Database, Secret
from omwizard.remote import dblogin

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "openmeetings"
HOSTS = ["198.18.0.11", "198.18.0.12"]


# -- MySQL / MariaDB -------------------------------------------------------------------------


def test_mysql_probe_parse_and_decide():
    out = ("user\t198.18.0.11\nuser\tlocalhost\ndb\topenmeetings\ngrant\t198.18.0.11\n"
           "bind\t127.0.0.1\nskip_networking\t0\nversion\t10.11.6-MariaDB-0+deb12u1\n")
    facts = dbsql.parse_mysql_probe(out)
    assert facts.users == {"198.18.0.11", "localhost"} and facts.db_exists
    plan = dbsql.mysql_decide(facts, HOSTS, "198.18.0.10")
    assert plan.create_users == ["198.18.0.12"] and plan.grant_only == []
    assert not plan.create_db and plan.bind
    problems = dbsql.mysql_problems(facts, plan, "om", "openmeetings", "198.18.0.10")
    assert "no user 'om'@'198.18.0.12'" in problems
    assert any("listens on 127.0.0.1" in p for p in problems)


def test_mysql_decide_nothing_to_do_when_all_there():
    facts = dbsql.MysqlFacts(users=set(HOSTS), db_exists=True, granted=set(HOSTS), bind="")
    assert dbsql.mysql_decide(facts, HOSTS, "198.18.0.10").empty


def test_mysql_grant_missing_for_existing_user():
    facts = dbsql.MysqlFacts(users=set(HOSTS), db_exists=True, granted={HOSTS[0]},
                             bind="0.0.0.0")
    plan = dbsql.mysql_decide(facts, HOSTS, "198.18.0.10")
    assert plan.grant_only == [HOSTS[1]] and not plan.bind and not plan.create_users


def test_mysql_user_sql_escapes_the_password_and_validates_names():
    sql = dbsql.mysql_create_user_sql("om", "198.18.0.11", "a'b\\c", "openmeetings")
    assert "IDENTIFIED BY 'a\\'b\\\\c'" in sql
    assert "SET SESSION sql_mode = ''" in sql.splitlines()[0]
    assert "GRANT ALL ON `openmeetings`.* TO 'om'@'198.18.0.11'" in sql
    with pytest.raises(ValueError):
        dbsql.mysql_create_user_sql("om'; DROP", "198.18.0.11", "x", "openmeetings")
    with pytest.raises(ValueError):
        dbsql.mysql_drop_user_sql("om", "198.18.0.11' OR 1")


@pytest.mark.parametrize(("setting", "address", "expected"), [
    ("127.0.0.1", "198.18.0.10", False),
    ("0.0.0.0", "198.18.0.10", True),
    ("", "198.18.0.10", True),
    ("*", "198.18.0.10", True),
    ("localhost,198.18.0.10", "198.18.0.10", True),
    ("127.0.0.1, 198.18.0.9", "198.18.0.10", False),
])
def test_listens_on(setting, address, expected):
    assert dbsql.listens_on(setting, address) is expected


@pytest.mark.parametrize(("version", "ok"), [
    ("10.11.6-MariaDB-0+deb12u1", True), ("10.6.12-MariaDB", False),
    ("8.0.36", True), ("8.0.12", False), ("5.7.44-log", False), ("11.4.2-MariaDB", True),
])
def test_bind_list_supported(version, ok):
    assert dbsql.bind_list_supported(version) is ok


def test_set_bind_address_replaces_in_server_sections_only():
    text = ("[client]\nbind-address = 1.2.3.4\n[mysqld]\nuser = mysql\n"
            "bind-address            = 127.0.0.1\n# bind-address = 9.9.9.9\n")
    out = dbsql.set_bind_address(text, "127.0.0.1,198.18.0.10")
    assert "[client]\nbind-address = 1.2.3.4\n" in out
    assert "bind-address            = 127.0.0.1,198.18.0.10\n" in out
    assert "# bind-address = 9.9.9.9\n" in out
    assert dbsql.set_bind_address(out, "127.0.0.1,198.18.0.10") == out


def test_set_bind_address_adds_line_or_section():
    assert dbsql.set_bind_address("[mysqld]\nuser = mysql\n", "10.0.0.1").startswith(
        "[mysqld]\nbind-address            = 10.0.0.1\nuser")
    assert dbsql.set_bind_address("[client]\n", "10.0.0.1").endswith(
        "[mysqld]\nbind-address            = 10.0.0.1\n")


def test_pick_cnf_last_defining_file_wins_else_default():
    out = "/etc/mysql/my.cnf\n/etc/mysql/mariadb.conf.d/50-server.cnf\ndefault:/x.cnf\n"
    assert pick_cnf(out) == "/etc/mysql/mariadb.conf.d/50-server.cnf"
    assert pick_cnf("default:/etc/mysql/mysql.conf.d/mysqld.cnf\n") == \
        "/etc/mysql/mysql.conf.d/mysqld.cnf"
    assert pick_cnf("") is None


def test_new_listen_value():
    assert dbsql.new_listen_value("127.0.0.1", "10.0.0.1") == "127.0.0.1,10.0.0.1"
    assert dbsql.new_listen_value("127.0.0.1", "10.0.0.1", list_ok=False) == "10.0.0.1"
    assert dbsql.new_listen_value("", "10.0.0.1") == "10.0.0.1"


# -- PostgreSQL -------------------------------------------------------------------------------

PG_HBA = """# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


def test_pg_probe_parse():
    out = ("config\t/etc/postgresql/15/main/postgresql.conf\n"
           "hba\t/etc/postgresql/15/main/pg_hba.conf\nlisten\tlocalhost\nrole\tt\tt\n"
           "db\tom\n")
    facts = dbsql.parse_pg_probe(out)
    assert facts.hba_file.endswith("pg_hba.conf") and facts.listen == "localhost"
    assert facts.role_exists and facts.role_scram and facts.db_owner == "om"
    plan = dbsql.pg_decide(facts, PG_HBA, "om", "openmeetings", HOSTS, "198.18.0.10")
    assert plan.listen and plan.hba == HOSTS and not plan.create_role and not plan.create_db


def test_hba_first_match_respects_order_and_masks():
    text = "host all all 198.18.0.0/24 reject\n" + dbsql.hba_line("db", "om", HOSTS[0]) + "\n"
    assert dbsql.hba_first_match(text, "db", "om", HOSTS[0])[1] == "reject"
    assert dbsql.hba_missing(text, "db", "om", HOSTS) == HOSTS
    assert dbsql.hba_first_match(text, "db", "om", "10.0.0.1") is None


def test_hba_with_lines_goes_before_first_rule_and_then_matches():
    text = "host all all 198.18.0.0/24 reject\n"
    out = dbsql.hba_with_lines(PG_HBA + text, "openmeetings", "om", HOSTS)
    assert dbsql.hba_missing(out, "openmeetings", "om", HOSTS) == []
    assert out.index("198.18.0.11/32") < out.index("local   all             postgres")
    assert "host\topenmeetings\tom\t198.18.0.12/32\tscram-sha-256" in out
    assert out.startswith("# TYPE")


def test_set_listen_addresses():
    conf = "#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;\nport = 5432\n"
    out = dbsql.set_listen_addresses(conf, "localhost,198.18.0.10")
    assert out.startswith(conf.splitlines(keepends=True)[0])
    assert "\nlisten_addresses = 'localhost,198.18.0.10'" in out
    again = dbsql.set_listen_addresses(out, "*")
    assert "listen_addresses = '*'" in again and again.count("\nlisten_addresses") == 1


def test_pg_role_sql_carries_password_through_psql_variable():
    sql = dbsql.pg_role_sql("om", "it's\\x", create=True)
    assert sql.splitlines()[0] == "\\set omw_pw 'it''s\\\\x'"
    assert "CREATE ROLE %I LOGIN PASSWORD %L', 'om', :'omw_pw') \\gexec" in sql
    with pytest.raises(ValueError):
        dbsql.psql_literal_set("pw", "a\nb")


# -- db-type and the rest -----------------------------------------------------------------------


def test_h2_is_refused_with_the_documentation_words():
    text = (FIXTURES / "9.1.0" / "templates" / "h2_persistence.xml").read_text()
    facts = persistence.inspect(text)
    status, detail, remedy = judge_db_type("mysql", facts.db_kind, facts.url)
    assert status == "failed" and "Db other than H2 should be used" in detail
    assert "re-install OpenMeetings" in remedy


def test_db_type_ok_and_mismatch():
    text = (FIXTURES / "9.1.0" / "persistence.xml").read_text()
    facts = persistence.inspect(text)
    assert judge_db_type("mariadb", facts.db_kind, facts.url)[0] == "ok"
    assert judge_db_type("postgresql", facts.db_kind, facts.url)[0] == "failed"


def test_restart_script_prefers_systemd_when_it_runs():
    script = restart_script("mariadb")
    assert "systemctl is-system-running" in script
    assert "systemctl restart mariadb" in script and "service mariadb restart" in script


@pytest.mark.parametrize(("code", "verdict"), [
    (1045, dblogin.BAD_CREDENTIALS), (1049, dblogin.NO_DATABASE),
    (2003, dblogin.UNREACHABLE), (1130, dblogin.BAD_CREDENTIALS), (1234, dblogin.ERROR),
])
def test_classify_mysql(code, verdict):
    assert dblogin.classify_mysql(code, "m").verdict == verdict


@pytest.mark.parametrize(("state", "verdict"), [
    ("28P01", dblogin.BAD_CREDENTIALS), ("28000", dblogin.BAD_CREDENTIALS),
    ("3D000", dblogin.NO_DATABASE), (None, dblogin.UNREACHABLE), ("XX000", dblogin.ERROR),
])
def test_classify_pg(state, verdict):
    assert dblogin.classify_pg(state, "m").verdict == verdict


def test_classify_tunnel_refusal():
    refused = dblogin.classify_tunnel_refusal("Connection refused")
    assert refused.verdict == dblogin.REFUSED and "Connection refused" in refused.detail
    assert dblogin.classify_tunnel_refusal("Connection timed out").verdict == dblogin.UNREACHABLE
    route = dblogin.classify_tunnel_refusal("No route to host")
    assert route.verdict == dblogin.UNREACHABLE and "No route to host" in route.detail


def test_login_blocking_reports_a_closed_tunnel_as_unreachable():
    import socket

    for kind in ("mariadb", "postgresql"):
        ours, theirs = socket.socketpair()
        theirs.close()  # the far end hung up before any greeting
        try:
            assert dblogin.login_blocking(kind, ours, "om", "x", "db", 2).verdict == \
                dblogin.UNREACHABLE
        finally:
            ours.close()


class FakeTunnels:
    """Stands in for remote.ssh.Remote.open_tunnel: refuses, never answers, or connects to
    a local server that closes at once."""

    def __init__(self, how: str, port: int = 0) -> None:
        self.how, self.port = how, port

    async def open_tunnel(self, host: str, port: int):  # noqa: ANN201
        import asyncio

        from omwizard.remote.results import TunnelRefused

        if self.how == "refused":
            raise TunnelRefused("n1", "Connection refused")
        if self.how == "silent":
            await asyncio.sleep(30)
        return await asyncio.open_connection("127.0.0.1", self.port)


def test_login_through_judges_the_tunnel_itself(monkeypatch):
    import asyncio

    monkeypatch.setattr(dblogin, "TUNNEL_TIMEOUT", 0.3)

    async def scenario() -> list[str]:
        async def hang_up(_reader, writer) -> None:  # noqa: ANN001
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        verdicts = []
        for how in ("refused", "silent", "closes"):
            got = await dblogin.login_through(FakeTunnels(how, port), "mariadb", "db", 3306,
                                              "om", "x", "db", timeout=2)
            verdicts.append(got.verdict)
        server.close()
        return verdicts

    assert asyncio.run(scenario()) == [dblogin.REFUSED, dblogin.UNREACHABLE,
                                       dblogin.UNREACHABLE]


# -- admin credentials (database.admin_user / admin_password) ----------------------------------

ADMIN_PASSWORD = "Adm1n-'q\"x\\y#z $(id)`id`;%s"


def admin_db(kind: str = "mariadb", password: str | None = ADMIN_PASSWORD) -> Database:
    return Database(type=kind, host="198.18.0.10", port=3306, name="openmeetings", user="om",
                    password=Secret("${OMW_DB_PASSWORD}", "pw"), admin_user="omwadmin",
                    admin_password=Secret("${OMW_DB_ADMIN_PASSWORD}", password))


def test_admin_mysql_client_keeps_the_password_off_argv_and_the_option_file_reads_back(
        tmp_path):
    """The script's option file, parsed by MariaDB's own my_print_defaults, holds the exact
    password; the password is only in stdin; the temp file is gone afterwards."""
    cmd, prefix = mysql_client(admin_db())
    assert isinstance(cmd, str) and ADMIN_PASSWORD not in cmd
    assert prefix == ADMIN_PASSWORD + "\n"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mysql").write_text(  # stands in for the client: print what it would read
        '#!/bin/sh\nprintf "%s\\n" "$1" > "$OMW_SEEN"\nexec my_print_defaults "$1" client\n')
    (fake / "mysql").chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"PATH": f"{fake}:/usr/bin:/bin", "TMPDIR": str(tmp),
           "OMW_SEEN": str(tmp_path / "seen")}
    proc = subprocess.run(["sh", "-c", cmd], input=prefix + "SELECT 1;\n", env=env,
                          capture_output=True, text=True, timeout=30, check=True)
    assert proc.stdout.splitlines() == [f"--password={ADMIN_PASSWORD}"]
    assert (tmp_path / "seen").read_text().startswith("--defaults-extra-file=" + str(tmp))
    assert list(tmp.iterdir()) == []  # the trap removed the 0600 file


def test_admin_psql_script_keeps_the_password_off_argv():
    db = admin_db("postgresql")
    script = psql_script(db, "-f -")
    assert ADMIN_PASSWORD not in script
    assert "-U omwadmin" in script and "PGPASSFILE=" in script and "read -r pw" in script


def test_changes_made_with_admin_credentials_name_their_manual_undo():
    db = admin_db()
    drop = dbsql.mysql_drop_user_sql("om", "198.18.0.11")
    text = manual_undo(db, "drop user", drop)
    assert text.startswith("drop user by hand: DROP USER IF EXISTS 'om'@'198.18.0.11'")
    assert "omwadmin" in text and ADMIN_PASSWORD not in text
    assert mysql_undo(db, drop) is None  # no undo command: it would have no password
    plain = Database(type="mariadb", host="h", port=3306, name="openmeetings", user="om")
    assert manual_undo(plain, "drop user", drop) == ""
    assert mysql_undo(plain, drop) == ["mysql", "-e", drop]


def test_pg_probe_and_its_hba_file_in_one_command(tmp_path):
    """remote-user's PostgreSQL check: the probe names pg_hba.conf, the same command reads it
    (run here in a local shell, a printf standing in for psql)."""
    import subprocess

    from omwizard.facts.database import parse_pg_probe, split_hba, with_hba

    hba = tmp_path / "pg_hba.conf"
    hba.write_text("local all postgres peer\nhost all om 198.18.0.11/32 scram-sha-256")
    probe = f"printf 'config\\t/etc/pg.conf\\nhba\\t{hba}\\nlisten\\t*\\n'"
    done = subprocess.run(["sh", "-c", with_hba(probe)], capture_output=True, text=True)
    out, text = split_hba(done.stdout)
    assert done.returncode == 0 and text == hba.read_text()  # exactly the file
    facts = parse_pg_probe(out)
    assert (facts.config_file, facts.hba_file, facts.listen) == ("/etc/pg.conf", str(hba), "*")
    failed = subprocess.run(["sh", "-c", with_hba("echo 'psql: refused' >&2; exit 2")],
                            capture_output=True, text=True)
    assert failed.returncode == 2 and "psql: refused" in failed.stderr
    assert split_hba(failed.stdout)[1] is None  # nothing read after a failed probe


def test_the_admin_probe_is_a_fact_only_without_an_admin_password():
    socket_db = Database(type="mariadb", host="198.18.0.10", port=3306, name="openmeetings",
                         user="om", password=Secret("${OMW_DB_PASSWORD}", "p@ss"))
    command = dbsql.admin_probe_command(socket_db)
    words = shlex.split(command)
    assert words[:5] == ["(", "mysql", "-N", "-B", "-e"]
    assert words[5] == dbsql.mysql_probe_sql("om", "openmeetings")  # one argv word: quoted
    assert "p@ss" not in command
    pg = Database(type="postgresql", host="h", port=5432, name="openmeetings", user="om",
                  password=Secret("${OMW_DB_PASSWORD}", "p@ss"))
    pg_command = dbsql.admin_probe_command(pg)
    assert dbsql.pg_probe_sql("om", "openmeetings") in pg_command  # a here-document, no stdin
    assert "runuser -u postgres" in pg_command and "p@ss" not in pg_command
    assert dbsql.HBA_MARK.strip("\x1e") in pg_command  # then the pg_hba.conf it names
    assert dbsql.admin_probe_command(admin_db()) == "true"  # its password goes on stdin: no fact
    assert dbsql.admin_probe_command(admin_db("postgresql")) == "true"
    h2 = Database(type="h2", host="h", port=1, name="openmeetings", user="om")
    assert dbsql.admin_probe_command(h2) == "true"


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
def test_the_admin_probe_reports_its_status_from_a_real_shell(kind):
    """Whatever the machine has (a server, a client without one, no client): the wrapper's
    status line arrives and parses, with the client's words in the output."""
    db = Database(type=kind, host="h", port=5999, name="openmeetings", user="om")
    run = subprocess.run(["sh", "-c", dbsql.admin_probe_command(db)], capture_output=True,
                         text=True, timeout=60, cwd="/")
    got = dbsql.parse_admin_probe(run.stdout)
    assert got.status is not None, run.stdout
    assert got.status == 0 or got.output.strip(), run.stdout


def test_the_admin_probe_fact_parses_status_and_output():
    rows = "user\t198.18.0.11\nbind\t127.0.0.1\n"
    got = dbsql.parse_admin_probe(rows + "\n" + dbsql.PROBE_STATUS_MARK + "0\n")
    assert got.status == 0 and dbsql.parse_mysql_probe(got.output).bind == "127.0.0.1"
    failed = dbsql.parse_admin_probe("ERROR 2002 (HY000): Can't connect\n\n"
                                     + dbsql.PROBE_STATUS_MARK + "1\n")
    assert failed.status == 1 and "Can't connect" in failed.output
    assert dbsql.parse_admin_probe("true's empty output").status is None  # not read this way
    assert dbsql.parse_admin_probe("").status is None
