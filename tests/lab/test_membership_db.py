"""remove-node against the lab's real database servers: what the leaving node's database
access becomes, and what a rollback of the removal gives back.

- PostgreSQL: a 2-node cluster grown to 3; remove-node n3 drops n3's pg_hba.conf line and
  reloads (n3 is refused from then on, by the running server), n1 and n2 still log in
  (db-login); a rollback of the removal puts the line back, reloaded: n3 logs in again.
- MariaDB with one account per address: remove-node drops 'om'@n3 (the journal keeps who,
  where and which grant, never the password); a rollback of the removal, with the database
  password known (OMW_DB_PASSWORD, given to mysql on stdin only), re-creates the account
  with ALL on the database, and n3 logs in with the password again.

The removal runs with a state directory of its own, so the rollback undoes the removal alone
(the state of the grow would also undo the grow). The cluster is test_membership.py's.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from omwizard.lab import services
from omwizard.lab.lab import DB_ADDRESS as DB
from tests.lab.test_membership import (
    PASSWORD,
    apply_all,
    by,
    members_ok,
    omw,
    plan_text,
    prepare,
    restore,
)

pytestmark = pytest.mark.lab

N3 = "198.18.0.13"
HBA = f"{services.PG_CONF_DIR}/pg_hba.conf"
PERSISTENCE = "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml"
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "openmeetings"


def pg_login(node) -> tuple[bool, str]:
    """psql from the node's own address as the cluster's user (password on stdin)."""
    script = ("IFS= read -r PGPASSWORD; export PGPASSWORD; "
              + shlex.join(["psql", "-X", "-At", "-h", DB, "-U", "om", "-d", "openmeetings",
                            "-c", "SELECT 1"]))
    proc = node.run(script, input=PASSWORD + "\n")
    return proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


def mysql_login(node) -> tuple[bool, str]:
    """mysql from the node's own address as the cluster's user (password on stdin)."""
    script = ("IFS= read -r MYSQL_PWD; export MYSQL_PWD; "
              + shlex.join(["mysql", "-N", "-B", "-h", DB, "-u", "om", "openmeetings",
                            "-e", "SELECT 1"]))
    proc = node.run(script, input=PASSWORD + "\n")
    return proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


def grown(lab, plan: Path, state: Path, **overrides) -> None:
    """A running 2-node cluster, then n3 added to the plan and applied."""
    for names in (["n1", "n2"], ["n1", "n2", "n3"]):
        plan.write_text(plan_text(lab, names, **overrides))
        rc, doc, err = apply_all(plan, state)
        assert doc is not None, err
        members_ok(doc, names)


def removed(plan: Path, state: Path) -> dict:
    rc, doc, err = omw("remove-node", str(plan), "n3", "--yes", state=state)
    assert rc == 0 and doc is not None, err[-3000:]
    members_ok(doc, ["n1", "n2"])
    assert "name: n3" not in plan.read_text()
    return doc


def logins_ok(plan: Path, state: Path) -> None:
    rc, doc, err = omw("check", str(plan), "--section", "database", state=state)
    assert doc is not None, err
    login = by(doc, "database.db-login")
    assert {n: login[n]["status"] for n in ("n1", "n2")} == {"n1": "ok", "n2": "ok"}, login


@pytest.fixture
def db_lab(lab, lab_manager):
    prepare(lab, lab_manager)
    yield lab
    services.stop_postgres(lab.db)
    restore(lab)


def test_postgresql_removal_drops_the_hba_line_and_its_rollback_restores_it(
        db_lab, tmp_path: Path) -> None:
    lab = db_lab
    services.stop_mariadb(lab.db)
    services.start_postgres(lab.db)
    source = (FIXTURES / "9.1.0" / "persistence-postgresql.xml").read_text()
    for node in lab.nodes.values():
        node.write_file(PERSISTENCE, source)
    plan, state = tmp_path / "plan.yaml", tmp_path / "state"
    grown(lab, plan, state, database={"type": "postgresql", "port": 5432})
    hba_before = lab.db.run(["cat", HBA], check=True).stdout
    assert N3 in hba_before
    ok, err = pg_login(lab.nodes["n3"])
    assert ok, err

    removal = tmp_path / "removal-state"
    doc = removed(plan, removal)
    assert by(doc, "database.drop-account")["db"]["status"] == "changed"
    hba = lab.db.run(["cat", HBA], check=True).stdout
    assert N3 not in hba and "198.18.0.11" in hba and "198.18.0.12" in hba
    assert hba.splitlines() == [ln for ln in hba_before.splitlines() if N3 not in ln]
    ok, err = pg_login(lab.nodes["n3"])  # the running server reloaded: n3 is refused now
    assert not ok and "no pg_hba.conf entry" in err, err
    logins_ok(plan, state)

    rc, doc, err = omw("rollback", str(plan), "--section", "database", "--yes", state=removal)
    assert rc == 0 and doc is not None, err[-3000:]
    assert by(doc, "database.drop-account")["db"]["status"] == "rolled-back", doc
    assert lab.db.run(["cat", HBA], check=True).stdout == hba_before
    ok, err = pg_login(lab.nodes["n3"])  # reloaded after the file came back
    assert ok, err


def test_mariadb_removal_rollback_recreates_the_account_with_the_password(
        db_lab, tmp_path: Path) -> None:
    lab = db_lab
    plan, state = tmp_path / "plan.yaml", tmp_path / "state"
    grown(lab, plan, state)
    account = f"SELECT Host FROM mysql.user WHERE User='om' AND Host='{N3}'"
    grants = f"SHOW GRANTS FOR 'om'@'{N3}'"
    granted = services.mysql(lab.db, grants).stdout
    assert "GRANT ALL PRIVILEGES ON `openmeetings`.*" in granted
    ok, err = mysql_login(lab.nodes["n3"])
    assert ok, err

    removal = tmp_path / "removal-state"
    doc = removed(plan, removal)
    assert by(doc, "database.drop-account")["db"]["status"] == "changed"
    assert services.mysql(lab.db, account).stdout.strip() == ""
    assert not mysql_login(lab.nodes["n3"])[0]
    logins_ok(plan, state)
    journal = (removal / "journal.json").read_text()
    assert PASSWORD not in journal and "dropped-mysql-account" in journal

    # with it: the account again, its grant, and n3 logs in with the password
    rc, doc, err = omw("rollback", str(plan), "--section", "database", "--yes", state=removal)
    assert rc == 0 and doc is not None, err[-3000:]
    assert PASSWORD not in err and PASSWORD not in str(doc)
    result = by(doc, "database.drop-account")["db"]
    assert result["status"] == "rolled-back" and "created again" in result["detail"], result
    assert services.mysql(lab.db, account).stdout.strip() == N3
    assert services.mysql(lab.db, grants).stdout == granted
    ok, err = mysql_login(lab.nodes["n3"])
    assert ok, err
    assert PASSWORD not in (removal / "journal.json").read_text()
