"""The plan: one YAML file (schema version 1) that describes one cluster.

The loader is the program's front door: every value that later ends up in a shell command, a
config file, a file name or an SSH connection passes through here first, so each rule below is
strict and each problem names the key path (``nodes[1].address``), what is wrong and the fix.
All problems are collected before :class:`PlanError` is raised, so an operator fixes a plan in
one pass instead of one error at a time.

Beyond ``CONTRACT.md`` (additions, never changes):

* ``database.admin_user`` / ``database.admin_password``: an administrative account the wizard
  uses to create the OpenMeetings database user when ``manage: true``. Omitted means socket
  authentication on the database node (``sudo mysql`` / ``sudo -u postgres psql``). The
  password follows the same ``${VAR}`` rules as ``database.password``.
* ``nodes[].roles`` defaults to ``[om]`` when omitted.
* ``ssh.config`` (also per node): an OpenSSH client config to read instead of
  ``~/.ssh/config``; a node's ``host`` may be a ``Host`` alias of it (remote/sshconfig.py).
* a top-level ``report:`` key is accepted and ignored, so a file written by ``omwizard export``
  can be fed back to any command.
* a ``${VAR}`` reference to a variable that is not set is not an error: the secret is asked
  (``Secret.value is None``), so ``omwizard validate`` works without the secrets at hand.
* a literal (not ``${VAR}``) password is accepted with a warning in :attr:`Plan.warnings`:
  it is never written back, so the next load asks for it.
* ``network.firewall``: ``manage | check | off`` (default ``check``): the network section's
  firewall step only reports (check), opens exactly the cluster's ports for exactly its
  addresses in the tool the node uses (manage), or is skipped (off). Dumped only when not
  the default.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import math
import os
import posixpath
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

SCHEMA_VERSION = 1

ROLES = ("om", "storage", "database")
DB_TYPES = ("mysql", "mariadb", "postgresql", "mssql", "oracle", "db2")
DB_DEFAULT_PORTS = {
    "mysql": 3306,
    "mariadb": 3306,
    "postgresql": 5432,
    "mssql": 1433,
    "oracle": 1521,
    "db2": 50000,
}
HOST_KEY_POLICIES = ("strict", "accept-new")
SUDO_MODES = ("auto", "always", "never")
JOIN_MODES = ("multicast", "tcp-ip")
FIREWALL_MODES = ("manage", "check", "off")  # network.firewall (facts/firewall.py)
STORAGE_KINDS = ("nfs", "existing")

_MULTICAST_NET = ipaddress.IPv4Network("224.0.0.0/4")


class Secret:
    """A secret value and where it came from; it never shows its value when printed.

    ``ref`` is the ``${VAR}`` reference as written in the plan (the only form ever written
    back); ``value`` is what was resolved from the environment or asked from the operator, or
    ``None`` when it still has to be asked. ``repr``/``str`` show only the reference and whether
    a value is present, so a Secret inside a dataclass repr, a log line or an exception message
    does not leak. The object is immutable: :meth:`resolved` returns a new one.
    """

    __slots__ = ("_ref", "_value")
    # declared for the type checker: the slots are set once, through object.__setattr__
    _ref: str | None
    _value: str | None

    def __init__(self, ref: str | None = None, value: str | None = None) -> None:
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_value", value)

    @property
    def ref(self) -> str | None:
        """The ``${VAR}`` reference, or None for a literal or asked secret."""
        return self._ref

    @property
    def value(self) -> str | None:
        """The resolved value; None means it must be asked."""
        return self._value

    @property
    def var(self) -> str | None:
        """The environment variable name of the reference (``OMW_DB_PASSWORD``)."""
        return self._ref[2:-1] if self._ref else None

    def resolved(self, value: str) -> Secret:
        """The same reference with a value (asked from the operator, for example)."""
        return Secret(self._ref, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable; use resolved()")

    def __repr__(self) -> str:
        shown = "<hidden>" if self._value is not None else "None"
        return f"Secret(ref={self._ref!r}, value={shown})"

    def __str__(self) -> str:
        return self._ref or "<secret>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._ref, self._value) == (other._ref, other._value)

    def __hash__(self) -> int:
        return hash((self._ref, self._value))


@dataclass(frozen=True)
class SSHConfig:
    """How to reach a node over SSH (plan defaults, or a node's merged view)."""

    user: str = "root"
    port: int = 22
    identity: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    host_keys: str = "strict"
    sudo: str = "auto"
    connect_timeout: float = 10
    config: str | None = None  # an OpenSSH client config; None: ~/.ssh/config when it exists


@dataclass(frozen=True)
class Node:
    """One server. ``ssh`` is the plan's ssh merged with the node's own ``ssh_overrides``."""

    name: str
    host: str
    address: str
    interface: str | None = None
    server_url: str | None = None
    roles: tuple[str, ...] = ("om",)
    ssh: SSHConfig = field(default_factory=SSHConfig)
    ssh_overrides: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def is_om(self) -> bool:
        return "om" in self.roles

    @property
    def is_storage(self) -> bool:
        return "storage" in self.roles

    @property
    def is_database(self) -> bool:
        return "database" in self.roles


@dataclass(frozen=True)
class Database:
    """The database OpenMeetings uses; ``admin_*`` are an omwizard addition (see module doc)."""

    type: str
    host: str
    port: int
    name: str
    user: str
    password: Secret = field(default_factory=Secret)
    manage: bool = True
    admin_user: str | None = None
    admin_password: Secret | None = None


@dataclass(frozen=True)
class Network:
    """Hazelcast join settings; ``interfaces`` is filled from node addresses when omitted."""

    join: str = "multicast"
    multicast_group: str = "224.0.0.0"
    multicast_port: int = 54327
    multicast_ttl: int = 32
    multicast_timeout: int = 2
    route: str = "224.0.0.0/4"
    interfaces: tuple[str, ...] = ()
    firewall: str = "check"  # manage | check | off: the firewall between the nodes
    # Hazelcast's <cluster-name>; None: omwizard's own, omwizard-<cluster.name>
    cluster_name: str | None = None


@dataclass(frozen=True)
class Storage:
    """The shared OpenMeetings data folder."""

    kind: str = "nfs"
    path: str = "/opt/omdata"
    export_options: str = "rw,sync,no_subtree_check,no_root_squash"
    mount_options: str = "timeo=50,hard,intr"


@dataclass(frozen=True)
class Cluster:
    name: str
    timezone: str
    om_home: str = "/opt/om"


@dataclass(frozen=True)
class Plan:
    """A validated plan. ``source`` and ``warnings`` do not take part in equality."""

    cluster: Cluster
    ssh: SSHConfig
    nodes: tuple[Node, ...]
    database: Database
    network: Network = field(default_factory=Network)
    storage: Storage = field(default_factory=Storage)
    source: Path | None = field(default=None, compare=False)
    warnings: tuple[PlanProblem, ...] = field(default=(), compare=False)

    def node(self, name: str) -> Node:
        """The node called ``name``; KeyError names the known nodes."""
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no node {name!r} in the plan (nodes: {known})")

    @property
    def om_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_om)

    @property
    def storage_node(self) -> Node | None:
        """The NFS server (kind nfs), else None."""
        return next((n for n in self.nodes if n.is_storage), None)

    @property
    def database_node(self) -> Node | None:
        """The node with role database that serves ``database.host``, else None."""
        db = self.database.host
        for n in self.nodes:
            if n.is_database and db in (n.address, n.host):
                return n
        return None


@dataclass(frozen=True)
class PlanProblem:
    """One thing wrong with a plan: where (key path), what, and how to fix it."""

    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (fix: {self.fix})"


class PlanError(Exception):
    """The plan is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: Iterable[PlanProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# --------------------------------------------------------------------------- patterns

_CLUSTER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_IFACE = re.compile(r"[A-Za-z0-9._@-]{1,15}")
_DB_IDENT = re.compile(r"[A-Za-z0-9_]{1,63}")
_SSH_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_OPTIONS = re.compile(r"[a-z0-9_=,.:/-]+")
_TZ_CHARS = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
HZ_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # safe in XML, no quoting
_HZ_PART = re.compile(r"\*|[0-9]{1,3}(?:-[0-9]{1,3})?")
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")

_TOP_KEYS = ("omwizard", "cluster", "ssh", "nodes", "database", "network", "storage", "report")
_CLUSTER_KEYS = ("name", "timezone", "om_home")
_SSH_KEYS = ("user", "port", "identity", "known_hosts", "host_keys", "sudo", "connect_timeout",
             "config")
_NODE_KEYS = ("name", "host", "address", "interface", "server_url", "roles", "ssh")
_DB_KEYS = (
    "type", "host", "port", "name", "user", "password", "manage", "admin_user", "admin_password",
)
_NET_KEYS = (
    "join", "multicast_group", "multicast_port", "multicast_ttl", "multicast_timeout", "route",
    "interfaces", "firewall", "cluster_name",
)
_STORAGE_KEYS = ("kind", "path", "export_options", "mount_options")

_MISSING: Any = object()


@functools.lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    """IANA zone names known to this system (cached: the scan walks the zoneinfo tree)."""
    return frozenset(zoneinfo.available_timezones())


def _sub(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _show(value: object) -> str:
    """A value for an error message: repr, shortened so junk input stays readable."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_hostname(text: str) -> bool:
    """RFC 1123 host name (labels of letters, digits, inner hyphens), or a dotted IPv4."""
    if re.fullmatch(r"[0-9.]+", text):
        return is_ipv4(text)
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def default_interfaces(addresses: Iterable[str]) -> tuple[str, ...]:
    """Hazelcast ``<interfaces>`` from node addresses: each /24 as ``a.b.c.*``, in order."""
    out: list[str] = []
    for addr in addresses:
        pattern = ".".join(addr.split(".")[:3] + ["*"])
        if pattern not in out:
            out.append(pattern)
    return tuple(out)


def _hz_interface_ok(text: str) -> bool:
    """Hazelcast interface syntax: four parts, each a number, ``*`` or a range ``4-18``."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not _HZ_PART.fullmatch(part):
            return False
        if part != "*":
            nums = [int(x) for x in part.split("-")]
            if any(n > 255 for n in nums) or (len(nums) == 2 and nums[0] > nums[1]):
                return False
    return True


# --------------------------------------------------------------------------- checker


class _Checker:
    """Collects problems while reading raw YAML data into typed values.

    Every getter returns None (or the default) when the value is wrong and records a problem,
    so reading continues and the operator sees all problems at once.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[PlanProblem] = []
        self.warnings: list[PlanProblem] = []

    def add(self, path: str, message: str, fix: str) -> None:
        self.problems.append(PlanProblem(path, message, fix))

    def nonempty_list(self, value: Any, path: str, fix: str) -> bool:
        """Whether value is a non-empty list; the problem is recorded when it is not."""
        if isinstance(value, list) and value:
            return True
        self.add(path, f"must be a non-empty list, not {_show(value)}", fix)
        return False

    def keys(self, data: Mapping[Any, Any], path: str, known: tuple[str, ...]) -> None:
        for key in data:
            if isinstance(key, str) and key in known:
                continue
            shown = str(key)
            close = difflib.get_close_matches(shown, known, n=1)
            where = path or "the top level"
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else f"remove it; known keys: {', '.join(k for k in known if k != 'report')}"
            )
            self.add(_sub(path, shown), f"unknown key {_show(key)} in {where}", fix)

    def section(
        self, data: Mapping[str, Any], key: str, path: str, known: tuple[str, ...],
        *, required: bool = False, fix: str = "",
    ) -> dict[str, Any] | None:
        """A nested mapping, its keys checked; {} when absent and optional, None when wrong."""
        where = _sub(path, key)
        value = data.get(key)
        if value is None:
            if required:
                self.add(where, "is required", fix or f"add a '{key}:' section")
                return None
            return {}
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping of keys, not {_show(value)}",
                     f"write it as '{key}:' followed by indented 'key: value' lines")
            return None
        self.keys(value, where, known)
        return value

    def string(
        self, data: Mapping[str, Any], key: str, path: str, *, default: Any = _MISSING,
        pattern: re.Pattern[str] | None = None, rule: str = "", example: str = "",
    ) -> str | None:
        where = _sub(path, key)
        value = data.get(key)
        if value is None:
            if default is _MISSING:
                self.add(where, "is required", f"add '{key}: {example or '...'}'")
            return None if default is _MISSING else default
        if not isinstance(value, str):
            self.add(where, f"must be text, not {_show(value)}",
                     f"quote it: {key}: \"{example or value}\"")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(where, f"{_show(value)} is not valid: {rule}",
                     f"write it like '{example}'" if example else rule)
            return None
        return value

    def integer(
        self, data: Mapping[str, Any], key: str, path: str, lo: int, hi: int | None, default: int,
    ) -> int | None:
        where = _sub(path, key)
        value = data.get(key)
        if value is None:
            return default
        span = f"{lo}-{hi}" if hi is not None else f"{lo} or more"
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, f"must be a whole number ({span}), not {_show(value)}",
                     f"write it without quotes, e.g. {key}: {default}")
            return None
        if value < lo or (hi is not None and value > hi):
            self.add(where, f"{value} is out of range ({span})", f"use a number in {span}")
            return None
        return value

    def number(
        self, data: Mapping[str, Any], key: str, path: str, default: float,
    ) -> float | None:
        """A positive finite number (seconds)."""
        where = _sub(path, key)
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(where, f"must be a number of seconds, not {_show(value)}",
                     f"write it without quotes, e.g. {key}: {default:g}")
            return None
        if not math.isfinite(value) or value <= 0:
            self.add(where, f"{value} must be greater than 0", f"e.g. {key}: {default:g}")
            return None
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool | None:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(_sub(path, key), f"must be true or false, not {_show(value)}",
                     f"write {key}: true or {key}: false, without quotes")
            return None
        return value

    def choice(
        self, data: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...],
        default: Any = _MISSING,
    ) -> str | None:
        value = self.string(data, key, path, default=default, example=choices[0])
        if value is None or value in choices:
            return value
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        self.add(_sub(path, key), f"{_show(value)} is not one of {', '.join(choices)}",
                 f"{hint}use one of: {', '.join(choices)}")
        return None

    def abs_path(self, data: Mapping[str, Any], key: str, path: str, default: str) -> str | None:
        """An absolute, normalised path of safe characters (it lands in shell and fstab)."""
        value = self.string(data, key, path, default=default, example=default)
        if value is None or value == default:
            return value
        where = _sub(path, key)
        if not _SAFE_PATH.fullmatch(value):
            self.add(where, f"{_show(value)} is not an absolute path of safe characters",
                     f"use an absolute path of letters, digits and . _ / -, like {default}")
            return None
        parts = value.split("/")
        if ".." in parts:
            self.add(where, f"{_show(value)} contains '..'",
                     f"write the real absolute path, like {default}")
            return None
        norm = posixpath.normpath(value)
        if norm in ("/", "//"):
            self.add(where, "must not be the root directory", f"use a folder, like {default}")
            return None
        if norm != value:
            self.add(where, f"{_show(value)} is not written in its plain form",
                     f"write it as {norm}")
            return None
        return value

    def file_path(
        self, data: Mapping[str, Any], key: str, path: str, default: str | None,
    ) -> str | None:
        """A local file path (``~`` allowed); only control characters are refused."""
        value = self.string(data, key, path, default=default, example="~/.ssh/id_ed25519")
        if value is None or value is default:
            return value
        if not value or any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029"
                            for c in value):  # C0, DEL, C1 and YAML's line breaks
            self.add(_sub(path, key), "must be a non-empty path without control characters",
                     "write the path on one line, e.g. ~/.ssh/id_ed25519")
            return None
        return value

    def secret(self, data: Mapping[str, Any], key: str, path: str) -> Secret | None:
        """A ``${VAR}`` reference resolved from the environment, a literal, or absent (asked)."""
        where = _sub(path, key)
        value = data.get(key)
        if value is None:
            return Secret()
        if not isinstance(value, str):
            self.add(where, "must be text (a ${VAR} reference)",
                     f"write {key}: ${{OMW_DB_PASSWORD}} and export OMW_DB_PASSWORD")
            return None
        m = _VAR_REF.fullmatch(value)
        if m:
            return Secret(value, self.env.get(m.group(1)))
        if "${" in value or value.startswith("$"):
            self.add(where, "is not a valid ${VAR} reference",
                     "write ${NAME} alone, NAME of letters, digits and _ (e.g. ${OMW_DB_PASSWORD})")
            return None
        self.warnings.append(PlanProblem(
            where, "holds a literal secret; it is used now but never written back",
            f"write {key}: ${{OMW_DB_PASSWORD}} and export OMW_DB_PASSWORD instead"))
        return Secret(None, value)


# --------------------------------------------------------------------------- reading


def _read_ssh(
    c: _Checker, data: Mapping[str, Any], path: str, base: SSHConfig,
) -> dict[str, Any]:
    """Validated ssh keys that ``data`` sets (only those), for merging over ``base``."""
    out: dict[str, Any] = {}
    present = {k for k in _SSH_KEYS if data.get(k) is not None}
    if "user" in present:
        out["user"] = c.string(data, "user", path, pattern=_SSH_USER,
                               rule="a login name of a-z, 0-9, _ and - (max 32)", example="root")
    if "port" in present:
        out["port"] = c.integer(data, "port", path, 1, 65535, base.port)
    if "identity" in present:
        out["identity"] = c.file_path(data, "identity", path, None)
    if "known_hosts" in present:
        out["known_hosts"] = c.file_path(data, "known_hosts", path, None)
    if "host_keys" in present:
        out["host_keys"] = c.choice(data, "host_keys", path, HOST_KEY_POLICIES)
    if "sudo" in present:
        out["sudo"] = c.choice(data, "sudo", path, SUDO_MODES)
    if "connect_timeout" in present:
        out["connect_timeout"] = c.number(data, "connect_timeout", path, base.connect_timeout)
    if "config" in present:
        out["config"] = c.file_path(data, "config", path, None)
    return out


def _read_cluster(c: _Checker, top: Mapping[str, Any]) -> Cluster | None:
    data = c.section(top, "cluster", "", _CLUSTER_KEYS, required=True,
                     fix="add 'cluster:' with name: and timezone:")
    if data is None:
        return None
    name = c.string(data, "name", "cluster", pattern=_CLUSTER_NAME, example="prod",
                    rule="1-63 of a-z, 0-9 and -, starting with a letter or digit")
    tz = c.string(data, "timezone", "cluster", example="Europe/Berlin")
    if tz is not None:
        tz = _check_timezone(c, tz)
    om_home = c.abs_path(data, "om_home", "cluster", "/opt/om")
    if name is None or tz is None or om_home is None:
        return None
    return Cluster(name=name, timezone=tz, om_home=om_home)


def _check_timezone(c: _Checker, tz: str) -> str | None:
    """An IANA zone name; paths, odd characters and unknown zones are refused."""
    ok = bool(_TZ_CHARS.fullmatch(tz)) and ".." not in tz and len(tz) <= 64
    if ok:
        zones = _zones()
        if zones:
            ok = tz in zones
        else:  # no zone list on this system: let zoneinfo judge the (already safe) name
            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                ok = False
    if ok:
        return tz
    close = difflib.get_close_matches(tz, sorted(_zones()), n=1) if _TZ_CHARS.fullmatch(tz) else []
    hint = f"did you mean '{close[0]}'? " if close else ""
    c.add("cluster.timezone", f"{_show(tz)} is not an IANA time zone",
          f"{hint}use a name from 'timedatectl list-timezones', like Europe/Berlin")
    return None


def _read_node(
    c: _Checker, raw: object, i: int, base_ssh: SSHConfig,
) -> Node | None:
    path = _sub("nodes", i)
    before = len(c.problems)
    if not isinstance(raw, dict):
        c.add(path, f"must be a mapping with name:, host:, roles:, not {_show(raw)}",
              "write each node as '- name: om1' with indented host:, roles: lines")
        return None
    c.keys(raw, path, _NODE_KEYS)
    name = c.string(raw, "name", path, pattern=_NODE_NAME, example="om1",
                    rule="1-63 of a-z, 0-9 and -, starting with a letter or digit")
    host = c.string(raw, "host", path, example="10.1.1.1")
    if host is not None and not is_hostname(host):
        c.add(_sub(path, "host"), f"{_show(host)} is neither a host name nor an IPv4 address",
              "write a DNS name (om1.example.org) or an IPv4 address (10.1.1.1)")
        host = None
    address = c.string(raw, "address", path, default=None, example="10.1.1.1")
    if address is not None:
        address = _check_node_address(c, address, _sub(path, "address"))
    elif host is not None:
        if is_ipv4(host):
            address = host
        else:
            c.add(_sub(path, "address"), "address is required when host is a name",
                  "add 'address:' with the node's cluster-facing IPv4 address")
    interface = c.string(raw, "interface", path, default=None, pattern=_IFACE, example="eth0",
                         rule="1-15 of letters, digits and . _ @ -")
    if interface in (".", ".."):
        c.add(_sub(path, "interface"), f"{_show(interface)} is not an interface name",
              "use the name 'ip -br link' shows, like eth0")
        interface = None
    server_url = c.string(raw, "server_url", path, default=None,
                          example="https://om1.example.org/openmeetings")
    if server_url is not None:
        server_url = _check_url(c, server_url, _sub(path, "server_url"))
    roles = _read_roles(c, raw, path)
    overrides: dict[str, Any] = {}
    if raw.get("ssh") is not None:
        ssh_data = c.section(raw, "ssh", path, _SSH_KEYS)
        if ssh_data:
            overrides = _read_ssh(c, ssh_data, _sub(path, "ssh"), base_ssh)
    if len(c.problems) > before:
        return None
    assert name is not None and host is not None and address is not None and roles is not None
    merged = SSHConfig(**{**base_ssh.__dict__, **overrides})
    return Node(name=name, host=host, address=address, interface=interface,
                server_url=server_url, roles=roles, ssh=merged, ssh_overrides=overrides)


def _check_node_address(c: _Checker, address: str, where: str) -> str | None:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        c.add(where, f"{_show(address)} is not an IPv4 address",
              "write the node's cluster-facing IPv4 address, like 10.1.1.1")
        return None
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        c.add(where, f"{address} cannot be a node's address",
              "use the address the other nodes reach this node on")
        return None
    return address


def _check_url(c: _Checker, url: str, where: str) -> str | None:
    fix = "write the full public URL, like https://om1.example.org/openmeetings"
    if not _URL_CHARS.fullmatch(url):
        c.add(where, f"{_show(url)} holds spaces or characters not allowed in a URL", fix)
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        c.add(where, f"{_show(url)} is not a valid URL", fix)
        return None
    if parts.scheme not in ("http", "https"):
        c.add(where, f"{_show(url)} is not an http(s) URL", fix)
        return None
    if not host:
        c.add(where, f"{_show(url)} has no host", fix)
        return None
    if parts.username is not None or parts.password is not None:
        c.add(where, "must not hold a user name or password", fix)
        return None
    return url


def _read_roles(c: _Checker, raw: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    where = _sub(path, "roles")
    value = raw.get("roles")
    if value is None:
        return ("om",)
    fix = "write roles: [om], [om, storage] or [database]; roles are om, storage, database"
    if not c.nonempty_list(value, where, fix):
        return None
    roles: list[str] = []
    for j, role in enumerate(value):
        if not isinstance(role, str) or role not in ROLES:
            close = difflib.get_close_matches(str(role), ROLES, n=1)
            c.add(_sub(where, j), f"{_show(role)} is not a role",
                  f"did you mean '{close[0]}'?" if close else fix)
            return None
        if role in roles:
            c.add(_sub(where, j), f"role {role!r} is listed twice", "list each role once")
            return None
        roles.append(role)
    return tuple(roles)


@dataclass(frozen=True)
class _RawNode:
    """Best-effort view of a node entry, so cross-node rules run even when a node is invalid."""

    name: str | None
    host: str | None
    address: str | None
    roles: tuple[str, ...]


def _raw_node(raw: object) -> _RawNode:
    if not isinstance(raw, dict):
        return _RawNode(None, None, None, ())
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    host = raw.get("host") if isinstance(raw.get("host"), str) else None
    address = raw.get("address") if isinstance(raw.get("address"), str) else None
    if address is None and host is not None and is_ipv4(host):
        address = host
    roles = raw.get("roles", ["om"])
    roles = roles if isinstance(roles, list) else []
    return _RawNode(name, host, address, tuple(r for r in roles if isinstance(r, str)))


def _read_nodes(
    c: _Checker, top: Mapping[str, Any], base_ssh: SSHConfig,
) -> tuple[list[Node] | None, list[_RawNode]]:
    """Typed nodes (None if any is invalid) and the raw views for cross-node rules."""
    value = top.get("nodes")
    fix = "list at least 2 nodes, each with name:, host: and roles: [om]"
    if value is None:
        c.add("nodes", "is required", fix)
        return None, []
    if not isinstance(value, list):
        c.add("nodes", f"must be a list, not {_show(value)}", fix)
        return None, []
    nodes = [_read_node(c, raw, i, base_ssh) for i, raw in enumerate(value)]
    raws = [_raw_node(raw) for raw in value]
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for i, rn in enumerate(raws):
        if rn.name is not None:
            if rn.name in names:
                c.add(f"nodes[{i}].name",
                      f"{rn.name!r} is already the name of nodes[{names[rn.name]}]",
                      "give every node its own name")
            names.setdefault(rn.name, i)
        if rn.address is not None:
            if rn.address in addresses:
                c.add(f"nodes[{i}].address",
                      f"{rn.address} is already the address of nodes[{addresses[rn.address]}]",
                      "give every node its own cluster-facing address")
            addresses.setdefault(rn.address, i)
    if sum(1 for rn in raws if "om" in rn.roles) < 2:
        c.add("nodes", "a cluster needs at least 2 OpenMeetings nodes",
              "add nodes with roles: [om] until there are at least 2")
    if any(n is None for n in nodes):
        return None, raws
    return [n for n in nodes if n is not None], raws


def _read_database(c: _Checker, top: Mapping[str, Any]) -> Database | None:
    data = c.section(top, "database", "", _DB_KEYS, required=True,
                     fix="add 'database:' with type:, host:, name:, user:")
    if data is None:
        return None
    p = "database"
    before = len(c.problems)
    db_type = None
    raw_type = data.get("type")
    if isinstance(raw_type, str) and raw_type.lower() == "h2":
        c.add("database.type", "Db other than H2 should be used",
              "choose mysql, mariadb or postgresql (mssql, oracle and db2 work too); "
              "H2 cannot be shared by the nodes of a cluster")
    else:
        db_type = c.choice(data, "type", p, DB_TYPES)
    host = c.string(data, "host", p, example="10.1.1.1")
    if host is not None and not is_hostname(host):
        c.add("database.host", f"{_show(host)} is neither a host name nor an IPv4 address",
              "write the address the OpenMeetings nodes reach the database on")
        host = None
    port = c.integer(data, "port", p, 1, 65535, DB_DEFAULT_PORTS.get(db_type or "", 3306))
    ident_rule = "1-63 of letters, digits and _"
    name = c.string(data, "name", p, pattern=_DB_IDENT, rule=ident_rule, example="openmeetings")
    user = c.string(data, "user", p, pattern=_DB_IDENT, rule=ident_rule, example="om")
    password = c.secret(data, "password", p)
    if password is not None and password.value is not None and "," in password.value:
        origin = f"the value of ${password.var}" if password.ref else "the password"
        c.add("database.password",
              f"{origin} holds a comma; OpenJPA splits connection properties on commas",
              "choose a database password without commas")
        password = None
    manage = c.boolean(data, "manage", p, True)
    admin_user = c.string(data, "admin_user", p, default=None, pattern=_DB_IDENT,
                          rule=ident_rule, example="root")
    admin_password = c.secret(data, "admin_password", p) if "admin_password" in data else None
    if admin_password is not None and admin_password != Secret() and data.get("admin_user") is None:
        c.add("database.admin_password", "is set but admin_user is not",
              "add admin_user:, or remove admin_password to use socket authentication")
    if len(c.problems) > before:
        return None
    assert db_type and host and port and name and user and password is not None
    assert manage is not None
    return Database(type=db_type, host=host, port=port, name=name, user=user, password=password,
                    manage=manage, admin_user=admin_user, admin_password=admin_password)


def _read_network(c: _Checker, top: Mapping[str, Any]) -> tuple[Network, bool] | None:
    """The network section, and whether ``interfaces`` was given (else it is derived later)."""
    data = c.section(top, "network", "", _NET_KEYS)
    if data is None:
        return None
    p = "network"
    d = Network()
    join = c.choice(data, "join", p, JOIN_MODES, default=d.join)
    group = c.string(data, "multicast_group", p, default=d.multicast_group, example="224.0.0.0")
    if group is not None:
        try:
            ok = ipaddress.IPv4Address(group) in _MULTICAST_NET
        except ValueError:
            ok = False
        if not ok:
            c.add("network.multicast_group", f"{_show(group)} is not an IPv4 multicast address",
                  "use an address in 224.0.0.0/4, like the documentation's 224.0.0.0")
            group = None
    port = c.integer(data, "multicast_port", p, 1, 65535, d.multicast_port)
    ttl = c.integer(data, "multicast_ttl", p, 0, 255, d.multicast_ttl)
    timeout = c.integer(data, "multicast_timeout", p, 1, None, d.multicast_timeout)
    route = c.string(data, "route", p, default=d.route, example="224.0.0.0/4")
    if route is not None:
        try:
            net = ipaddress.IPv4Network(route, strict=False)
            route = str(net) if net.subnet_of(_MULTICAST_NET) else None
        except ValueError:
            route = None
        if route is None:
            c.add("network.route", f"{_show(data.get('route'))} is not a multicast network",
                  "use a network within 224.0.0.0/4, like the documentation's 224.0.0.0/4")
    interfaces = _read_interfaces(c, data)
    given = data.get("interfaces") is not None
    firewall = c.choice(data, "firewall", p, FIREWALL_MODES, default=d.firewall)
    hz_name = _read_hz_cluster_name(c, data)
    if None in (join, group, port, ttl, timeout, route, interfaces, firewall):
        return None
    assert join and group and port is not None and ttl is not None and timeout and route
    assert interfaces is not None
    return Network(join=join, multicast_group=group, multicast_port=port, multicast_ttl=ttl,
                   multicast_timeout=timeout, route=route, interfaces=interfaces,
                   firewall=firewall or d.firewall,
                   cluster_name=hz_name or None), given


def _read_hz_cluster_name(c: _Checker, data: Mapping[str, Any]) -> str:
    """network.cluster_name ('' when absent: omwizard-<cluster.name> is used)."""
    value = data.get("cluster_name")
    if value is None:
        return ""
    where = "network.cluster_name"
    if not isinstance(value, str) or not HZ_CLUSTER_NAME.fullmatch(value):
        c.add(where, f"{_show(value)} is not a Hazelcast cluster name omwizard writes",
              "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit "
              "(or leave it out: omwizard-<cluster.name>)")
        return ""
    if value == "dev":
        c.warnings.append(PlanProblem(
            where, "'dev' is Hazelcast's default: any other default Hazelcast on the network "
            "joins this cluster", "choose a name of this cluster's own (all nodes restart "
            "together after `omwizard apply PLAN --section nodes`)"))
    return value


def _read_interfaces(c: _Checker, data: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = data.get("interfaces")
    if value is None:
        return ()
    where = "network.interfaces"
    fix = 'write a list like interfaces: ["10.1.1.*"] (parts: number, * or range 4-18)'
    if not c.nonempty_list(value, where, fix):
        return None
    out: list[str] = []
    for j, item in enumerate(value):
        if not isinstance(item, str) or not re.fullmatch(r"[0-9.*-]+", item) \
                or not _hz_interface_ok(item):
            c.add(_sub(where, j), f"{_show(item)} is not a Hazelcast interface pattern", fix)
            return None
        out.append(item)
    return tuple(out)


def _read_storage(c: _Checker, top: Mapping[str, Any]) -> Storage | None:
    data = c.section(top, "storage", "", _STORAGE_KEYS)
    if data is None:
        return None
    p = "storage"
    d = Storage()
    kind = c.choice(data, "kind", p, STORAGE_KINDS, default=d.kind)
    path = c.abs_path(data, "path", p, d.path)
    rule = "a comma list of a-z, 0-9 and _ = . : / -"
    exp = c.string(data, "export_options", p, default=d.export_options, pattern=_OPTIONS,
                   rule=rule, example=d.export_options)
    mnt = c.string(data, "mount_options", p, default=d.mount_options, pattern=_OPTIONS,
                   rule=rule, example=d.mount_options)
    if None in (kind, path, exp, mnt):
        return None
    assert kind and path and exp and mnt
    return Storage(kind=kind, path=path, export_options=exp, mount_options=mnt)


def _cross_checks(c: _Checker, nodes: list[_RawNode], top: Mapping[str, Any]) -> None:
    """Rules across sections (storage server count, the managed database node).

    They read the raw values, so they are reported even next to problems in the same sections.
    """
    storage = top.get("storage")
    kind = storage.get("kind", "nfs") if isinstance(storage, dict) else None
    servers = [i for i, n in enumerate(nodes) if "storage" in n.roles]
    if kind in (None, "nfs") and isinstance(storage, dict | None) and len(servers) != 1:
        found = "no node has" if not servers else f"{len(servers)} nodes have"
        c.add("storage.kind", f"kind nfs needs exactly one node with role storage; {found} it",
              "give exactly one node roles: [..., storage] (the NFS server), "
              "or use kind: existing for an already shared folder")
    if kind == "existing" and servers:
        c.add(f"nodes[{servers[0]}].roles", "role storage is only used with storage.kind nfs",
              "remove the storage role, or set storage.kind: nfs")
    db = top.get("database")
    if not isinstance(db, dict) or not isinstance(db.get("host"), str):
        return
    host = db["host"]
    if db.get("manage", True) is True and not any(
            "database" in n.roles and host in (n.address, n.host) for n in nodes):
        c.add("database.manage",
              f"manage is true but no node with role database has host or address {host}",
              f"add the database server (host or address {host}) with roles: [database], "
              "or set manage: false if you create the database user yourself")


# --------------------------------------------------------------------------- entry points


def plan_from_dict(
    data: object, env: Mapping[str, str] = os.environ, source: Path | None = None,
) -> Plan:
    """Validate raw plan data (as parsed from YAML) into a :class:`Plan`, or raise PlanError."""
    c = _Checker(env)
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise PlanError([PlanProblem(str(source) if source else "plan",
                                     f"the plan must be a mapping of keys, but it is {what}",
                                     "start the file with 'omwizard: 1' and a 'cluster:' section")])
    version = data.get("omwizard")
    if version is None:
        c.add("omwizard", "is missing: the file does not say its schema version",
              "add 'omwizard: 1' as the first line")
    elif type(version) is not int or version != SCHEMA_VERSION:
        c.add("omwizard", f"schema version {_show(version)} is not supported; "
              f"this omwizard reads version {SCHEMA_VERSION}",
              "write 'omwizard: 1' and the keys of schema 1 (see examples/plan.yaml)")
    c.keys(data, "", _TOP_KEYS)
    cluster = _read_cluster(c, data)
    ssh_data = c.section(data, "ssh", "", _SSH_KEYS)
    ssh_over = _read_ssh(c, ssh_data, "ssh", SSHConfig()) if ssh_data else {}
    ssh = SSHConfig(**{**SSHConfig().__dict__, **{k: v for k, v in ssh_over.items()
                                                  if v is not None}})
    nodes, raw_nodes = _read_nodes(c, data, ssh)
    database = _read_database(c, data)
    network = _read_network(c, data)
    storage = _read_storage(c, data)
    if raw_nodes:
        _cross_checks(c, raw_nodes, data)
    if c.problems:
        raise PlanError(c.problems)
    assert cluster and nodes is not None and database and network and storage
    net, given = network
    if not given:
        net = Network(**{**net.__dict__, "interfaces": default_interfaces(n.address
                                                                          for n in nodes)})
    return Plan(cluster=cluster, ssh=ssh, nodes=tuple(nodes), database=database, network=net,
                storage=storage, source=source, warnings=tuple(c.warnings))


def _yaml_problem(exc: BaseException, where: str) -> PlanProblem:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        where = f"{where}:{mark.line + 1}:{mark.column + 1}"
        msg = (getattr(exc, "problem", None) or "YAML error").strip()
        ctx = getattr(exc, "context", None)
        message = f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {msg}"
        if ctx:
            message += f" ({ctx})"
    else:
        message = f"YAML error: {exc}"
    return PlanProblem(where, message, "correct the YAML there (indentation, quotes, colons)")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reports duplicate keys instead of keeping the last one silently."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:
                continue
            if dup:
                mark = key_node.start_mark
                self.duplicates.append((str(key), mark.line + 1, mark.column + 1))
        return super().construct_mapping(node, deep=deep)


def parse_plan_text(
    text: str, env: Mapping[str, str] = os.environ, source: Path | None = None,
) -> Plan:
    """Parse YAML text and validate it; every YAML problem becomes a PlanError with line/column."""
    where = str(source) if source else "plan"
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader already refuses control characters here
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise PlanError([_yaml_problem(exc, where)]) from None
    except RecursionError:
        raise PlanError([PlanProblem(where, "the YAML is nested too deeply",
                                     "write the plan as in examples/plan.yaml")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.duplicates:
        raise PlanError([
            PlanProblem(f"{where}:{line}:{col}", f"key {key!r} appears twice in the same mapping",
                        "keep one of them")
            for key, line, col in loader.duplicates])
    return plan_from_dict(data, env=env, source=source)


def load_plan(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Plan:
    """Read and validate a plan file; unreadable files are PlanErrors too (exit status 2)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlanError([PlanProblem(str(p), f"cannot read the plan: {reason}",
                                     "check the path and that the file is UTF-8 text")]) from None
    return parse_plan_text(text, env=env, source=p)


def _ssh_to_dict(ssh: SSHConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"user": ssh.user, "port": ssh.port}
    if ssh.identity is not None:
        out["identity"] = ssh.identity
    out.update(known_hosts=ssh.known_hosts, host_keys=ssh.host_keys, sudo=ssh.sudo,
               connect_timeout=ssh.connect_timeout)
    if ssh.config is not None:
        out["config"] = ssh.config
    return out


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as an operator would write it (defaults spelled out), ready for YAML.

    Secrets appear only as their ``${VAR}`` reference; a literal or asked secret is omitted, so
    it is asked again on the next load. ``network.interfaces`` is omitted when it is the value
    derived from the node addresses, so editing an address later keeps them in step.
    """
    nodes = []
    for n in plan.nodes:
        item: dict[str, Any] = {"name": n.name, "host": n.host, "address": n.address}
        if n.interface is not None:
            item["interface"] = n.interface
        if n.server_url is not None:
            item["server_url"] = n.server_url
        item["roles"] = list(n.roles)
        if n.ssh_overrides:
            item["ssh"] = {k: n.ssh_overrides[k] for k in _SSH_KEYS if k in n.ssh_overrides}
        nodes.append(item)
    db = plan.database
    database: dict[str, Any] = {"type": db.type, "host": db.host, "port": db.port,
                                "name": db.name, "user": db.user}
    if db.password.ref:
        database["password"] = db.password.ref
    database["manage"] = db.manage
    if db.admin_user is not None:
        database["admin_user"] = db.admin_user
    if db.admin_password is not None and db.admin_password.ref:
        database["admin_password"] = db.admin_password.ref
    net = plan.network
    network: dict[str, Any] = {
        "join": net.join, "multicast_group": net.multicast_group,
        "multicast_port": net.multicast_port, "multicast_ttl": net.multicast_ttl,
        "multicast_timeout": net.multicast_timeout, "route": net.route,
    }
    if net.interfaces != default_interfaces(n.address for n in plan.nodes):
        network["interfaces"] = list(net.interfaces)
    if net.firewall != Network.firewall:
        network["firewall"] = net.firewall
    if net.cluster_name is not None:
        network["cluster_name"] = net.cluster_name
    st = plan.storage
    return {
        "omwizard": SCHEMA_VERSION,
        "cluster": {"name": plan.cluster.name, "timezone": plan.cluster.timezone,
                    "om_home": plan.cluster.om_home},
        "ssh": _ssh_to_dict(plan.ssh),
        "nodes": nodes,
        "database": database,
        "network": network,
        "storage": {"kind": st.kind, "path": st.path, "export_options": st.export_options,
                    "mount_options": st.mount_options},
    }


class _Dumper(yaml.SafeDumper):
    """Writes short lists of plain values inline (``roles: [om, storage]``), as people do."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(x, str | int) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_plan(plan: Plan) -> str:
    """YAML text of :func:`plan_to_dict`, with a header saying how secrets are handled."""
    header = (
        "# omwizard plan (schema 1). Secrets are ${VAR} references read from the environment;\n"
        "# a secret without one is asked when needed and never written here.\n"
    )
    body = yaml.dump(plan_to_dict(plan), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True)
    return header + body
