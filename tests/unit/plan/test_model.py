"""Plan loading, validation, defaults, dumping and secret handling."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omwizard.plan.model import (
    Database,
    Network,
    Node,
    Plan,
    PlanError,
    PlanProblem,
    Secret,
    SSHConfig,
    Storage,
    dump_plan,
    load_plan,
    parse_plan_text,
    plan_from_dict,
    plan_to_dict,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "plan.yaml"
ENV = {"OMW_DB_PASSWORD": "s3cret-Value!"}


def base() -> dict[str, Any]:
    """A small valid plan, as parsed YAML."""
    return {
        "omwizard": 1,
        "cluster": {"name": "prod", "timezone": "Europe/Berlin"},
        "nodes": [
            {"name": "om1", "host": "10.1.1.1", "roles": ["om", "storage", "database"],
             "server_url": "https://om1.example.org/openmeetings"},
            {"name": "om2", "host": "10.1.1.2", "roles": ["om"]},
        ],
        "database": {"type": "mysql", "host": "10.1.1.1", "name": "openmeetings", "user": "om",
                     "password": "${OMW_DB_PASSWORD}"},
    }


def setin(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of ``data`` with the dotted path (``nodes.1.host``) set; ``...`` deletes it."""
    out = copy.deepcopy(data)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    cur: Any = out
    for k in keys[:-1]:
        if isinstance(cur, dict):
            cur = cur.setdefault(k, {})
        else:
            cur = cur[k]
    if value is ...:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return out


def problems(data: Any, env: dict[str, str] | None = None) -> list[PlanProblem]:
    with pytest.raises(PlanError) as info:
        plan_from_dict(data, env=ENV if env is None else env)
    return info.value.problems


def paths(data: Any, env: dict[str, str] | None = None) -> list[str]:
    return [p.path for p in problems(data, env)]


# ------------------------------------------------------------------ defaults and the example


def test_defaults_are_the_contracts() -> None:
    plan = plan_from_dict(base(), env=ENV)
    assert plan.cluster.om_home == "/opt/om"
    assert plan.ssh == SSHConfig(user="root", port=22, identity=None,
                                 known_hosts="~/.ssh/known_hosts", host_keys="strict",
                                 sudo="auto", connect_timeout=10)
    assert plan.network == Network(join="multicast", multicast_group="224.0.0.0",
                                   multicast_port=54327, multicast_ttl=32, multicast_timeout=2,
                                   route="224.0.0.0/4", interfaces=("10.1.1.*",))
    assert plan.storage == Storage(kind="nfs", path="/opt/omdata",
                                   export_options="rw,sync,no_subtree_check,no_root_squash",
                                   mount_options="timeo=50,hard,intr")
    db = plan.database
    assert (db.port, db.manage, db.admin_user, db.admin_password) == (3306, True, None, None)
    assert db.password.value == "s3cret-Value!"
    assert db.password.ref == "${OMW_DB_PASSWORD}"
    om2 = plan.node("om2")
    assert om2.address == "10.1.1.2"  # default: host, an IPv4
    assert om2.interface is None and om2.server_url is None
    assert plan.storage_node is plan.nodes[0]
    assert plan.database_node is plan.nodes[0]
    assert [n.name for n in plan.om_nodes] == ["om1", "om2"]
    assert plan.warnings == ()


@pytest.mark.parametrize("db_type,port", [("mysql", 3306), ("mariadb", 3306),
                                          ("postgresql", 5432), ("mssql", 1433),
                                          ("oracle", 1521), ("db2", 50000)])
def test_database_port_default_by_type(db_type: str, port: int) -> None:
    plan = plan_from_dict(setin(base(), "database.type", db_type), env=ENV)
    assert plan.database.port == port


def test_roles_default_to_om_and_interfaces_derive_from_addresses() -> None:
    data = setin(base(), "nodes.1.roles", ...)
    data["nodes"].append({"name": "om3", "host": "om3.example.org", "address": "10.2.0.3"})
    plan = plan_from_dict(data, env=ENV)
    assert plan.node("om2").roles == ("om",)
    assert plan.network.interfaces == ("10.1.1.*", "10.2.0.*")


def test_node_ssh_overrides_merge_over_plan_ssh() -> None:
    data = setin(base(), "ssh", {"user": "deploy", "port": 2200, "sudo": "always"})
    data = setin(data, "nodes.1.ssh", {"port": 2222, "identity": "~/.ssh/om2"})
    plan = plan_from_dict(data, env=ENV)
    om1, om2 = plan.nodes
    assert om1.ssh.port == 2200 and om1.ssh.user == "deploy" and om1.ssh_overrides == {}
    assert om2.ssh == dataclasses.replace(plan.ssh, port=2222, identity="~/.ssh/om2")
    assert om2.ssh_overrides == {"port": 2222, "identity": "~/.ssh/om2"}


def test_example_plan_loads_and_round_trips() -> None:
    plan = load_plan(EXAMPLE, env=ENV)
    assert plan.source == EXAMPLE
    assert plan.database_node is not None and plan.database_node.name == "db1"
    assert plan.node("om2").ssh.port == 2222
    assert parse_plan_text(dump_plan(plan), env=ENV) == plan


def test_node_lookup_names_known_nodes() -> None:
    plan = plan_from_dict(base(), env=ENV)
    with pytest.raises(KeyError, match="om1, om2"):
        plan.node("om9")


# ------------------------------------------------------------------ valid variants


@pytest.mark.parametrize("path,value", [
    ("cluster.name", "a"),
    ("cluster.name", "prod-2"),
    ("cluster.name", "x" * 63),
    ("cluster.timezone", "UTC"),
    ("cluster.timezone", "America/Argentina/Buenos_Aires"),
    ("cluster.om_home", "/srv/open_meetings-5.1"),
    ("storage.path", "/data/om.shared"),
    ("storage.kind", "nfs"),
    ("nodes.1.host", "om2.example.org."),
    ("nodes.1.host", "om-2"),
    ("nodes.1.interface", "enp0s3"),
    ("nodes.1.interface", "eth0.100@eth0"),
    ("nodes.1.server_url", "http://om2:5080/openmeetings"),
    ("nodes.1.server_url", "https://[2001:db8::1]:5443/openmeetings"),
    ("nodes.1.name", "0"),
    ("nodes.1.name", "n" * 63),
    ("nodes.1.roles", ["om", "storage"][:1]),
    ("ssh.port", 65535),
    ("ssh.port", 1),
    ("ssh.user", "_svc-om"),
    ("ssh.host_keys", "accept-new"),
    ("ssh.sudo", "never"),
    ("ssh.connect_timeout", 0.5),
    ("ssh.identity", "~/keys/om key"),
    ("database.port", 13306),
    ("database.user", "OM_user1"),
    ("database.manage", False),
    ("database.password", None),
    ("database.password", "${UNSET_VARIABLE}"),
    ("database.admin_user", "root"),
    ("network.join", "tcp-ip"),
    ("network.multicast_group", "239.255.0.1"),
    ("network.multicast_ttl", 0),
    ("network.multicast_ttl", 255),
    ("network.route", "224.0.0.0/4"),
    ("network.route", "239.0.0.0/8"),
    ("network.route", "224.1.2.3/4"),
    ("network.interfaces", ["10.1.1.*", "10.3.10.4-18", "192.168.0.7"]),
    ("storage.export_options", "rw,sync,fsid=0,sec=sys"),
    ("storage.mount_options", "vers=4.2,hard"),
    ("report", {"anything": ["goes", 1]}),
])
def test_valid_values_are_accepted(path: str, value: Any) -> None:
    data = setin(base(), "nodes.1.address", "10.1.1.2")  # so host may be a name
    plan = plan_from_dict(setin(data, path, value), env=ENV)
    assert isinstance(plan, Plan)


def test_route_is_normalised() -> None:
    plan = plan_from_dict(setin(base(), "network.route", "224.1.2.3/4"), env=ENV)
    assert plan.network.route == "224.0.0.0/4"


def test_unset_variable_means_asked() -> None:
    plan = plan_from_dict(setin(base(), "database.password", "${UNSET_VARIABLE}"), env={})
    assert plan.database.password == Secret("${UNSET_VARIABLE}", None)
    assert plan.database.password.resolved("typed").value == "typed"


def test_storage_existing_needs_no_storage_node() -> None:
    data = setin(base(), "storage", {"kind": "existing"})
    data = setin(data, "nodes.0.roles", ["om", "database"])
    plan = plan_from_dict(data, env=ENV)
    assert plan.storage.kind == "existing" and plan.storage_node is None


def test_manage_matches_database_node_by_host_name() -> None:
    data = setin(base(), "nodes.0.host", "db.example.org")
    data = setin(data, "nodes.0.address", "10.1.1.1")
    data = setin(data, "database.host", "db.example.org")
    assert plan_from_dict(data, env=ENV).database_node is not None


# ------------------------------------------------------------------ invalid values


INVALID = [
    # (path set, value, expected problem path, words in the message)
    ("cluster.name", "Prod", "cluster.name", "not valid"),
    ("cluster.name", "a_b", "cluster.name", "not valid"),
    ("cluster.name", "-prod", "cluster.name", "not valid"),
    ("cluster.name", "x" * 64, "cluster.name", "not valid"),
    ("cluster.name", "", "cluster.name", "not valid"),
    ("cluster.name", "prod\n", "cluster.name", "not valid"),
    ("cluster.name", 42, "cluster.name", "must be text"),
    ("cluster.name", ..., "cluster.name", "required"),
    ("cluster.timezone", ..., "cluster.timezone", "required"),
    ("cluster.timezone", "Mars/Olympus", "cluster.timezone", "IANA"),
    ("cluster.timezone", "../../etc/passwd", "cluster.timezone", "IANA"),
    ("cluster.timezone", "/usr/share/zoneinfo/UTC", "cluster.timezone", "IANA"),
    ("cluster.timezone", "Europe/Berlin ", "cluster.timezone", "IANA"),
    ("cluster.om_home", "opt/om", "cluster.om_home", "absolute"),
    ("cluster.om_home", "/opt/om;rm -rf /", "cluster.om_home", "safe characters"),
    ("cluster.om_home", "/opt/../etc", "cluster.om_home", ".."),
    ("cluster.om_home", "/opt/om/", "cluster.om_home", "plain form"),
    ("cluster.om_home", "/opt//om", "cluster.om_home", "plain form"),
    ("cluster.om_home", "/", "cluster.om_home", "root"),
    ("cluster.om_home", "/opt/om\n", "cluster.om_home", "safe characters"),
    ("storage.path", "/data/om data", "storage.path", "safe characters"),
    ("storage.path", "/data/./om", "storage.path", "plain form"),
    ("storage.kind", "ceph", "storage.kind", "not one of"),
    ("storage.export_options", "rw sync", "storage.export_options", "not valid"),
    ("storage.mount_options", "hard;reboot", "storage.mount_options", "not valid"),
    ("cluster.extra", 1, "cluster.extra", "unknown key"),
    ("nodes.0.adress", "10.1.1.1", "nodes[0].adress", "unknown key"),
    ("nodes.0.ssh.prot", 22, "nodes[0].ssh.prot", "unknown key"),
    ("ssh.usr", "root", "ssh.usr", "unknown key"),
    ("database.pasword", "x", "database.pasword", "unknown key"),
    ("network.ttl", 3, "network.ttl", "unknown key"),
    ("storage.paths", "/x", "storage.paths", "unknown key"),
    ("nodes.1.name", "Om2", "nodes[1].name", "not valid"),
    ("nodes.1.name", "om_2", "nodes[1].name", "not valid"),
    ("nodes.1.name", "-om2", "nodes[1].name", "not valid"),
    ("nodes.1.name", "n" * 64, "nodes[1].name", "not valid"),
    ("nodes.1.name", ..., "nodes[1].name", "required"),
    ("nodes.1.name", "om1", "nodes[1].name", "already the name of nodes[0]"),
    ("nodes.1.host", ..., "nodes[1].host", "required"),
    ("nodes.1.host", "om 2", "nodes[1].host", "neither"),
    ("nodes.1.host", "-om2.example.org", "nodes[1].host", "neither"),
    ("nodes.1.host", "10.1.1.256", "nodes[1].host", "neither"),
    ("nodes.1.host", "om2;reboot", "nodes[1].host", "neither"),
    ("nodes.1.host", "om2.example.org", "nodes[1].address", "address is required"),
    ("nodes.1.address", "10.1.1.1", "nodes[1].address", "already the address of nodes[0]"),
    ("nodes.1.address", "om2", "nodes[1].address", "not an IPv4"),
    ("nodes.1.address", "fe80::1", "nodes[1].address", "not an IPv4"),
    ("nodes.1.address", "010.1.1.2", "nodes[1].address", "not an IPv4"),
    ("nodes.1.address", "0.0.0.0", "nodes[1].address", "cannot be"),
    ("nodes.1.address", "224.0.0.1", "nodes[1].address", "cannot be"),
    ("nodes.1.interface", "eth0 ", "nodes[1].interface", "not valid"),
    ("nodes.1.interface", "averyveryverylongname", "nodes[1].interface", "not valid"),
    ("nodes.1.interface", "eth0/1", "nodes[1].interface", "not valid"),
    ("nodes.1.interface", "..", "nodes[1].interface", "not an interface"),
    ("nodes.1.server_url", "ftp://om2/openmeetings", "nodes[1].server_url", "http(s)"),
    ("nodes.1.server_url", "om2.example.org/openmeetings", "nodes[1].server_url", "http(s)"),
    ("nodes.1.server_url", "https:///openmeetings", "nodes[1].server_url", "no host"),
    ("nodes.1.server_url", "https://om2/open meetings", "nodes[1].server_url", "spaces"),
    ("nodes.1.server_url", "https://om2:99999/x", "nodes[1].server_url", "not a valid URL"),
    ("nodes.1.server_url", "https://[om2/x", "nodes[1].server_url", "not a valid URL"),
    ("nodes.1.server_url", "https://u:p@om2/x", "nodes[1].server_url", "user name"),
    ("nodes.1.roles", [], "nodes[1].roles", "non-empty"),
    ("nodes.1.roles", "om", "nodes[1].roles", "non-empty list"),
    ("nodes.1.roles", ["om", "web"], "nodes[1].roles[1]", "not a role"),
    ("nodes.1.roles", ["om", "om"], "nodes[1].roles[1]", "twice"),
    ("nodes.1.roles", ["database"], "nodes", "at least 2 OpenMeetings nodes"),
    ("nodes.1.ssh", "port 22", "nodes[1].ssh", "mapping"),
    ("nodes.1.ssh.port", 0, "nodes[1].ssh.port", "out of range"),
    ("nodes.1.ssh.sudo", "maybe", "nodes[1].ssh.sudo", "not one of"),
    ("nodes.1", "om2", "nodes[1]", "must be a mapping"),
    ("nodes", [], "nodes", "at least 2"),
    ("nodes", "om1,om2", "nodes", "must be a list"),
    ("nodes", ..., "nodes", "required"),
    ("ssh.port", 0, "ssh.port", "out of range"),
    ("ssh.port", 65536, "ssh.port", "out of range"),
    ("ssh.port", "22", "ssh.port", "whole number"),
    ("ssh.port", 22.0, "ssh.port", "whole number"),
    ("ssh.port", True, "ssh.port", "whole number"),
    ("ssh.user", "Root", "ssh.user", "not valid"),
    ("ssh.user", "1root", "ssh.user", "not valid"),
    ("ssh.user", "root;id", "ssh.user", "not valid"),
    ("ssh.host_keys", "no", "ssh.host_keys", "not one of"),
    ("ssh.host_keys", False, "ssh.host_keys", "must be text"),
    ("ssh.sudo", "sometimes", "ssh.sudo", "not one of"),
    ("ssh.connect_timeout", 0, "ssh.connect_timeout", "greater than 0"),
    ("ssh.connect_timeout", -1, "ssh.connect_timeout", "greater than 0"),
    ("ssh.connect_timeout", float("inf"), "ssh.connect_timeout", "greater than 0"),
    ("ssh.connect_timeout", float("nan"), "ssh.connect_timeout", "greater than 0"),
    ("ssh.connect_timeout", "10", "ssh.connect_timeout", "number of seconds"),
    ("ssh.identity", "~/.ssh/id\nrm", "ssh.identity", "control characters"),
    ("ssh.known_hosts", "~/.ssh/kh\x00", "ssh.known_hosts", "control characters"),
    ("ssh.known_hosts", "", "ssh.known_hosts", "non-empty"),
    ("ssh", ["root"], "ssh", "mapping"),
    ("database.type", "h2", "database.type", "Db other than H2 should be used"),
    ("database.type", "H2", "database.type", "Db other than H2 should be used"),
    ("database.type", "sqlite", "database.type", "not one of"),
    ("database.type", ..., "database.type", "required"),
    ("database.host", ..., "database.host", "required"),
    ("database.host", "db host", "database.host", "neither"),
    ("database.host", "10.9.9.9", "database.manage", "no node with role database"),
    ("database.name", ..., "database.name", "required"),
    ("database.name", "open-meetings", "database.name", "not valid"),
    ("database.name", "om;drop", "database.name", "not valid"),
    ("database.user", ..., "database.user", "required"),
    ("database.user", "om'", "database.user", "not valid"),
    ("database.user", "u" * 64, "database.user", "not valid"),
    ("database.port", 0, "database.port", "out of range"),
    ("database.manage", "yes", "database.manage", "true or false"),
    ("database.password", "${OMW DB}", "database.password", "${VAR}"),
    ("database.password", "${OMW_DB_PASSWORD}x", "database.password", "${VAR}"),
    ("database.password", "$OMW_DB_PASSWORD", "database.password", "${VAR}"),
    ("database.password", "${1X}", "database.password", "${VAR}"),
    ("database.password", 1234, "database.password", "must be text"),
    ("database.password", "a,b", "database.password", "comma"),
    ("database.admin_user", "ro ot", "database.admin_user", "not valid"),
    ("database.admin_password", "${ADMIN PW}", "database.admin_password", "${VAR}"),
    ("database.admin_password", "${ADMIN_PW}", "database.admin_password", "admin_user"),
    ("database", "mysql", "database", "mapping"),
    ("database", ..., "database", "required"),
    ("network.join", "unicast", "network.join", "not one of"),
    ("network.multicast_group", "10.0.0.1", "network.multicast_group", "multicast"),
    ("network.multicast_group", "224.0.0", "network.multicast_group", "multicast"),
    ("network.multicast_port", 70000, "network.multicast_port", "out of range"),
    ("network.multicast_ttl", 256, "network.multicast_ttl", "out of range"),
    ("network.multicast_ttl", -1, "network.multicast_ttl", "out of range"),
    ("network.multicast_timeout", 0, "network.multicast_timeout", "out of range"),
    ("network.route", "10.0.0.0/8", "network.route", "multicast network"),
    ("network.route", "0.0.0.0/0", "network.route", "multicast network"),
    ("network.route", "224.0.0.0/33", "network.route", "multicast network"),
    ("network.interfaces", "10.1.1.*", "network.interfaces", "non-empty list"),
    ("network.interfaces", [], "network.interfaces", "non-empty list"),
    ("network.interfaces", ["10.1.1"], "network.interfaces[0]", "Hazelcast"),
    ("network.interfaces", ["10.1.1.300"], "network.interfaces[0]", "Hazelcast"),
    ("network.interfaces", ["10.1.1.18-4"], "network.interfaces[0]", "Hazelcast"),
    ("network.interfaces", ["10.1.1.*; x"], "network.interfaces[0]", "Hazelcast"),
    ("network.interfaces", ["10.1.1.*", 5], "network.interfaces[1]", "Hazelcast"),
    ("storage", "nfs", "storage", "mapping"),
    ("nodes.0.roles", ["om", "database"], "storage.kind", "exactly one node with role storage"),
    ("nodes.1.roles", ["om", "storage"], "storage.kind", "2 nodes have it"),
    ("storage.kind", "existing", "nodes[0].roles", "only used with storage.kind nfs"),
    ("omwizard", 2, "omwizard", "schema version 2 is not supported; this omwizard reads "
                                "version 1"),
    ("omwizard", "1", "omwizard", "not supported"),
    ("omwizard", True, "omwizard", "not supported"),
    ("omwizard", ..., "omwizard", "missing"),
    ("clusters", {}, "clusters", "unknown key"),
]


@pytest.mark.parametrize("path,value,where,words", INVALID,
                         ids=[f"{p}={v!r}"[:60] for p, v, _, _ in INVALID])
def test_invalid_values_name_path_and_fix(path: str, value: Any, where: str, words: str) -> None:
    found = problems(setin(base(), path, value))
    hits = [p for p in found if p.path == where]
    assert hits, f"no problem at {where}: {[str(p) for p in found]}"
    assert any(words in p.message for p in hits), [str(p) for p in hits]
    for p in found:
        assert p.fix.strip(), f"{p.path} has no fix"
        assert str(p) == f"{p.path}: {p.message} (fix: {p.fix})"


def test_unknown_key_suggests_closest() -> None:
    (p,) = problems(setin(base(), "nodes.0.adress", "10.1.1.1"))
    assert p.fix == "did you mean 'address'?"


def test_h2_fix_names_real_databases() -> None:
    found = [p for p in problems(setin(base(), "database.type", "h2"))
             if p.path == "database.type"]
    assert "mysql" in found[0].fix and "postgresql" in found[0].fix


def test_comma_in_password_from_env_is_refused_without_showing_it() -> None:
    env = {"OMW_DB_PASSWORD": "abc,SECRETPART"}
    err = [p for p in problems(base(), env=env) if p.path == "database.password"]
    assert err and "comma" in err[0].message and "OMW_DB_PASSWORD" in err[0].message
    assert "SECRETPART" not in str(PlanError(err))


def test_admin_password_may_hold_a_comma() -> None:
    data = setin(base(), "database.admin_user", "root")
    data = setin(data, "database.admin_password", "${ADMIN_PW}")
    plan = plan_from_dict(data, env={**ENV, "ADMIN_PW": "a,b"})
    assert plan.database.admin_password == Secret("${ADMIN_PW}", "a,b")


def test_literal_password_is_used_but_warned() -> None:
    plan = plan_from_dict(setin(base(), "database.password", "literal-pw"), env={})
    assert plan.database.password.value == "literal-pw"
    assert plan.database.password.ref is None
    assert [w.path for w in plan.warnings] == ["database.password"]
    assert "literal-pw" not in dump_plan(plan)
    assert "password" not in plan_to_dict(plan)["database"]


def test_all_problems_are_collected_one_per_line() -> None:
    data = setin(base(), "cluster.name", "BAD")
    data = setin(data, "ssh.port", 0)
    data = setin(data, "network.multicast_ttl", 999)
    err = pytest.raises(PlanError, plan_from_dict, data, env=ENV).value
    lines = str(err).splitlines()
    assert len(lines) == 3
    assert [line.split(":")[0] for line in lines] == [
        "cluster.name", "ssh.port", "network.multicast_ttl"]
    assert all("(fix: " in line for line in lines)


def test_duplicates_reported_even_when_nodes_have_other_problems() -> None:
    data = setin(base(), "nodes.1.name", "om1")
    data = setin(data, "nodes.1.host", "10.1.1.1")
    data = setin(data, "nodes.1.interface", "bad iface")
    found = paths(data)
    assert {"nodes[1].name", "nodes[1].address", "nodes[1].interface"} <= set(found)


@pytest.mark.parametrize("doc", [None, [], ["omwizard", 1], "text", 42])
def test_top_level_must_be_a_mapping(doc: Any) -> None:
    (p,) = problems(doc)
    assert "mapping" in p.message and p.fix


# ------------------------------------------------------------------ YAML text


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "plan.yaml"
    f.write_text("omwizard: 1\ncluster:\n  name: [prod\n")
    (p,) = pytest.raises(PlanError, load_plan, f, env=ENV).value.problems
    assert p.path.startswith(f"{f}:")
    assert "line" in p.message and "column" in p.message


def test_yaml_duplicate_key_is_an_error() -> None:
    text = yaml.safe_dump(base()) + "omwizard: 1\n"
    (p,) = pytest.raises(PlanError, parse_plan_text, text, env=ENV).value.problems
    assert "'omwizard' appears twice" in p.message


def test_yaml_python_tags_are_refused() -> None:
    err = pytest.raises(PlanError, parse_plan_text, "x: !!python/object/apply:os.system [id]\n")
    assert "YAML" in str(err.value)


def test_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    (p,) = pytest.raises(PlanError, load_plan, tmp_path / "nope.yaml").value.problems
    assert "cannot read" in p.message and p.fix


def test_binary_file_is_a_plan_error(tmp_path: Path) -> None:
    f = tmp_path / "plan.yaml"
    f.write_bytes(b"\xff\xfe\x00garbage")
    pytest.raises(PlanError, load_plan, f)


def test_yes_as_a_name_is_a_type_problem() -> None:
    text = yaml.safe_dump(base()).replace("name: om2", "name: yes")
    found = pytest.raises(PlanError, parse_plan_text, text, env=ENV).value.problems
    assert any(p.path == "nodes[1].name" and "quote" in p.fix for p in found)


# ------------------------------------------------------------------ dump / round trip


def rich() -> dict[str, Any]:
    data = base()
    data["ssh"] = {"user": "deploy", "port": 2200, "identity": "~/.ssh/om", "sudo": "always",
                   "host_keys": "accept-new", "connect_timeout": 2.5}
    data["nodes"][1].update(interface="eth1", server_url="https://om2.example.org/om",
                            ssh={"port": 2222, "user": "om"})
    data["nodes"].append({"name": "om3", "host": "om3.example.org", "address": "10.1.2.3"})
    data["database"].update(type="postgresql", admin_user="postgres",
                            admin_password="${OMW_DB_ADMIN}", manage=True)
    data["network"] = {"join": "tcp-ip", "interfaces": ["10.1.1.1-9", "10.1.2.*"],
                       "multicast_ttl": 0}
    data["storage"] = {"path": "/srv/omdata", "mount_options": "vers=4.2,hard"}
    data["cluster"]["om_home"] = "/srv/om"
    return data


@pytest.mark.parametrize("make", [base, rich])
def test_dump_then_load_is_equal(make: Any) -> None:
    env = {**ENV, "OMW_DB_ADMIN": "admin-secret-XYZ"}
    plan = plan_from_dict(make(), env=env)
    text = dump_plan(plan)
    again = parse_plan_text(text, env=env)
    assert again == plan
    assert plan_to_dict(again) == plan_to_dict(plan)
    assert "s3cret-Value!" not in text and "admin-secret-XYZ" not in text
    assert "password: ${OMW_DB_PASSWORD}" in text
    assert ("admin_password: ${OMW_DB_ADMIN}" in text) == (make is rich)


def test_dump_writes_defaults_and_omits_derived_interfaces() -> None:
    d = plan_to_dict(plan_from_dict(base(), env=ENV))
    assert d["ssh"]["known_hosts"] == "~/.ssh/known_hosts"
    assert d["database"]["port"] == 3306 and d["database"]["manage"] is True
    assert d["nodes"][1]["address"] == "10.1.1.2"
    assert "interfaces" not in d["network"]
    assert d["storage"]["kind"] == "nfs"
    explicit = plan_to_dict(plan_from_dict(setin(base(), "network.interfaces", ["10.1.*.*"]),
                                           env=ENV))
    assert explicit["network"]["interfaces"] == ["10.1.*.*"]


def test_load_plan_from_file_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    plan = plan_from_dict(rich(), env={**ENV, "OMW_DB_ADMIN": "x"})
    f.write_text(dump_plan(plan))
    assert load_plan(f, env={**ENV, "OMW_DB_ADMIN": "x"}) == plan


# ------------------------------------------------------------------ Secret


def test_secret_never_shows_its_value() -> None:
    s = Secret("${OMW_DB_PASSWORD}", "hunter2-value")
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert "hunter2-value" not in text
    assert s.value == "hunter2-value" and s.var == "OMW_DB_PASSWORD"
    assert "hunter2" not in repr(Secret(None, "hunter2"))
    assert "hunter2" not in str(Secret(None, "hunter2"))
    with pytest.raises(AttributeError):
        s.value = "x"  # type: ignore[misc]


def test_plan_repr_hides_secrets() -> None:
    env = {**ENV, "OMW_DB_ADMIN": "admin-secret-XYZ"}
    plan = plan_from_dict(rich(), env=env)
    for text in (repr(plan), str(plan), repr(plan.database), repr(plan.database.password)):
        assert "s3cret-Value!" not in text and "admin-secret-XYZ" not in text


def test_dataclasses_are_frozen_and_hashable() -> None:
    plan = plan_from_dict(base(), env=ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.cluster.name = "x"  # type: ignore[misc]
    assert hash(plan.nodes[0]) == hash(plan.nodes[0])
    assert isinstance(plan.database, Database) and isinstance(plan.nodes[0], Node)


# ------------------------------------------------------------------ fuzz


STRING_FIELDS = [
    "cluster.name", "cluster.timezone", "cluster.om_home",
    "ssh.user", "ssh.identity", "ssh.known_hosts", "ssh.host_keys", "ssh.sudo",
    "nodes.0.name", "nodes.0.host", "nodes.0.address", "nodes.0.interface", "nodes.0.server_url",
    "nodes.1.host", "nodes.1.ssh.user",
    "database.type", "database.host", "database.name", "database.user", "database.password",
    "database.admin_user", "database.admin_password",
    "network.join", "network.multicast_group", "network.route", "network.interfaces.0",
    "storage.kind", "storage.path", "storage.export_options", "storage.mount_options",
]

_fuzz_settings = settings(max_examples=400, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])


def _fuzz_base() -> dict[str, Any]:
    data = setin(base(), "network.interfaces", ["10.1.1.*"])
    return setin(data, "nodes.1.ssh", {"user": "root"})


@_fuzz_settings
@given(field=st.sampled_from(STRING_FIELDS), value=st.text(max_size=80))
def test_any_string_in_any_field_is_a_plan_or_a_plan_error(field: str, value: str) -> None:
    try:
        plan = plan_from_dict(setin(_fuzz_base(), field, value), env=ENV)
    except PlanError as err:
        assert err.problems and all(p.path and p.fix for p in err.problems)
        return
    # whatever was accepted must dump and load back to the same plan (a literal secret is
    # never written, so it comes back as "to be asked")
    again = parse_plan_text(dump_plan(plan), env=ENV)
    if plan.warnings:
        assert again == dataclasses.replace(
            plan, database=dataclasses.replace(plan.database, password=Secret()))
    else:
        assert again == plan


@_fuzz_settings
@given(field=st.sampled_from(STRING_FIELDS + ["ssh.port", "database.manage", "nodes.0.roles",
                                              "nodes", "network", "ssh.connect_timeout"]),
       value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                          | st.text(max_size=20),
                          lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                          max_leaves=8))
def test_any_value_in_any_field_is_a_plan_or_a_plan_error(field: str, value: Any) -> None:
    try:
        plan_from_dict(setin(_fuzz_base(), field, value), env=ENV)
    except PlanError:
        pass


@_fuzz_settings
@given(text=st.text(max_size=300))
def test_any_text_is_a_plan_or_a_plan_error(text: str) -> None:
    try:
        parse_plan_text(text, env=ENV)
    except PlanError as err:
        assert str(err)
