"""The MySQL/MariaDB account remove-node drops, as the journal keeps it (typed, no password),
and the SQL a rollback re-creates it with (the password only in that SQL, sent on stdin)."""

from __future__ import annotations

import json

import pytest

from omwizard.facts.base import StepData
from omwizard.facts.membership import DroppedAccount, recreate_account_sql

DROPPED = DroppedAccount("om", "198.18.0.13", "openmeetings", True)


def test_the_journal_keeps_who_where_and_which_grant_and_no_password() -> None:
    saved = json.loads(json.dumps(DROPPED.to_json()))
    assert saved == {"kind": "dropped-mysql-account", "user": "om", "host": "198.18.0.13",
                     "database": "openmeetings", "all_on_database": True}
    assert StepData.from_json(saved) == DROPPED
    assert DROPPED.account == "'om'@'198.18.0.13'"


def test_recreated_with_its_grant_and_the_password_escaped() -> None:
    sql = recreate_account_sql(DROPPED, "p'w\\x")
    assert "CREATE USER IF NOT EXISTS 'om'@'198.18.0.13' IDENTIFIED BY 'p\\'w\\\\x';" in sql
    assert "GRANT ALL ON `openmeetings`.* TO 'om'@'198.18.0.13';" in sql
    assert sql.startswith("SET SESSION sql_mode = '';")  # backslash escaping holds


def test_an_account_without_omwizards_grant_comes_back_without_it() -> None:
    sql = recreate_account_sql(DroppedAccount("om", "198.18.0.13", "openmeetings", False), "pw")
    assert "CREATE USER IF NOT EXISTS 'om'@'198.18.0.13'" in sql
    assert "GRANT" not in sql


@pytest.mark.parametrize("bad", [DroppedAccount("om; DROP", "198.18.0.13", "om", True),
                                 DroppedAccount("om", "198.18.0.13' OR '1", "om", True),
                                 DroppedAccount("om", "198.18.0.13", "om`x", True)])
def test_a_tampered_record_runs_no_sql(bad: DroppedAccount) -> None:
    with pytest.raises(ValueError):
        recreate_account_sql(bad, "pw")
