"""Bad input, fuzzed: any plan file and any value in any field is a PlanError or a valid plan.

Never another exception (a traceback is a bug: the CLI turns only PlanError into exit 2).
A valid plan is also safe to use: the fields that reach a remote shell or a config file
unquoted (names, hosts, paths, interfaces, options, users) hold no shell metacharacter, and a
valid plan survives dump -> parse unchanged without ever writing a literal secret.
"""

from __future__ import annotations

import copy
import dataclasses
import shlex
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omwizard.plan.model import Plan, PlanError, dump_plan, parse_plan_text, plan_from_dict

SECRET = "pw-$(touch /tmp/pwned)`id`;|&'\"<x>]]>"
ENV = {"OMW_DB_PASSWORD": SECRET, "OMW_OTHER": "$(reboot)"}
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def base() -> dict[str, Any]:
    return {
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin", "om_home": "/opt/om"},
        "ssh": {"user": "root", "port": 22, "identity": "~/.ssh/id_ed25519",
                "known_hosts": "~/.ssh/known_hosts", "host_keys": "strict", "sudo": "auto",
                "connect_timeout": 10},
        "nodes": [
            {"name": "om1", "host": "10.1.1.1", "address": "10.1.1.1", "interface": "eth0",
             "server_url": "https://om1.example.org/openmeetings", "roles": ["om", "storage"]},
            {"name": "om2", "host": "om2.example.org", "address": "10.1.1.2",
             "server_url": "http://om2.example.org:5080/openmeetings", "roles": ["om"],
             "ssh": {"user": "deploy", "sudo": "always"}},
            {"name": "db", "host": "10.1.1.3", "roles": ["database"]},
        ],
        "database": {"type": "mariadb", "host": "10.1.1.3", "port": 3306,
                     "name": "openmeetings", "user": "om", "password": "${OMW_DB_PASSWORD}",
                     "manage": True},
        "network": {"join": "multicast", "multicast_group": "224.0.0.0",
                    "multicast_port": 54327, "multicast_ttl": 32, "multicast_timeout": 2,
                    "route": "224.0.0.0/4", "interfaces": ["10.1.1.*"]},
        "storage": {"kind": "nfs", "path": "/opt/omdata",
                    "export_options": "rw,sync,no_subtree_check,no_root_squash",
                    "mount_options": "timeo=50,hard,intr"},
    }


# every string field of the plan, as a path into base()
FIELDS = [
    ("cluster", "name"), ("cluster", "timezone"), ("cluster", "om_home"),
    ("ssh", "user"), ("ssh", "identity"), ("ssh", "known_hosts"), ("ssh", "host_keys"),
    ("ssh", "sudo"),
    ("nodes", 0, "name"), ("nodes", 0, "host"), ("nodes", 0, "address"),
    ("nodes", 0, "interface"), ("nodes", 0, "server_url"), ("nodes", 1, "host"),
    ("nodes", 1, "ssh", "user"), ("nodes", 1, "server_url"), ("nodes", 0, "roles", 0),
    ("database", "type"), ("database", "host"), ("database", "name"), ("database", "user"),
    ("database", "password"),
    ("network", "join"), ("network", "multicast_group"), ("network", "route"),
    ("network", "interfaces", 0),
    ("storage", "kind"), ("storage", "path"), ("storage", "export_options"),
    ("storage", "mount_options"),
]

META = ["$(touch /tmp/pwned)", "`touch /tmp/pwned`", ";", "|", "&&", "'", '"', "\\", "\n",
        "<", ">", "&amp;", "]]>", "<!--", "${OMW_OTHER}", "${NOPE}", "$IFS", "*", "?", "~",
        "..", "/", " ", "\t", "\x00", "\x1b[31m", "é", "\u202e", ",", "#", "%", "=", ":"]

texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(META) | st.text(max_size=4), max_size=6).map("".join),
)
values = st.one_of(texts, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.lists(texts, max_size=3), st.dictionaries(texts, texts, max_size=2))


def setin(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    cur: Any = out
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return out


def load(data: Any) -> Plan | None:
    """The property itself: a plan or a PlanError, nothing else."""
    try:
        return plan_from_dict(data, env=ENV)
    except PlanError as exc:
        assert exc.problems, "a PlanError must name at least one problem"
        for problem in exc.problems:
            assert problem.path and problem.message
        str(exc)  # rendering it must not fail either
        return None


SHELL_SAFE = "a valid plan field that reaches a shell unquoted"


def assert_safe(plan: Plan) -> None:
    """Fields that end up in commands, paths and config lines hold no shell metacharacter."""
    plain = [plan.cluster.name, plan.cluster.om_home, plan.cluster.timezone,
             plan.storage.path, plan.storage.export_options, plan.storage.mount_options,
             plan.database.name, plan.database.user, plan.database.host, plan.network.route,
             plan.network.multicast_group, *plan.network.interfaces]
    for node in plan.nodes:
        plain += [node.name, node.host, node.address, node.interface or "eth0", node.ssh.user]
    for value in plain:
        assert shlex.quote(value) == value or value.endswith("*"), (SHELL_SAFE, value)
        assert "\n" not in value and "$" not in value and "`" not in value, value


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=values)
def test_any_value_in_any_field(field: tuple, value: Any) -> None:
    plan = load(setin(base(), field, value))
    if plan is not None:
        assert_safe(plan)
        if field == ("database", "password") and isinstance(value, str):
            assert "," not in (plan.database.password.value or "")


@SETTINGS
@given(fields=st.lists(st.sampled_from(FIELDS), min_size=2, max_size=5, unique=True),
       data=st.data())
def test_several_bad_fields_at_once(fields: list[tuple], data: st.DataObject) -> None:
    doc = base()
    for field in fields:
        doc = setin(doc, field, data.draw(values))
    plan = load(doc)
    if plan is not None:
        assert_safe(plan)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_as_a_plan_file(text: str) -> None:
    try:
        parse_plan_text(text, env=ENV)
    except PlanError as exc:
        assert exc.problems


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=texts)
def test_any_value_in_yaml_text(field: tuple, value: str) -> None:
    """The same through YAML as an operator writes it (quoting done by the YAML dumper)."""
    text = yaml.safe_dump(setin(base(), field, value), allow_unicode=True)
    try:
        plan = parse_plan_text(text, env=ENV)
    except PlanError:
        return
    assert_safe(plan)


@SETTINGS
@given(field=st.sampled_from(FIELDS), value=texts)
def test_valid_plans_round_trip_without_secrets(field: tuple, value: str) -> None:
    plan = load(setin(base(), field, value))
    if plan is None:
        return
    text = dump_plan(plan)
    assert SECRET not in text
    written = yaml.safe_load(text)["database"]
    if plan.database.password.ref:
        assert written["password"] == plan.database.password.ref
    else:  # a literal password is used but never written back: asked again next time
        assert "password" not in written
    again = parse_plan_text(text, env=ENV)
    assert again.database.password.ref == plan.database.password.ref
    same = dataclasses.replace(again, database=plan.database)
    assert same == plan


def test_free_text_fields_keep_metacharacters_literally() -> None:
    """What the lab test relies on: these values are accepted and kept as written."""
    url = "http://om1.example.org:5080/openmeetings?a=$(id)&b='x';c=`"
    plan = load(setin(base(), ("nodes", 0, "server_url"), url))
    assert plan is None  # a backtick is not a URL character
    url = "http://om1.example.org:5080/openmeetings?a=$(touch$IFS/tmp/pwned)&b='x';c=|"
    assert load(setin(base(), ("nodes", 0, "server_url"), url)) is None  # nor a pipe
    url = "http://om1.example.org:5080/openmeetings?a=$(touch$IFS/tmp/pwned)&b='x';c=1"
    plan = load(setin(base(), ("nodes", 0, "server_url"), url))
    assert plan is not None and plan.nodes[0].server_url == url
    plan = load(base())
    assert plan is not None and plan.database.password.value == SECRET
    assert load(setin(base(), ("cluster", "name"), "x;id")) is None
    assert load(setin(base(), ("storage", "path"), "/opt/$(id)")) is None
    assert load(setin(base(), ("nodes", 0, "interface"), "eth0;id")) is None
