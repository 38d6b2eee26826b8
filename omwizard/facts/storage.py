"""Pure decisions of the storage section: what the nodes said, and what it means.

Every function takes text a node printed (findmnt, id, dpkg-query/rpm, a unit file, find) or
values from the plan, and returns a decision; none does I/O, so each is unit-tested on data.
The probe scripts that produce that text live here too, next to the parsers that read them.
"""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omwizard.configs.exports import exports_ensure
from omwizard.configs.fstab import fstab_line
from omwizard.facts.base import Fact, Files, StepData
from omwizard.om.layout import DROPIN_DIR, UNIT_FILES, OmLayout

if TYPE_CHECKING:
    from omwizard.plan.model import Node, Plan

# -- packages ------------------------------------------------------------------------------

# Debian/Ubuntu names first (the documentation's), then the RHEL family's.
PACKAGES = {
    "server": {"apt": "nfs-kernel-server", "dnf": "nfs-utils", "yum": "nfs-utils"},
    "client": {"apt": "nfs-common", "dnf": "nfs-utils", "yum": "nfs-utils"},
}


def package_probe(role: str) -> str:
    """A script printing ``MANAGER:PACKAGE:STATUS`` for the node's NFS package of ``role``.

    dpkg-query's ``${Status}`` is "install ok installed" only when the package is really
    there ("deinstall ok config-files" is a removed one); rpm -q exits 0 when installed.
    """
    names = PACKAGES[role]
    apt, rpm = shlex.quote(names["apt"]), shlex.quote(names["dnf"])
    return (
        "if command -v dpkg-query >/dev/null 2>&1; then "
        f"printf 'apt:%s:%s\\n' {apt} \"$(dpkg-query -W -f='${{Status}}' {apt} 2>/dev/null)\"; "
        "elif command -v rpm >/dev/null 2>&1; then "
        "m=yum; command -v dnf >/dev/null 2>&1 && m=dnf; "
        f"if rpm -q {rpm} >/dev/null 2>&1; then s=installed; else s=missing; fi; "
        f"printf '%s:%s:%s\\n' \"$m\" {rpm} \"$s\"; "
        "else echo unknown::; fi"
    )


@dataclass(frozen=True)
class PackageState:
    manager: str  # apt | dnf | yum | unknown
    name: str
    installed: bool


def parse_package_probe(output: str) -> PackageState:
    """The probe's line as a decision; an unknown manager is never "installed"."""
    for line in output.splitlines():
        manager, sep, rest = line.strip().partition(":")
        if not sep:
            continue
        name, _, status = rest.partition(":")
        if manager == "apt":
            return PackageState("apt", name, status.split()[-1:] == ["installed"])
        if manager in ("dnf", "yum"):
            return PackageState(manager, name, status.strip() == "installed")
        if manager == "unknown":
            break
    return PackageState("unknown", "", False)


def install_argv(state: PackageState) -> list[str]:
    """The install command for the node's package manager (non-interactive)."""
    if state.manager == "apt":
        return ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", state.name]
    if state.manager in ("dnf", "yum"):
        return [state.manager, "install", "-y", state.name]
    raise ValueError("no supported package manager (apt, dnf, yum) on this node")


INSTALL_UNDO_TEXT = "none: packages are not removed on rollback (remove it by hand if unwanted)"

# -- mounts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str
    fstype: str

    @property
    def is_nfs(self) -> bool:
        return self.fstype in ("nfs", "nfs4")


def findmnt_argv(path: str) -> list[str]:
    """What is mounted at exactly ``path`` (kernel table), one ``SOURCE FSTYPE`` a line."""
    return ["findmnt", "-n", "-k", "-o", "SOURCE,FSTYPE", "--mountpoint", path]


def parse_findmnt(output: str) -> Mount | None:
    """The mount on top at that point (the last line: stacked mounts are listed in order)."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    lines = [f for f in lines if len(f) >= 2]
    if not lines:
        return None
    source, fstype = lines[-1][0], lines[-1][1]
    return Mount(source, fstype)


def _norm_source(source: str) -> str:
    host, sep, path = source.partition(":")
    if not sep:
        return source
    return f"{host.strip('[]')}:{path.rstrip('/') or '/'}"


def mount_verdict(mount: Mount | None, want_source: str) -> str:
    """'ok' (the NFS export is mounted), 'absent' (nothing there) or 'other' (something else)."""
    if mount is None:
        return "absent"
    if mount.is_nfs and _norm_source(mount.source) == _norm_source(want_source):
        return "ok"
    return "other"


# -- exports -------------------------------------------------------------------------------


def parse_exportfs(output: str) -> dict[tuple[str, str], frozenset[str]]:
    """``exportfs -v`` as {(path, client): options}.

    A long path puts its clients on the next line, so a line without a path continues the last.
    """
    live: dict[tuple[str, str], frozenset[str]] = {}
    path: str | None = None
    for raw in output.splitlines():
        fields = raw.split()
        if not fields:
            continue
        if fields[0].startswith("/"):
            path = fields[0].rstrip("/") or "/"
            fields = fields[1:]
        if path is None:
            continue
        for item in fields:
            client, _, opts = item.partition("(")
            live[(path, client.lower())] = frozenset(o for o in opts.rstrip(")").split(",") if o)
    return live


def missing_live_exports(
    live: dict[tuple[str, str], frozenset[str]], path: str, clients: list[str], options: str
) -> list[str]:
    """Clients not exported ``path`` with (at least) the plan's options in the kernel's table.

    exportfs -v expands the options (wdelay, hide, sec=sys...), so the plan's must be a subset.
    """
    want = frozenset(o for o in options.split(",") if o)
    key_path = path.rstrip("/") or "/"
    missing = []
    for client in clients:
        got = live.get((key_path, client.lower()))
        if got is None or not want <= got:
            missing.append(client)
    return missing


# -- the OpenMeetings user -----------------------------------------------------------------

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*(User|Group)\s*=\s*(.*?)\s*$")


def unit_user(*texts: str | None) -> tuple[str | None, str | None]:
    """``User=`` and ``Group=`` of the unit's [Service] (and drop-ins after it; last wins)."""
    user = group = None
    for text in texts:
        if not text:
            continue
        section = None
        for line in text.splitlines():
            header = _SECTION.match(line)
            if header:
                section = header.group(1).strip()
                continue
            match = _KEY.match(line) if section == "Service" else None
            if match:
                value = match.group(2).strip("'\"") or None
                if match.group(1) == "User":
                    user = value
                else:
                    group = value
    return user, group


def om_owner(
    unit_found: bool, user: str | None, group: str | None, home_owner: str | None
) -> tuple[str, str | None, str]:
    """(user, group or None = the user's primary group, where it came from).

    A systemd unit runs OM as its User=/Group= (root when User= is absent, as systemd does;
    OM 9.1.0's unit says nobody:nogroup); a plain Tomcat install runs as the owner of om_home.
    """
    if unit_found:
        if user:
            return user, group, "the unit's User=/Group="
        return "root", group or "root", "the unit (no User=: systemd runs it as root)"
    if home_owner:
        owner_user, _, owner_group = home_owner.strip().partition(":")
        if owner_user and owner_group:
            return owner_user, owner_group, "the owner of om_home (Tomcat install)"
    return "nobody", "nogroup", "default of OpenMeetings' unit (nobody:nogroup)"


def parse_ids(output: str) -> tuple[int | None, int | None]:
    values: dict[str, int | None] = {"uid": None, "gid": None}
    for line in output.splitlines():
        key, _, value = line.strip().partition("=")
        if key in values and value.strip().isdigit():
            values[key] = int(value.strip())
    return values["uid"], values["gid"]


@dataclass(frozen=True)
class IdVerdict:
    reference: tuple[int, int] | None  # the numbers every node should have
    wrong: dict[str, tuple[int | None, int | None]]  # node -> its numbers, where they differ


def id_verdict(
    ids: dict[str, tuple[int | None, int | None]], prefer: str | None = None
) -> IdVerdict:
    """Which nodes differ from the reference numbers.

    The reference is the ``prefer`` node's (the NFS server: files on its disk carry its
    numbers) when it has both, else the pair most nodes share (ties: the first node).
    """
    complete = {n: (u, g) for n, (u, g) in ids.items() if u is not None and g is not None}
    if not complete:
        return IdVerdict(None, dict(ids))
    if prefer in complete:
        reference = complete[prefer]
    else:
        counts = Counter(complete.values())
        best = max(counts.values())
        reference = next(v for v in complete.values() if counts[v] == best)
    wrong = {n: v for n, v in ids.items() if v != reference}
    return IdVerdict(reference, wrong)


def id_fix(
    user: str, group: str | None, have: tuple[int | None, int | None], want: tuple[int, int]
) -> list[str]:
    """The commands that give this node the reference numbers (run with OM stopped)."""
    q = shlex.quote
    out: list[str] = []
    uid, gid = have
    grp = group or user
    if gid != want[1]:
        if gid is None:
            out.append(f"groupadd -g {want[1]} {q(grp)}")
        else:
            out.append(f"groupmod -g {want[1]} {q(grp)}")
    if uid != want[0]:
        if uid is None:
            out.append(f"useradd -r -u {want[0]} -g {want[1]} -s /usr/sbin/nologin {q(user)}")
        else:
            out.append(f"usermod -u {want[0]} {q(user)}")
    if uid is not None and uid != want[0]:
        out.append(f"find / -xdev -uid {uid} -exec chown -h {want[0]} {{}} +")
    if gid is not None and gid != want[1]:
        out.append(f"find / -xdev -gid {gid} -exec chgrp -h {want[1]} {{}} +")
    return out


# -- the data directory --------------------------------------------------------------------

DATA_DIR_KEY = "-DDATA_DIR"


def data_dir_option(path: str) -> str:
    return f"{DATA_DIR_KEY}={path}"


def current_data_dir(java_opts: list[str], default: str) -> str:
    """The data dir OM uses now: the last -DDATA_DIR (the JVM's rule), else the default."""
    value = default
    for token in java_opts:
        key, sep, rest = token.partition("=")
        if key == DATA_DIR_KEY and sep and rest:
            value = rest
    return value


def owner_probe(path: str) -> str:
    """``MISSING`` or ``user:group uid:gid`` of the folder (not following a final symlink)."""
    q = shlex.quote(path)
    return f"if [ -d {q} ]; then stat -c '%U:%G %u:%g' -- {q}; else echo MISSING; fi"


@dataclass(frozen=True)
class FolderState:
    exists: bool
    owner: str = ""  # user:group by name
    numeric: str = ""  # uid:gid


def parse_owner(output: str) -> FolderState:
    line = output.strip().splitlines()[-1] if output.strip() else "MISSING"
    if line == "MISSING":
        return FolderState(False)
    names, _, numbers = line.partition(" ")
    return FolderState(True, names, numbers)


def owner_ok(folder: FolderState, user: str, group: str) -> bool:
    return folder.exists and folder.owner == f"{user}:{group}"


LEFTOVER_LIMIT = 200


def leftovers_probe(old: str, new: str) -> str:
    """Files under ``old`` with no file of the same relative path under ``new`` (bounded).

    Prints nothing when ``old`` is missing or is the same folder as ``new`` (a symlink).
    """
    o, n = shlex.quote(old), shlex.quote(new)
    return (
        f"[ -d {o} ] || exit 0; "
        f"a=$(cd -- {o} && pwd -P); b=$(cd -- {n} 2>/dev/null && pwd -P); "
        '[ "$a" = "$b" ] && exit 0; '
        f"cd -- {o} && find . -type f -print | while IFS= read -r f; do "
        f'[ -e {n}/"$f" ] || printf "%s\\n" "$f"; done | head -n {LEFTOVER_LIMIT + 1}'
    )


def copy_command(old: str, new: str) -> str:
    """Copies what is missing, never overwriting (cp -n), keeping owners and times (-a)."""
    src, dest = shlex.quote(old.rstrip("/") + "/."), shlex.quote(new.rstrip("/") + "/")
    return f"sudo cp -a -n -- {src} {dest}"


def leftovers_warning(old: str, new: str, listing: str) -> str:
    """The operator's warning for files still in the old data dir, or '' when there are none."""
    files = [line for line in listing.splitlines() if line.strip()]
    if not files:
        return ""
    count = f"more than {LEFTOVER_LIMIT}" if len(files) > LEFTOVER_LIMIT else str(len(files))
    sample = ", ".join(f.removeprefix("./") for f in files[:3])
    return (
        f"{count} file(s) in the current data dir {old} are not in {new} (e.g. {sample}); "
        f"omwizard never copies user data: copy them with `{copy_command(old, new)}` "
        "on one node (the folder is shared), with OpenMeetings stopped"
    )


# -- what the checks hand to their applies -----------------------------------------------------


@dataclass(frozen=True)
class DataDirState(StepData):
    """data-dir's check: what is missing, and the user OpenMeetings runs as."""

    kind = "data-dir"
    opts_missing: bool
    exists: bool
    owner_ok: bool
    numeric: str  # the folder's uid:gid now, "" when it does not exist (the chown's undo)
    user: str
    group: str


@dataclass(frozen=True)
class NfsState(StepData):
    """What an NFS step's check hands its apply: the package, the folder, the config file."""

    package: PackageState
    folder: bool
    edit: bool


@dataclass(frozen=True)
class NfsServerState(NfsState):
    """nfs-server's check; reexport: the kernel's table lacks a client (exportfs -ra)."""

    kind = "nfs-server"
    reexport: bool


@dataclass(frozen=True)
class NfsClientState(NfsState):
    """nfs-client's check; mounted: the share is mounted now."""

    kind = "nfs-client"
    mounted: bool


# -- storage steps' commands and remedies ------------------------------------------------------


def client_addresses(plan: Plan, server: Node) -> list[str]:
    """Every OM node but the server: the documentation's "all nodes except node with folders"."""
    return [n.address for n in plan.om_nodes if n.name != server.name]


def exports_text(text: str | None, path: str, clients: list[str], options: str) -> str:
    """/etc/exports with one line per client (raises ExportsConflict)."""
    out = text or ""
    for client in clients:
        out = exports_ensure(out, path, client, options)
    return out


def client_line(plan: Plan) -> str:
    """The documentation's fstab line for this plan."""
    server = plan.storage_node
    assert server is not None
    st = plan.storage
    return fstab_line(f"{server.address}:{st.path}", st.path, "nfs", st.mount_options)


def exportfs_remedy(output: str) -> str:
    """What to do when exportfs -ra failed, from what it said."""
    text = output.lower()
    if "exportfs" in text and ("not found" in text or "no such file" in text):
        return "install nfs-kernel-server (nfs-utils) on the storage node, then run apply again"
    if "does not support nfs export" in text:
        return "the export path's file system cannot be exported over NFS; choose another path"
    return (
        "read exportfs's message above, fix the cause on the storage node (`exportfs -ra` "
        "there shows it again), then run apply again"
    )


def mount_remedy(output: str, server: str) -> str:
    """What to do when `mount PATH` failed, from mount.nfs's message."""
    text = output.lower()
    if "no such device" in text or "unknown filesystem type" in text:
        return (
            "this node's kernel has no NFS client (mount.nfs: No such device): load it "
            "(`modprobe nfs`) or use a kernel with NFS support, or mount the shared folder "
            "another way and set storage.kind: existing; then run apply again"
        )
    if "access denied" in text:
        return (
            f"the server {server} refuses this node: run apply for storage.nfs-server (the "
            "export must list this node's address) and check `exportfs -v` there"
        )
    if "timed out" in text or "connection refused" in text or "no route" in text:
        return (
            f"the NFS server {server} does not answer: start it (nfs-kernel-server / "
            "nfs-server) and open TCP 2049 between the nodes; then run apply again"
        )
    if "no such file" in text:
        return f"the exported folder does not exist on {server}: run apply for storage.nfs-server"
    return "read mount's message above, fix the cause, then run apply again"


# -- the shared-files proof, one command per node (issue 21) -----------------------------------
# The writer writes the token under several names at once; each reader looks for one name at
# a time, a new name at each of SHARED_LOOKS (seconds after it started), until it finds one.
# A new name each time: an NFS client that looked a name up before it existed may keep
# answering "no such file" for it from its cache (negative dentries, up to acdirmin), never
# for a name it has not looked up yet. The writer keeps the files SHARED_HOLD seconds (the
# last look plus a margin for the nodes starting apart), then removes them.

SHARED_LOOKS = (0.1, 0.3, 0.6, 1.0, 1.5)
SHARED_HOLD = SHARED_LOOKS[-1] + 0.5


def shared_names(probe: str) -> list[str]:
    """The probe file's names, one per look."""
    return [f"{probe}.{i}" for i in range(len(SHARED_LOOKS))]


def shared_write_command(user: str, token: str, probe: str) -> str:
    """Write the token under every name of the probe as the OM user (proves it may write
    there), readable by the others (umask 022)."""
    q = shlex.quote
    body = "umask 022 && " + " && ".join(
        f"printf %s {q(token)} > {q(name)}" for name in shared_names(probe)
    )
    return body if user == "root" else f"runuser -u {q(user)} -- sh -c {q(body)}"


def shared_hold_command(probe: str) -> str:
    """Keep the probe files while the readers look (only when they were written), then
    remove them all."""
    q = shlex.quote
    names = shared_names(probe)
    return (f"[ -e {q(names[0])} ] && sleep {SHARED_HOLD}; "
            f"rm -f -- {' '.join(q(n) for n in names)}")


def shared_read_command(probe: str) -> str:
    """Look for the probe under each name in turn, at the SHARED_LOOKS times; print the
    first one found (`cat`); when none came, `cat` of the last name says why."""
    q = shlex.quote
    names = shared_names(probe)
    steps = []
    before = 0.0
    for at, name in zip(SHARED_LOOKS, names, strict=True):
        steps.append(f"sleep {round(at - before, 3)}; [ -e {q(name)} ] && exec cat -- {q(name)}")
        before = at
    return "; ".join(steps) + f"; exec cat -- {q(names[-1])}"


# -- declared facts (gathered by the engine before a check; see facts.base.Fact) ------------------

NFS_SERVER_PACKAGE: Fact[PackageState] = Fact(
    "nfs_server_package", lambda _plan, _node: package_probe("server"), parse_package_probe
)
NFS_CLIENT_PACKAGE: Fact[PackageState] = Fact(
    "nfs_client_package", lambda _plan, _node: package_probe("client"), parse_package_probe
)
# the owner of storage.path (MISSING when it is not a folder)
DATA_FOLDER: Fact[FolderState] = Fact(
    "data_folder", lambda plan, _node: owner_probe(plan.storage.path), parse_owner
)
# what the NFS server exports now (`exportfs -v`; nothing when it is not installed)
LIVE_EXPORTS: Fact[dict[tuple[str, str], frozenset[str]]] = Fact(
    "live_exports", lambda _plan, _node: "exportfs -v", parse_exportfs
)
# what is mounted at storage.path now (findmnt exits 1 and prints nothing when nothing is)
DATA_MOUNT: Fact[Mount | None] = Fact(
    "data_mount", lambda plan, _node: shlex.join(findmnt_argv(plan.storage.path)), parse_findmnt
)


EXPORTS_FILE = Files("exports", lambda _plan, _node: ["/etc/exports"])  # nfs-server reads it
FSTAB_FILE = Files("fstab", lambda _plan, _node: ["/etc/fstab"])  # nfs-client reads it


# -- the OpenMeetings user, resolved by the node's shell (issue 21) ----------------------------
# The same rules as unit_user + om_owner + the primary group, in the node's own shell, so that
# the command depends on the plan alone: a declared fact (gathered with everything else) and
# the shared-files proof's write (sent at once, not after the gather) both resolve the user
# in their own command. Sets $u (user), $g (group) and $s (where it came from: OWNER_SOURCES).

# awk: the last `KEY=` of [Service] in the files it reads, a line `[omw-next-file]` between
# files (a drop-in starts outside any section, as unit_user parses each text on its own)
_UNIT_KEY_AWK = (
    '/^[ \\t]*\\[[^]]+\\][ \\t]*$/ { h = $0; gsub(/^[ \\t]*\\[[ \\t]*|[ \\t]*\\][ \\t]*$/, "", h); '
    'sv = (h == "Service"); next } '
    'sv && $0 ~ ("^[ \\t]*" k "[ \\t]*=") { v = $0; sub(/^[^=]*=[ \\t]*/, "", v); '
    'sub(/[ \\t]*$/, "", v); gsub(/^["\\047]+|["\\047]+$/, "", v); r = v } '
    'END { print r }'
)

OWNER_SOURCES = {
    "unit": "the unit's User=/Group=",
    "unit-root": "the unit (no User=: systemd runs it as root)",
    "home": "the owner of om_home (Tomcat install)",
    "default": "default of OpenMeetings' unit (nobody:nogroup)",
}


def om_user_shell(om_home: str, units: tuple[str, ...] = UNIT_FILES,
                  dropin_dir: str = DROPIN_DIR) -> str:
    """Shell that sets $u, $g and $s to the user and group OpenMeetings runs as on this node
    (the first unit file found, its drop-ins after it; no unit: the owner of om_home; else
    nobody:nogroup; a User= without Group=: the user's primary group, else the user's name)."""
    q = shlex.quote
    files = " ".join(q(f) for f in units)
    key = (f'_omw_key() {{ for x in "$f" {q(dropin_dir)}/*.conf; do [ -f "$x" ] || continue; '
           "cat -- \"$x\"; printf '\\n[omw-next-file]\\n'; done | "
           f'awk -v k="$1" {shlex.quote(_UNIT_KEY_AWK)}; }}; ')
    return (
        f"u=; g=; s=default; f=; for x in {files}; do [ -f \"$x\" ] && {{ f=$x; break; }}; done; "
        + key
        + 'if [ -n "$f" ]; then u=$(_omw_key User); g=$(_omw_key Group); '
        'if [ -n "$u" ]; then s=unit; [ -n "$g" ] || g=$(id -gn -- "$u" 2>/dev/null) || g=; '
        '[ -n "$g" ] || g=$u; else u=root; g=${g:-root}; s=unit-root; fi; '
        f"else o=$(stat -c '%U:%G' -- {q(om_home)} 2>/dev/null); "
        'case "$o" in ?*:?*) u=${o%%:*}; g=${o#*:}; s=home;; *) u=nobody; g=nogroup;; esac; fi'
    )


@dataclass(frozen=True)
class OmUser:
    """Who OpenMeetings runs as on a node, and that user's and group's numbers there."""

    user: str
    group: str
    source: str  # a sentence: where the user came from (OWNER_SOURCES)
    uid: int | None
    gid: int | None


def om_user_command(om_home: str, units: tuple[str, ...] = UNIT_FILES,
                    dropin_dir: str = DROPIN_DIR) -> str:
    """om_user_shell, then `user=`, `group=`, `source=`, `uid=`, `gid=` lines."""
    return (om_user_shell(om_home, units, dropin_dir) + "; "
            "printf 'user=%s\\ngroup=%s\\nsource=%s\\n' \"$u\" \"$g\" \"$s\"; "
            'echo "uid=$(id -u -- "$u" 2>/dev/null)"; '
            'echo "gid=$(getent group "$g" 2>/dev/null | cut -d: -f3)"')


def parse_om_user(output: str) -> OmUser:
    """om_user_command's lines; what a cut-short output lacks is OM's default user."""
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("user", "group", "source", "uid", "gid"):
            values[key] = value.strip()
    user = values.get("user") or "nobody"
    group = values.get("group") or ("nogroup" if user == "nobody" else user)
    uid, gid = parse_ids(f"uid={values.get('uid', '')}\ngid={values.get('gid', '')}")
    source = OWNER_SOURCES.get(values.get("source", ""), OWNER_SOURCES["default"])
    return OmUser(user, group, source, uid, gid)


def shared_write_resolving(om_home: str, token: str, probe: str,
                           units: tuple[str, ...] = UNIT_FILES,
                           dropin_dir: str = DROPIN_DIR) -> str:
    """shared_write_command as the OM user the node's shell resolves (om_user_shell): the
    proof's command needs nothing read before it."""
    body = shared_write_command("root", token, probe)
    return (f"{om_user_shell(om_home, units, dropin_dir)}; "
            f'if [ "$u" = root ]; then {body}; '
            f'else runuser -u "$u" -- sh -c {shlex.quote(body)}; fi')


def default_data_dir(plan: Plan) -> str:
    """Where OpenMeetings keeps its data without -DDATA_DIR."""
    return f"{OmLayout(plan.cluster.om_home).webapp}/data"


# who OpenMeetings runs as, with the numbers (data-dir's owner, shared's uid/gid)
OM_USER: Fact[OmUser] = Fact(
    "om_user", lambda plan, _node: om_user_command(plan.cluster.om_home), parse_om_user
)
# files in the default data dir that storage.path lacks (data-dir's warning; empty when the
# two are one folder)
DEFAULT_LEFTOVERS: Fact[str] = Fact(
    "default_leftovers",
    lambda plan, _node: leftovers_probe(default_data_dir(plan), plan.storage.path), str,
)
