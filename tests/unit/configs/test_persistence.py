"""persistence.xml transforms on the real OpenMeetings files (every release, every DB template)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from omwizard.configs.persistence import (
    REMOTE_COMMIT_PROPERTY,
    REMOTE_COMMIT_VALUE,
    ConnectionSettings,
    activate_remote_commit,
    format_connection_properties,
    inspect,
    parse_connection_properties,
    parse_jdbc_url,
    problems,
    set_connection,
)
from tests.unit.configs.releases import OM, VERSIONS

JAKARTA = {"8.1.0", "9.1.0"}
NASTY = "p&<>\";'=x y&amp;"  # everything XML cares about, plus '=' and an entity look-alike


def installed(version: str) -> str:
    """A node's persistence.xml: the real installed copy, else built as README.md describes."""
    real = OM / version / "persistence.xml"
    if real.exists():
        return real.read_text()
    text = (OM / version / "templates" / "mysql_persistence.xml").read_text()
    text = re.sub(r"(Url=jdbc:mysql://[^\s,\"]*)", r"\1&amp;serverTimezone=Europe/Berlin", text)
    return text.replace("${db_user}", "om").replace("${db_pass}", "Install-Pass-1")


def templates() -> list[Path]:
    return sorted(OM.glob("*/templates/*_persistence.xml"))


def value_of(text: str, name: str) -> str | None:
    root = etree.fromstring(text.encode())
    for element in root.iter("{*}property"):
        if element.get("name") == name:
            return element.get("value")
    return None


def pairs_of(text: str) -> dict[str, str]:
    value = value_of(text, "openjpa.ConnectionProperties")
    assert value is not None
    return dict(parse_connection_properties(value))


def comments_of(text: str) -> list[str]:
    root = etree.fromstring(text.encode())
    head = list(root.itersiblings(preceding=True))
    return [c.text for c in head + list(root.iter(etree.Comment))]


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("---") or line.startswith("+++") or line.startswith("@@"):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def plan(db_type: str = "mysql", **kw: object) -> ConnectionSettings:
    base: dict[str, object] = dict(
        db_type=db_type, host="10.1.1.9", port=3306, database="omcluster", user="omc",
        password="S3cret-pw", timezone="Europe/Paris",
    )  # fmt: skip
    base.update(kw)
    return ConnectionSettings(**base)  # type: ignore[arg-type]


PLAN_PORTS = {"mysql": 3306, "postgresql": 5432, "mssql": 1433, "oracle": 1521, "db2": 50000}


# ------------------------------------------------------------------ inspect


@pytest.mark.parametrize("version", VERSIONS)
def test_inspect_installed_files(version: str) -> None:
    facts = inspect(installed(version))
    assert facts.db_kind == "mysql"
    assert (facts.host, facts.port, facts.database) == ("localhost", 3306, "openmeetings")
    assert facts.user == "om" and facts.password_set
    assert facts.server_timezone == "Europe/Berlin"
    assert ("useSSL", "false") in facts.url_params
    assert not facts.remote_commit_provider_active and facts.remote_commit_value is None
    assert facts.namespace == ("jakarta" if version in JAKARTA else "javax")
    assert "Install-Pass-1" not in repr(facts)


def test_inspect_postgresql_installed() -> None:
    facts = inspect((OM / "9.1.0" / "persistence-postgresql.xml").read_text())
    assert (facts.db_kind, facts.host, facts.port, facts.database) == (
        "postgresql", "localhost", 5432, "openmeetings",
    )  # fmt: skip
    assert facts.user == "om" and facts.password_set and facts.server_timezone is None


@pytest.mark.parametrize("path", templates(), ids=lambda p: f"{p.parent.parent.name}-{p.name}")
def test_inspect_templates(path: Path) -> None:
    kind = path.name.split("_")[0]
    facts = inspect(path.read_text())
    expected = {"derby": "derby", "h2": "h2"}.get(kind, kind)
    assert facts.db_kind == expected
    if kind in ("h2", "derby"):
        assert facts.host is None
        assert not facts.password_set
    else:
        assert facts.host == "localhost"
        assert facts.effective_port == PLAN_PORTS[kind]
        assert facts.database in ("openmeetings", "openmeet")


def test_h2_is_reported_with_remedy() -> None:
    text = (OM / "9.1.0" / "templates" / "h2_persistence.xml").read_text()
    lines = problems(text, plan())
    assert len(lines) == 1 and "h2" in lines[0] and "mysql" in lines[0]
    with pytest.raises(ValueError, match="h2"):
        set_connection(text, plan())


def test_problems_name_each_difference_never_the_password() -> None:
    text = installed("9.1.0")
    lines = problems(text, plan(password="Other-Secret"))
    assert lines == [
        "Host is localhost, the plan says 10.1.1.9",
        "Database is openmeetings, the plan says omcluster",
        "User is om, the plan says omc",
        "Password differs",
        "serverTimezone is Europe/Berlin, the plan's zone is Europe/Paris",
    ]
    assert not any("Other-Secret" in line or "Install-Pass-1" in line for line in lines)
    same = plan(
        host="localhost",
        database="openmeetings",
        user="om",
        password="Install-Pass-1",
        timezone="Europe/Berlin",
    )
    assert problems(text, same) == []
    assert "Install-Pass-1" not in repr(same)


def test_problems_port_and_type() -> None:
    text = installed("7.0.0")
    assert "Port is 3306, the plan says 3307" in problems(text, plan(port=3307))
    assert problems(text, plan("postgresql"))[0].startswith("Database type is mysql")
    # MariaDB talks to the MySQL template's Url: no type problem.
    assert not any("type" in p for p in problems(text, plan("mariadb")))


# ------------------------------------------------------------------ set_connection


def assert_minimal_edit(old: str, new: str, want: ConnectionSettings) -> None:
    """Only Url/Username/Password token text changed; everything else identical."""
    removed, added = changed_lines(old, new)
    assert len(removed) == len(added) and removed
    for line in removed:
        assert re.search(r"(Url|Username|Password)\s*=", line), line
    assert len(old.splitlines()) == len(new.splitlines())
    assert comments_of(old) == comments_of(new)
    before, after = pairs_of(old), pairs_of(new)
    assert list(before) == list(after)  # same keys, same order
    for key in before:
        if key not in ("Url", "Username", "Password"):
            assert before[key] == after[key]
    assert after["Username"] == want.user and after["Password"] == want.password
    old_url, new_url = parse_jdbc_url(before["Url"]), parse_jdbc_url(after["Url"])
    assert new_url.host == want.host
    keep = [p for p in old_url.params if p[0] not in ("serverTimezone", "databaseName")]
    assert [p for p in new_url.params if p[0] not in ("serverTimezone", "databaseName")] == keep
    # every other property is untouched
    root_old, root_new = etree.fromstring(old.encode()), etree.fromstring(new.encode())
    others_old = [(e.get("name"), e.get("value")) for e in root_old.iter("{*}property")]
    others_new = [(e.get("name"), e.get("value")) for e in root_new.iter("{*}property")]
    assert [o for o in others_old if o[0] != "openjpa.ConnectionProperties"] == [
        o for o in others_new if o[0] != "openjpa.ConnectionProperties"
    ]
    assert set_connection(new, want) == new
    assert problems(new, want) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_set_connection_installed(version: str) -> None:
    old = installed(version)
    want = plan(password=NASTY)
    new = set_connection(old, want)
    assert_minimal_edit(old, new, want)
    removed, added = changed_lines(old, new)
    # the installer's DOM writes the value on one line; copies built here keep the template's
    assert len(removed) == (1 if (OM / version / "persistence.xml").exists() else 3)
    url = pairs_of(new)["Url"]
    assert url.startswith("jdbc:mysql://10.1.1.9:3306/omcluster?autoReconnect=true&")
    assert url.endswith("&serverTimezone=Europe/Paris")
    assert url.count("serverTimezone") == 1
    assert new.startswith(old[: old.index("<persistence ")])  # header kept byte for byte


@pytest.mark.parametrize("path", templates(), ids=lambda p: f"{p.parent.parent.name}-{p.name}")
def test_set_connection_templates(path: Path) -> None:
    kind = path.name.split("_")[0]
    old = path.read_text()
    if kind in ("h2", "derby"):
        with pytest.raises(ValueError):
            set_connection(old, plan())
        return
    want = plan(
        kind,
        port=PLAN_PORTS[kind] + 1,
        password=NASTY,
        timezone="Europe/Paris" if kind == "mysql" else None,
    )
    new = set_connection(old, want)
    assert_minimal_edit(old, new, want)
    removed, _ = changed_lines(old, new)
    assert len(removed) == 3  # template: Url, Username, Password each on its own line
    facts = inspect(new)
    assert (facts.host, facts.port, facts.database) == (
        "10.1.1.9",
        PLAN_PORTS[kind] + 1,
        "omcluster",
    )
    url = pairs_of(new)["Url"]
    expected_head = {
        "mysql": "jdbc:mysql://10.1.1.9:3307/omcluster?autoReconnect=true&",
        "postgresql": "jdbc:postgresql://10.1.1.9:5433/omcluster",
        "mssql": "jdbc:sqlserver://10.1.1.9:1434;databaseName=omcluster",
        "oracle": "jdbc:oracle:thin:@10.1.1.9:1522:omcluster",
        "db2": "jdbc:db2://10.1.1.9:50001/omcluster",
    }[kind]
    assert url.startswith(expected_head)


def hand_edited() -> str:
    """The 9.1.0 PostgreSQL node file as an operator might leave it."""
    text = (OM / "9.1.0" / "persistence-postgresql.xml").read_text()
    old = re.search(r'<property name="openjpa.ConnectionProperties" value="([^"]*)"/>', text)
    assert old is not None
    value = old.group(1).replace(",Url=", ",\n\t\t\t\t  Url =  ")
    value = value.replace(",Username=", ", Username = ")
    replacement = (
        '<!-- edited by hand: <property name="openjpa.ConnectionProperties" '
        'value="Url=jdbc:postgresql://decoy:1/x,Username=decoy"/> -->\n\t\t\t'
        f"<property\n\t\t\t\tvalue='{value}'\n\t\t\t\tname = 'openjpa.ConnectionProperties' />"
        "<!-- trailing note -->"
    )
    text = text[: old.start()] + replacement + text[old.end() :]
    return text.replace("\n", "\r\n")


def test_set_connection_hand_edited_crlf_reordered() -> None:
    old = hand_edited()
    facts = inspect(old)
    assert (facts.db_kind, facts.host, facts.user) == ("postgresql", "localhost", "om")
    want = plan("postgresql", port=5432, password=NASTY, timezone=None)
    new = set_connection(old, want)
    assert_minimal_edit(old, new, want)
    assert "decoy:1/x,Username=decoy" in new  # the commented-out copy is left alone
    assert new.count("\r\n") == old.count("\r\n") and "\n" not in new.replace("\r\n", "")
    removed, added = changed_lines(old, new)
    assert len(removed) == 1  # Url..Password share the line after DriverClassName
    assert added[0].replace("\r", "") == (
        "\t\t\t\t  Url =  jdbc:postgresql://10.1.1.9:5432/omcluster, maxTotal=100      , "
        "maxIdle=100      , minIdle=0      , maxWaitMillis=10000      , TestOnBorrow=true      , "
        "poolPreparedStatements=true      , Username = omc,"
        "Password=p&amp;&lt;&gt;&quot;;&apos;=x y&amp;amp;'"
    )
    assert pairs_of(new)["Password"] == NASTY


def test_port_absent_stays_absent_unless_needed() -> None:
    text = installed("9.1.0").replace("localhost:3306", "localhost")
    assert inspect(text).port is None and inspect(text).effective_port == 3306
    same_port = set_connection(text, plan())
    assert pairs_of(same_port)["Url"].startswith("jdbc:mysql://10.1.1.9/omcluster?")
    other = set_connection(text, plan(port=3310))
    assert pairs_of(other)["Url"].startswith("jdbc:mysql://10.1.1.9:3310/omcluster?")


def test_server_timezone_added_when_absent() -> None:
    text = installed("9.1.0").replace("&amp;serverTimezone=Europe/Berlin", "")
    assert inspect(text).server_timezone is None
    assert "serverTimezone is not set, the plan's zone is Europe/Paris" in problems(text, plan())
    new = set_connection(text, plan())
    tail = "&nullNamePatternMatchesAll=true&serverTimezone=Europe/Paris"
    assert pairs_of(new)["Url"].endswith(tail)
    kept = set_connection(text, plan(timezone=None))
    assert "serverTimezone" not in pairs_of(kept)["Url"]


@pytest.mark.parametrize("bad", ["a,b", " lead", "trail ", "tab\tin", "new\nline"])
def test_password_that_openjpa_would_mangle_is_refused(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        set_connection(installed("9.1.0"), plan(password=bad))
    assert bad not in str(info.value)


def test_comma_message_names_the_reason() -> None:
    with pytest.raises(ValueError, match="comma"):
        set_connection(installed("5.0.0"), plan(password="x,y"))


# ------------------------------------------------------------------ remote commit provider


@pytest.mark.parametrize("version", VERSIONS)
def test_activate_remote_commit_uncomments(version: str) -> None:
    old = installed(version)
    new = activate_remote_commit(old)
    removed, added = changed_lines(old, new)
    assert removed == [
        '\t\t\t<!--property name="openjpa.RemoteCommitProvider" '
        'value="tcp(Addresses=127.0.0.1)" /-->'
    ]
    assert added == [
        '\t\t\t<property name="openjpa.RemoteCommitProvider" value="tcp(Addresses=127.0.0.1)" />'
    ]
    facts = inspect(new)
    assert facts.remote_commit_provider_active
    assert facts.remote_commit_value == REMOTE_COMMIT_VALUE
    assert activate_remote_commit(new) == new


@pytest.mark.parametrize(
    "path",
    sorted(OM.glob("*/templates/h2_persistence.xml"))
    + [OM / "4.0.11" / "templates" / "derby_persistence.xml"],
    ids=lambda p: p.parent.parent.name + "-" + p.name,
)
def test_activate_remote_commit_inserts_where_absent(path: Path) -> None:
    old = path.read_text()
    assert not inspect(old).remote_commit_provider_active
    new = activate_remote_commit(old)
    removed, added = changed_lines(old, new)
    assert removed == []
    assert added == [
        f'\t\t\t<property name="{REMOTE_COMMIT_PROPERTY}" value="{REMOTE_COMMIT_VALUE}"/>'
    ]
    root = etree.fromstring(new.encode())
    props = root.find("{*}persistence-unit/{*}properties")
    assert props is not None
    last = [e for e in props if isinstance(e.tag, str)][-1]
    assert last.get("name") == REMOTE_COMMIT_PROPERTY
    assert activate_remote_commit(new) == new


def test_activate_remote_commit_crlf_and_other_provider() -> None:
    old = (OM / "9.1.0" / "templates" / "h2_persistence.xml").read_text().replace("\n", "\r\n")
    new = activate_remote_commit(old)
    assert new.count("\r\n") == old.count("\r\n") + 1 and "\n" not in new.replace("\r\n", "")
    sjvm = installed("9.1.0").replace(
        '<!--property name="openjpa.RemoteCommitProvider" value="tcp(Addresses=127.0.0.1)" /-->',
        '<property value="sjvm" name="openjpa.RemoteCommitProvider"/>',
    )
    fixed = activate_remote_commit(sjvm)
    assert inspect(fixed).remote_commit_value == REMOTE_COMMIT_VALUE
    assert len(changed_lines(sjvm, fixed)[0]) == 1


# ------------------------------------------------------------------ properties


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=",\ufffe\uffff"),
    max_size=30,
).map(str.strip)
_key = st.from_regex(r"[A-Za-z][A-Za-z0-9.]{0,15}", fullmatch=True)


@given(st.lists(st.tuples(_key, _text), max_size=8), st.sampled_from([",", ", ", "\n\t, "]))
def test_properties_round_trip(pairs: list[tuple[str, str]], sep: str) -> None:
    assert parse_connection_properties(format_connection_properties(pairs, sep)) == pairs


@settings(max_examples=60, deadline=None)
@given(_text.filter(bool), _text.filter(bool))
def test_any_acceptable_credentials_round_trip_through_lxml(user: str, password: str) -> None:
    old = installed("9.1.0")
    want = plan(user=user, password=password)
    new = set_connection(old, want)
    pairs = pairs_of(new)
    assert (pairs["Username"], pairs["Password"]) == (user, password)
    assert problems(new, want) == []
    assert set_connection(new, want) == new
