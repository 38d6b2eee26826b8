"""remote-user accepts the accounts an operator makes by hand: 'om'@'10.1.1.%' serves every
node it matches, as the MySQL/MariaDB server itself matches account hosts."""

from __future__ import annotations

import pytest

from omwizard.facts import database as dbsql

HOSTS = ["198.18.0.11", "198.18.0.12"]


@pytest.mark.parametrize(("pattern", "address", "ok"), [
    ("198.18.0.%", "198.18.0.11", True), ("%", "198.18.0.11", True),
    ("198.18.0.1_", "198.18.0.11", True), ("198.18.0.1_", "198.18.0.110", False),
    ("198.18.1.%", "198.18.0.11", False), ("198.18.0.0/255.255.255.0", "198.18.0.12", True),
    ("198.18.1.0/255.255.255.0", "198.18.0.12", False), ("localhost", "198.18.0.11", False),
    ("198.18.0.1.1", "198.18.0.111", False),  # '.' is literal, not a regex dot
    ("bad/mask", "198.18.0.11", False),
])
def test_host_patterns_match_as_the_server_does(pattern: str, address: str, ok: bool) -> None:
    assert dbsql.mysql_host_matches(pattern, address) is ok


def test_the_most_specific_account_is_the_one_used() -> None:
    accounts = {"%", "198.18.0.%", "198.18.0.12"}
    assert dbsql.mysql_account_for("198.18.0.12", accounts) == "198.18.0.12"
    assert dbsql.mysql_account_for("198.18.0.11", accounts) == "198.18.0.%"
    assert dbsql.mysql_account_for("10.0.0.1", accounts) == "%"
    assert dbsql.mysql_account_for("10.0.0.1", {"localhost"}) is None


def test_a_granted_pattern_account_needs_nothing() -> None:
    facts = dbsql.MysqlFacts(users={"198.18.0.%"}, db_exists=True, granted={"198.18.0.%"},
                             bind="0.0.0.0")
    assert dbsql.mysql_decide(facts, HOSTS, "198.18.0.10").empty


def test_a_pattern_account_without_rights_gets_each_node_its_own() -> None:
    facts = dbsql.MysqlFacts(users={"198.18.0.%"}, db_exists=True, granted=set(),
                             bind="0.0.0.0")
    plan = dbsql.mysql_decide(facts, HOSTS, "198.18.0.10")
    assert plan.create_users == HOSTS and plan.grant_only == []
    problems = dbsql.mysql_problems(facts, plan, "om", "openmeetings", "198.18.0.10")
    assert "no user 'om'@'198.18.0.11'" in problems


def test_a_pattern_that_misses_a_node_leaves_it_missing() -> None:
    facts = dbsql.MysqlFacts(users={"198.18.0.1_"}, db_exists=True, granted={"198.18.0.1_"},
                             bind="0.0.0.0")
    plan = dbsql.mysql_decide(facts, [*HOSTS, "198.18.0.5"], "198.18.0.10")
    assert plan.create_users == ["198.18.0.5"]
