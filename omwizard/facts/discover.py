"""Discover: the plan an existing cluster already is, read from its nodes (pure part).

`engine.discover` finds OpenMeetings on each host and reads it (the doctor's snapshot plus the
time zone, /etc/exports, /etc/fstab and the database servers running); `build_plan` turns
what was read into a plan dict that the loader validates. Where nodes disagree the plan takes
what most have and the report lists every disagreement; what a cluster still lacks (the
documentation's pieces) is listed as findings. The DB password never leaves the node: the
plan says `${OMW_DB_PASSWORD}`, and every value the report shows is passed through a
redactor that knows the passwords found.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from omwizard.configs import hazelcast as hzconf
from omwizard.configs import persistence as pconf
from omwizard.facts import doctor as dx
from omwizard.facts.doctor import NodeView, Snapshot
from omwizard.facts.preflight import TIMEZONE_PROBE, parse_timezone
from omwizard.om.layout import UNIT_FILES, OmLayout
from omwizard.plan.model import HZ_CLUSTER_NAME

USUAL_HOMES = ("/opt/om", "/opt/openmeetings", "/opt/open-meetings", "/opt/apache-openmeetings",
               "/usr/local/openmeetings", "/srv/openmeetings", "/var/lib/openmeetings")
PASSWORD_REF = "${OMW_DB_PASSWORD}"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMBEDDED = ("h2", "derby")


def find_home_command() -> str:
    """Where OpenMeetings is: `home SOURCE DIR` for the first candidate holding its
    hazelcast.xml (the systemd unit's WorkingDirectory/CATALINA_HOME, a running java's
    catalina.home or working dir, then the usual homes), else `none`."""
    q = shlex.quote
    classes = "webapps/openmeetings/WEB-INF/classes/hazelcast.xml"
    return (
        "t() { [ -n \"$2\" ] && [ -f \"$2/" + classes + "\" ] && { echo \"home $1 $2\"; "
        "exit 0; }; true; }; "
        f"for u in {' '.join(q(u) for u in UNIT_FILES)}; do [ -f \"$u\" ] || continue; "
        "for d in $(sed -n -e 's/^[[:space:]]*WorkingDirectory=[[:space:]]*-*//p' "
        "-e \"s/^[[:space:]]*Environment=['\\\"]*CATALINA_HOME=\\([^'\\\" ]*\\).*/\\1/p\" \"$u\")"
        "; do t unit \"$d\"; done; done; "
        "me=$(readlink /proc/self/ns/net); "
        "for p in $(pgrep -x java 2>/dev/null); do "
        "[ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ] || continue; "
        "for d in $(tr '\\0' '\\n' </proc/$p/cmdline | sed -n 's/^-Dcatalina\\.home=//p') "
        "$(readlink /proc/$p/cwd); do t process \"$d\"; done; done; "
        f"for d in {' '.join(q(h) for h in USUAL_HOMES)}; do t usual \"$d\"; done; echo none"
    )


def parse_home(output: str) -> tuple[str | None, str | None]:
    """(om_home, how it was found: unit | process | usual) or (None, None)."""
    for line in output.splitlines():
        words = line.strip().split(" ", 2)
        if len(words) == 3 and words[0] == "home":
            return words[2], words[1]
    return None, None


def extras_parts() -> dict[str, str]:
    """Beside the snapshot: time zone, NFS exports, fstab, running database servers."""
    return {
        "timezone": TIMEZONE_PROBE,
        "exports": "cat /etc/exports 2>/dev/null; true",
        "fstab": "cat /etc/fstab 2>/dev/null; true",
        "db": "for n in mariadbd mysqld postgres; do pgrep -x $n >/dev/null 2>&1 && echo $n; "
              "done; true",
    }


@dataclass(frozen=True)
class Seen:
    """What was read on one host (the snapshot holds secrets: never shown)."""

    host: str
    address: str
    om_home: str | None = None
    found_by: str | None = None
    snapshot: Snapshot = field(default_factory=Snapshot)
    timezone: str | None = None
    exports: str = ""
    fstab: str = ""
    db_servers: tuple[str, ...] = ()
    error: str | None = None  # the host could not be read


@dataclass(frozen=True)
class Disagreement:
    """One plan value the nodes disagree on: each node's value and the one the plan took."""

    key: str
    values: dict[str, str | None]
    chosen: str | None


@dataclass(frozen=True)
class Missing:
    """A piece of the clustering the node lacks (or a doctor cause found while reading)."""

    node: str
    code: str
    what: str
    fix: str


@dataclass
class Discovery:
    """discover's outcome: the plan dict, and the report's disagreements and findings."""

    plan: dict[str, Any]
    disagreements: list[Disagreement]
    missing: list[Missing]
    nodes: dict[str, str]  # node name -> host
    views: dict[str, NodeView]

    def report(self, redact: Callable[[str], str]) -> dict[str, Any]:
        """The `report:` of the discovered plan (every value through redact)."""
        def r(value: Any) -> Any:
            return None if value is None else redact(str(value))

        return {
            "discovered_from": {name: r(host) for name, host in self.nodes.items()},
            "disagreements": [
                {"key": d.key, "chosen": r(d.chosen),
                 "values": {n: r(v) for n, v in d.values.items()}}
                for d in self.disagreements],
            "findings": [{"node": m.node, "cause": m.code, "what": r(m.what), "fix": r(m.fix)}
                         for m in self.missing],
        }


def majority(key: str, values: dict[str, Any], out: list[Disagreement],
             default: Any = None) -> Any:
    """The value most nodes have (first-seen on a tie); a Disagreement when they differ."""
    known = {n: v for n, v in values.items() if v is not None}
    if not known:
        return default
    counts = Counter(_hashable(v) for v in known.values())
    top = counts.most_common(1)[0][0]
    chosen = next(v for v in known.values() if _hashable(v) == top)
    if len(counts) > 1 or len(known) < len(values):
        out.append(Disagreement(key, {n: _show(v) for n, v in values.items()}, _show(chosen)))
    return chosen


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _show(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    return str(v)


def node_name(seen: Seen, view: NodeView | None, index: int, taken: set[str]) -> str:
    """The instance-name when it is a valid plan name, else the host name, else nodeN."""
    host = None if _is_ip(seen.host) else seen.host.split(".")[0]  # not "198" of an address
    for cand in (view.instance_name if view else None, seen.snapshot.hostname, host):
        if cand:
            name = re.sub(r"[^a-z0-9-]", "-", cand.lower()).strip("-")[:63]
            if _NAME.match(name) and name not in taken:
                return name
    name = f"node{index + 1}"
    while name in taken:
        name += "x"
    return name


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def exported(exports: str, path: str) -> bool:
    for line in exports.splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0].rstrip("/") == path.rstrip("/"):
            return True
    return False


def _cluster_name(views: Iterable[NodeView]) -> str | None:
    names = [v.cluster_name for v in views if v.cluster_name]
    if not names:
        return None
    top = Counter(names).most_common(1)[0][0]
    if top.startswith("omwizard-"):
        top = top[len("omwizard-"):]
    name = re.sub(r"[^a-z0-9-]", "-", top.lower()).strip("-")[:63]
    return name if name and name != dx.DEFAULT_CLUSTER_NAME and _NAME.match(name) else None


def build_plan(seen: list[Seen], ssh: dict[str, Any]) -> Discovery:
    """The plan (dict) these hosts describe, with disagreements and missing pieces."""
    dis: list[Disagreement] = []
    missing: list[Missing] = []
    names: dict[str, str] = {}
    views: dict[str, NodeView] = {}
    hz: dict[str, hzconf.HazelcastFacts] = {}
    pers: dict[str, pconf.PersistenceFacts] = {}
    taken: set[str] = set()
    homes: dict[str, str] = {}
    for i, s in enumerate(seen):
        view = None
        if s.om_home:
            view = dx.node_view("?", s.address, s.snapshot, s.om_home)
        name = node_name(s, view, i, taken)
        taken.add(name)
        names[name] = s.host
        if s.error:
            missing.append(Missing(name, "unreachable", f"{s.host} could not be read: {s.error}",
                                   "check SSH to it and run discover again"))
            continue
        if not s.om_home or view is None or not view.installed:
            missing.append(Missing(name, "no-openmeetings", f"no OpenMeetings found on {s.host}",
                                   "install OpenMeetings there, or leave the host out"))
            continue
        views[name] = dataclasses.replace(view, node=name)
        homes[name] = s.om_home
        lay = OmLayout(s.om_home)
        try:
            hz[name] = hzconf.inspect(s.snapshot.files[lay.hazelcast_xml])
        except Exception:  # noqa: BLE001 - a broken file: the node gets no network values
            missing.append(Missing(name, "hazelcast-xml-broken", "hazelcast.xml is not "
                                   "well-formed XML", "restore OpenMeetings' original file"))
        text = s.snapshot.files.get(lay.persistence_xml)
        if text is not None:
            try:
                pers[name] = pconf.inspect(text)
            except Exception:  # noqa: BLE001
                missing.append(Missing(name, "persistence-xml-broken",
                                       "persistence.xml is not readable",
                                       "restore it from OpenMeetings' templates"))
    om_names = list(views)
    by_name = {n: s for n, s in zip(names, seen, strict=True)}

    home = majority("cluster.om_home", {n: by_name[n].om_home for n in om_names}, dis, "/opt/om")
    zone = majority("cluster.timezone", {n: by_name[n].timezone for n in names}, dis, "UTC")
    cluster = _cluster_name(views.values()) or "discovered"
    hz_name = majority("network.cluster_name", {n: v.cluster_name for n, v in views.items()}, dis)
    if hz_name is not None and not HZ_CLUSTER_NAME.fullmatch(hz_name):
        for n, v in views.items():
            if v.cluster_name == hz_name:
                missing.append(Missing(n, "cluster-name-unusable", f"cluster-name {hz_name!r} "
                                       "has characters omwizard does not write",
                                       "the plan uses omwizard-<cluster.name>; `omwizard apply "
                                       "PLAN --section nodes` renames it on every node (restart "
                                       "them together)"))
        hz_name = None

    db_values = {n: p for n, p in pers.items() if p.db_kind}
    db_type = majority("database.type", {n: p.db_kind for n, p in db_values.items()}, dis)
    db_host = majority("database.host", {n: p.host for n, p in db_values.items()}, dis)
    db_port = majority("database.port", {n: p.effective_port for n, p in db_values.items()}, dis)
    db_name = majority("database.name", {n: p.database for n, p in db_values.items()}, dis)
    db_user = majority("database.user", {n: p.user for n, p in db_values.items()}, dis)
    if db_type in _EMBEDDED or db_type is None:
        for n in om_names:
            missing.append(Missing(n, "embedded-database", f"OpenMeetings uses "
                                   f"{db_type or 'no known'} database",
                                   "move to a database server all nodes reach (MySQL, "
                                   "MariaDB, PostgreSQL); the plan assumes MySQL"))
        db_type, db_host, db_port = "mysql", db_host or "localhost", 3306
    if db_host in ("localhost", "127.0.0.1", "::1"):
        for n in om_names:
            missing.append(Missing(n, "database-local", f"persistence.xml connects to "
                                   f"{db_host}: each node has its own database",
                                   "point every node at one database server "
                                   "(`omwizard apply PLAN --section database` after editing "
                                   "database.host in the plan)"))
    db_node = next((n for n in names if db_host and db_host in (by_name[n].address,
                                                                by_name[n].host)), None)

    live_dirs = {n: v.data_dir_live or v.data_dir_configured for n, v in views.items()}
    data_dir = majority("storage.path", live_dirs, dis)
    if data_dir is None:
        for n in om_names:
            missing.append(Missing(n, "no-data-dir", "no -DDATA_DIR in JAVA_OPTS: uploads stay "
                                   "in this node's webapp folder",
                                   "`omwizard apply PLAN --section storage` adds it"))
    path = data_dir or "/opt/omdata"
    nfs = [n for n in names if exported(by_name[n].exports, path)]
    kind = "nfs" if len(nfs) == 1 else "existing"

    joins = {n: (h.join_methods[0] if h.join_methods and not h.has_disabled_join_block
                 else None) for n, h in hz.items()}
    join = majority("network.join", joins, dis, "multicast")
    network: dict[str, Any] = {"join": join if join in ("multicast", "tcp-ip") else "multicast"}
    for key, attr, conv in (("multicast_group", "multicast_group", str),
                            ("multicast_port", "multicast_port", int),
                            ("multicast_ttl", "multicast_ttl", int),
                            ("multicast_timeout", "multicast_timeout", int)):
        vals = {}
        for n, h in hz.items():
            raw = getattr(h, attr)
            try:
                vals[n] = conv(raw) if raw is not None else None
            except ValueError:
                vals[n] = None
        value = majority(f"network.{key}", vals, dis)
        if value is not None:
            network[key] = value
    pats = {n: list(h.interfaces) if h.interfaces_enabled and h.interfaces else None
            for n, h in hz.items()}
    interfaces = majority("network.interfaces", pats, dis)
    if interfaces:
        network["interfaces"] = [p for p in interfaces if ":" not in p]

    nodes = []
    for n in names:
        s = by_name[n]
        if s.error or n not in views and not (n == db_node or n in nfs):
            continue
        roles = []
        if n in views:
            roles.append("om")
        if kind == "nfs" and n in nfs:
            roles.append("storage")
        if n == db_node and s.db_servers:
            roles.append("database")
        if not roles:
            continue
        item: dict[str, Any] = {"name": n, "host": s.host, "address": s.address}
        iface = next((a.interface for a in s.snapshot.addresses if a.ip == s.address), None)
        if iface:
            item["interface"] = iface
        url = views[n].server_url if n in views else None
        host = dx.url_host(url)
        loopback = host is not None and (host in ("localhost", "::1") or host.startswith("127."))
        if url and host and not loopback and url.split(":", 1)[0] in ("http", "https"):
            item["server_url"] = url
        item["roles"] = roles
        nodes.append(item)

    plan = {
        "omwizard": 1,
        "cluster": {"name": cluster, "timezone": zone, "om_home": home},
        "ssh": ssh,
        "nodes": nodes,
        "database": {"type": db_type, "host": db_host or "localhost",
                     "port": int(db_port or 3306), "name": db_name or "openmeetings",
                     "user": db_user or "om", "password": PASSWORD_REF,
                     "manage": any("database" in n["roles"] for n in nodes)},
        "network": network,
        "storage": {"kind": kind, "path": path},
    }
    if hz_name is not None and hz_name != f"omwizard-{cluster}":
        network["cluster_name"] = hz_name  # what the nodes have, so check keeps it
    missing += pieces(views, pers, homes)
    return Discovery(plan, dis, missing, names, views)


def pieces(views: dict[str, NodeView], pers: dict[str, pconf.PersistenceFacts],
           homes: dict[str, str]) -> list[Missing]:
    """The documentation's pieces a node lacks, and the doctor's causes seen in the files."""
    out: list[Missing] = []
    problems: dict[str, list[dx.Problem]] = {}
    for n, v in views.items():
        problems.setdefault(n, []).extend(dx.judge_join(v))
        problems[n].extend(dx.judge_interfaces(v))
        problems[n].extend(dx.judge_overrides(v, homes.get(n, "/opt/om")))
    for judge in (dx.judge_identity, dx.judge_cluster_name, dx.judge_versions,
                  dx.judge_database, dx.judge_data_dir, dx.judge_kurento):
        for n, found in judge(views).items():
            problems.setdefault(n, []).extend(found)
    for n, v in views.items():
        if not v.server_url:
            out.append(Missing(n, "no-server-url", "hazelcast.xml has no member attribute "
                               "server.url", "set server_url for the node in the plan; "
                               "`omwizard apply PLAN --section nodes` writes it"))
        else:
            problems[n].extend(p for p in dx.judge_server_url(v, {})
                               if p.cause.code == "server-url-loopback")
        p = pers.get(n)
        if p is not None and not p.remote_commit_provider_active:
            out.append(Missing(n, "remote-commit", "OpenJPA's RemoteCommitProvider is not "
                               "active in persistence.xml (caches go stale across nodes)",
                               "`omwizard apply PLAN --section database` activates it"))
        if not any(f.startswith(dx.SERIALIZATION_KEYS) for f in v.configured_flags):
            out.append(Missing(n, "serialization-lists", "JAVA_OPTS lack OpenJPA's "
                               "serialization lists (CVE-2024-54676)",
                               "`omwizard apply PLAN --section database` adds them"))
    for n, found in problems.items():
        for problem in found:
            out.append(Missing(n, problem.cause.code, problem.what, problem.fix))
    uniq: dict[tuple[str, str], Missing] = {}
    for m in out:
        uniq.setdefault((m.node, m.code), m)
    return list(uniq.values())


def parse_extras(timezone: str) -> str | None:
    return parse_timezone(timezone).zone
