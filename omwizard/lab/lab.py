"""The lab: real OpenSSH hosts in namespaces on this machine, built once, reset cheaply.

One lab at a time per machine (a flock on LOCK_FILE); everything it makes is named with the
prefix "omwlab-" so that `cleanup_leftovers()` can remove what a crashed run left behind.
"""

from __future__ import annotations

import copy
import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from . import netns
from .node import LabNode, kill_and_wait, processes_in_mount_ns
from .omfiles import OmFiles, fixture_files

LOCK_FILE = Path("/run/omwlab.lock")
BASE_DIR = Path("/var/tmp/omwlab")
WORKDIR_RECORD = Path("/run/omwlab.workdir")  # a non-default workdir, for cleanup_leftovers
DB_ADDRESS = "198.18.0.10"
DEFAULT_VERSION = "9.1.0"
DEFAULT_ZONE = "UTC"
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "mount", "rsync", "ssh", "ssh-keygen",
                  "useradd", "/usr/sbin/sshd")


OWNED = "owned"  # in the workdir: paths outside it that belong to this lab (one a line)


class LabBusy(RuntimeError):
    """Another process holds the lab lock (only one lab can exist per machine).

    holder_pid: the pid the lock file names (the process that built the lab), or None;
    holder_alive: whether that process still runs; holders: (pid, command line) of that
    live holder, or, when it is gone, of each process that still has the lock file open
    (one inherited the lock; others may be waiting for it).
    """

    def __init__(self, message: str, holder_pid: int | None = None, holder_alive: bool = False,
                 holders: tuple[tuple[int, str], ...] = (), kept: bool = False) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid
        self.holder_alive = holder_alive
        self.holders = holders
        self.kept = kept  # a lab left up on purpose (Lab.keep_alive): its builder has exited


def command_line(pid: int) -> str | None:
    """The command line of a process (None when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = raw.rstrip(b"\0").decode(errors="replace").split("\0")
    text = " ".join(w for w in words if w)
    return text if len(text) <= 160 else text[:157] + "..."


def _processes_with_open(path: Path) -> list[int]:
    """Every process (but this one) that has `path` open."""
    target = str(path)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return found


def _busy(fd: int) -> LabBusy:
    """Who holds the lab slot: the pid in the lock file, whether it lives, its command."""
    words = os.pread(fd, 64, 0).decode(errors="replace").split()
    pid = int(words[0]) if words and words[0].isdigit() else None
    kept = "kept" in words[1:]
    alive = pid is not None and command_line(pid) is not None
    pids = [pid] if alive and pid is not None else _processes_with_open(LOCK_FILE)
    holders = tuple((p, cmd) for p in pids if (cmd := command_line(p)) is not None)
    if alive and kept:
        who = f"a lab kept up on purpose, pid {pid}"
    elif alive:
        who = f"pid {pid} ({holders[0][1]})" if holders else f"pid {pid}"
    else:
        who = f"pid {pid if pid is not None else '?'}, which has exited"
    return LabBusy(f"another lab is running (held by {who}); only one lab can exist per machine",
                   holder_pid=pid, holder_alive=alive, holders=holders, kept=kept and alive)


def missing_requirements() -> str | None:
    """Why the lab cannot be built here (not root, a tool missing), or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network and mount namespaces)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return "the lab needs these tools: " + ", ".join(missing)
    return None


SETENV_SH = """#!/bin/sh
# Tomcat's bin/setenv.sh, read by catalina.sh at start (OpenMeetings 4.x has no systemd unit).
JAVA_OPTS="$JAVA_OPTS -Djava.awt.headless=true -Djava.security.egd=file:/dev/./urandom"
export JAVA_OPTS
"""

PLACEHOLDER_SH = """#!/bin/sh
# lab placeholder: omwizard.lab.services replaces this with the cluster-layer stand-in
echo "{name}: no OpenMeetings stand-in installed in this lab node" >&2
exit 1
"""


def build_om_tree(opt: Path, etc_upper: Path, files: OmFiles, om_home: str = "/opt/om") -> None:
    """Lay out /opt/om (and the systemd unit in /etc) as an OpenMeetings install does."""
    om = opt / Path(om_home).relative_to("/opt")
    classes = om / "webapps" / "openmeetings" / "WEB-INF" / "classes"
    meta = classes / "META-INF"
    lib = om / "webapps" / "openmeetings" / "WEB-INF" / "lib"
    for d in (meta, lib, om / "bin", om / "logs", om / "conf"):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files.hazelcast, classes / "hazelcast.xml")
    for template in files.templates:
        shutil.copyfile(template, meta / template.name)
    shutil.copyfile(files.installed, meta / "persistence.xml")
    for jar in (f"openmeetings-web-{files.version}.jar", f"openmeetings-db-{files.version}.jar"):
        (lib / jar).touch()
    for script in ("startup.sh", "shutdown.sh"):
        path = om / "bin" / script
        path.write_text(PLACEHOLDER_SH.format(name=script))
        path.chmod(0o755)
    if files.unit is not None:
        dest = etc_upper / "systemd" / "system" / "openmeetings.service"
        dest.parent.mkdir(parents=True, exist_ok=True)
        # the unit names /opt/openmeetings; point it at this install's home
        dest.write_text(files.unit.read_text().replace("/opt/openmeetings", om_home))
    else:
        (om / "bin" / "setenv.sh").write_text(SETENV_SH)
        (om / "bin" / "setenv.sh").chmod(0o755)


def _sshd_config(node: LabNode, keys_dir: Path) -> str:
    return "\n".join([
        "Port 22",
        f"ListenAddress {node.address}",
        f"HostKey {node.root / 'ssh_host_ed25519_key'}",
        f"PidFile {node.root / 'sshd.pid'}",
        f"AuthorizedKeysFile {keys_dir}/%u",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ])


def _keygen(path: Path, comment: str) -> str:
    netns.sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


class Lab:
    """The built lab: OM nodes n1..nN, the database node, keys and known_hosts."""

    def __init__(self, workdir: Path, lock_fd: int) -> None:
        self.workdir = workdir
        self._lock_fd: int | None = lock_fd
        self.nodes: dict[str, LabNode] = {}
        self.db: LabNode | None = None
        self.identity = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.shared_data = workdir / "omdata"  # /opt/omdata in every OM node
        self.versions: dict[str, str] = {}

    @property
    def all_nodes(self) -> list[LabNode]:
        return list(self.nodes.values()) + ([self.db] if self.db else [])

    def node(self, name: str) -> LabNode:
        if self.db is not None and name == self.db.name:
            return self.db
        return self.nodes[name]

    # -- plan ----------------------------------------------------------------------------------
    def plan_dict(self, **overrides) -> dict:
        """A CONTRACT.md plan for this lab; a dict override updates that section's keys.

        n1 gets the storage role only when storage.kind ends up nfs (the loader refuses the
        role with kind existing, the lab's default).
        """
        nodes: list[dict[str, Any]] = []
        for node in self.nodes.values():
            nodes.append({
                "name": node.name, "host": node.address, "address": node.address,
                "interface": "eth0", "server_url": f"http://{node.address}:5080/openmeetings",
                "roles": ["om"],
            })
        if self.db is not None:
            nodes.append({"name": self.db.name, "host": self.db.address,
                          "address": self.db.address, "interface": "eth0",
                          "roles": ["database"]})
        plan: dict[str, Any] = {
            "omwizard": 1,
            "cluster": {"name": "lab", "timezone": "Europe/Berlin", "om_home": "/opt/om"},
            "ssh": {"user": "root", "port": 22, "identity": str(self.identity),
                    "known_hosts": str(self.known_hosts), "host_keys": "strict",
                    "sudo": "auto", "connect_timeout": 5},
            "nodes": nodes,
            "database": {"type": "mariadb", "host": DB_ADDRESS, "port": 3306,
                         "name": "openmeetings", "user": "om",
                         "password": "${OMW_DB_PASSWORD}", "manage": self.db is not None},
            "network": {"join": "multicast", "multicast_group": "224.0.0.0",
                        "multicast_port": 54327, "multicast_ttl": 32, "multicast_timeout": 2,
                        "route": "224.0.0.0/4", "interfaces": ["198.18.0.*"]},
            "storage": {"kind": "existing", "path": "/opt/omdata"},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(plan.get(key), dict):
                plan[key] = {**plan[key], **copy.deepcopy(value)}
            else:
                plan[key] = copy.deepcopy(value)
        if plan["storage"].get("kind") == "nfs" and "nodes" not in overrides and nodes:
            nodes[0]["roles"].append("storage")
        return plan

    def keep_alive(self) -> int:
        """Leave the lab up after this process exits, still holding the machine's lab slot:
        a process in the db (or first) node inherits the lock, so no other lab or rehearsal
        destroys this one; cleanup_leftovers() ends it. Returns its pid."""
        if self._lock_fd is None:
            raise RuntimeError("the lab is torn down")
        node = self.db or next(iter(self.nodes.values()))
        proc = node.spawn(["sleep", "infinity"], pass_fds=(self._lock_fd,),
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        node.keep(proc.pid)
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{proc.pid} kept\n".encode(), 0)
        os.close(self._lock_fd)  # the keeper's copy holds the lock from now on
        self._lock_fd = None
        return proc.pid

    def own(self, path: str | os.PathLike) -> None:
        """Remove `path` (outside the workdir: a session folder, backups) with this lab: on
        teardown, and by cleanup_leftovers() or the next build_lab() after a crash."""
        path = Path(path)
        if not path.is_absolute() or len(path.parts) < 3:
            raise ValueError(f"the lab can only own an absolute path below a folder: {path}")
        with open(self.workdir / OWNED, "a") as f:
            f.write(f"{path}\n")

    def write_plan(self, path: str | os.PathLike, **overrides) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.plan_dict(**overrides), sort_keys=False))
        return path

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Pristine state between tests: processes, files, network, faults, sshd running."""
        for node in self.all_nodes:
            node.kill_processes()
            node.restore()
            node.reset_network()
        for key in (self.workdir / "authorized_keys").iterdir():
            if key.name != "root":
                key.unlink()
        for entry in self.shared_data.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        os.chown(self.shared_data, 0, 0)  # a storage apply may have given it to the OM user
        self.shared_data.chmod(0o755)
        for node in self.all_nodes:
            node.start_sshd(wait=False)
        for node in self.all_nodes:
            node.wait_ssh()

    def teardown(self) -> None:
        """Kill every lab process, delete namespaces, links, bridge and folders. Idempotent."""
        for node in self.all_nodes:
            node.kill_processes(everything=True)
        _cleanup(self.workdir)
        self.nodes.clear()
        self.db = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()


def _lock(wait: float = 0) -> int:
    """The machine's one lab slot; wait up to `wait` seconds for another lab to end."""
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            busy = _busy(fd)
            os.close(fd)
            raise busy from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _recorded_workdirs() -> list[Path]:
    dirs = [BASE_DIR]
    try:
        dirs.append(Path(WORKDIR_RECORD.read_text().strip()))
    except OSError:
        pass
    return dirs


def _cleanup(workdir: Path | None = None) -> None:
    """Remove every lab leftover; the caller holds the lock."""
    workdirs = _recorded_workdirs() + ([workdir] if workdir else [])
    inodes = netns.netns_inodes()
    victims: set[int] = set()
    for wd in workdirs:
        for pidfile in (wd / "pids").glob("*.pid") if (wd / "pids").is_dir() else []:
            try:
                victims.add(int(pidfile.read_text().strip()))
            except (OSError, ValueError):
                pass
    # a recorded pid counts only while it is still in a lab namespace (pids get reused)
    for pid in list(victims) + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                victims.add(pid)
                victims.update(processes_in_mount_ns(pid))
            else:
                victims.discard(pid)
        except OSError:
            victims.discard(pid)
    kill_and_wait(sorted(victims))
    netns.delete_all()
    for wd in workdirs:
        remove_owned(wd)
    for wd in workdirs:
        if wd.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(wd)], check=False)
    WORKDIR_RECORD.unlink(missing_ok=True)


def _release_kept() -> None:
    """End the process that holds the slot for a kept lab (Lab.keep_alive), if it still runs
    inside a lab namespace; cleanup then removes the lab."""
    try:
        words = LOCK_FILE.read_text().split()
    except OSError:
        return
    if len(words) < 2 or not words[0].isdigit() or words[1] != "kept":
        return
    pid = int(words[0])
    try:
        inside = os.stat(f"/proc/{pid}/ns/net").st_ino in netns.netns_inodes()
    except OSError:
        return
    if inside:
        kill_and_wait([pid])


def remove_owned(workdir: Path) -> None:
    """Remove the paths a lab in `workdir` was given with Lab.own()."""
    try:
        lines = (workdir / OWNED).read_text().splitlines()
    except OSError:
        return
    for line in lines:
        path = Path(line.strip())
        if not line.strip() or not path.is_absolute() or len(path.parts) < 3:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def cleanup_leftovers(wait: float = 0) -> None:
    """Remove anything with the lab prefix a crashed earlier run left behind (waiting up to
    `wait` seconds for a running lab to end; else LabBusy)."""
    _release_kept()
    fd = _lock(wait)
    try:
        _cleanup()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _om_versions(om_versions, names: list[str]) -> dict[str, str]:
    if om_versions is None:
        return dict.fromkeys(names, DEFAULT_VERSION)
    if isinstance(om_versions, str):
        return dict.fromkeys(names, om_versions)
    if isinstance(om_versions, dict):
        return {n: om_versions.get(n, DEFAULT_VERSION) for n in names}
    versions = list(om_versions)
    return {n: versions[i] if i < len(versions) else DEFAULT_VERSION
            for i, n in enumerate(names)}


def _node_passwd() -> str:
    """The host's /etc/passwd with root's home moved to the node-private /home/root."""
    lines = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == "root":
            fields[5] = "/home/root"
        lines.append(":".join(fields))
    return "\n".join(lines) + "\n"


def _hosts_file(nodes: list[LabNode]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{netns.HOST_ADDRESS}\tomwlab-host"]
    lines += [f"{n.address}\t{n.name}" for n in nodes]
    return "\n".join(lines) + "\n"


def build_lab(n_nodes: int = 3, om_versions=None, workdir: str | os.PathLike | None = None,
              with_db: bool = True, wait: float = 0, om_files: OmFiles | None = None) -> Lab:
    """Build the lab: n_nodes OM nodes (n1.. at 198.18.0.11..) and a db node (198.18.0.10).

    om_versions: None (9.1.0 everywhere), one version, a list per node or {name: version}.
    Every node runs sshd; each OM node has /opt/om from the fixtures of its version, or from
    om_files on every node (an operator's OpenMeetings, see omfiles.operator_files).
    wait: seconds to wait for another process's lab to be torn down (else LabBusy).
    """
    reason = missing_requirements()
    if reason:
        raise RuntimeError(reason)
    if not 1 <= n_nodes <= 9:
        raise ValueError("n_nodes must be 1..9")
    names = [f"n{i}" for i in range(1, n_nodes + 1)]
    if om_files is not None:
        files = dict.fromkeys(names, om_files)
    else:  # before anything is built: a missing release changes nothing
        versions = _om_versions(om_versions, names)
        by_version = {v: fixture_files(v) for v in sorted(set(versions.values()))}
        files = {n: by_version[v] for n, v in versions.items()}
    fd = _lock(wait)
    lab: Lab | None = None
    try:
        _cleanup(Path(workdir) if workdir else None)
        wd = Path(workdir) if workdir else BASE_DIR
        if wd != BASE_DIR:
            WORKDIR_RECORD.write_text(f"{wd}\n")
        wd.mkdir(parents=True, exist_ok=True)
        wd.chmod(0o755)  # sshd reads authorized_keys as the login user
        lab = Lab(wd, fd)
        lab.versions = {name: f.version for name, f in files.items()}
        _build(lab, files, with_db)
        return lab
    except BaseException:
        if lab is not None:
            lab.teardown()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        raise


def _build(lab: Lab, files: dict[str, OmFiles], with_db: bool) -> None:
    wd = lab.workdir
    (wd / "pids").mkdir()
    keys = wd / "authorized_keys"
    keys.mkdir(mode=0o755)
    lab.shared_data.mkdir(mode=0o755)
    client_pub = _keygen(lab.identity, "omwlab-client")
    (keys / "root").write_text(client_pub + "\n")
    (keys / "root").chmod(0o644)

    for i, name in enumerate(files):
        lab.nodes[name] = LabNode(name, f"198.18.0.{11 + i}", wd / "nodes" / name, wd,
                                  lab.shared_data)
    if with_db:
        lab.db = LabNode("db", DB_ADDRESS, wd / "nodes" / "db", wd, None)

    hosts = _hosts_file(lab.all_nodes)
    known = []
    for node in lab.all_nodes:
        node.root.mkdir(parents=True)
        node.root.chmod(0o755)
        upper = node.etc_upper
        upper.mkdir()
        (upper / "hostname").write_text(node.name + "\n")
        (upper / "hosts").write_text(hosts)
        (upper / "timezone").write_text(DEFAULT_ZONE + "\n")
        (upper / "localtime").symlink_to(f"/usr/share/zoneinfo/{DEFAULT_ZONE}")
        (upper / "fstab").write_text("# /etc/fstab: static file system information (lab node)\n")
        (upper / "network").mkdir()  # as a Debian server: ifupdown configures eth0
        (upper / "network" / "interfaces").write_text(
            f"auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n"
            f"\taddress {node.address}/24\n"
        )
        (node.opt / "omdata").mkdir(parents=True)  # the mount point must be in pristine/opt
        if node.name in files:
            build_om_tree(node.opt, upper, files[node.name])
        host_pub = _keygen(node.root / "ssh_host_ed25519_key", f"omwlab-{node.name}")
        known.append(f"{node.address} {' '.join(host_pub.split()[:2])}")
        (node.root / "sshd_config").write_text(_sshd_config(node, keys))
        (node.root / "home").mkdir()
        # root's home is the node's own (/home/root), so a login never runs the host's
        # ~/.bashrc (a host pyenv/rc file once hung every lab session on a stale lock)
        (node.root / "home" / "root").mkdir(mode=0o700)
        (upper / "passwd").write_text(_node_passwd())
        node.snapshot()

    lab.known_hosts.write_text("\n".join(known) + "\n")
    lab.known_hosts.chmod(0o644)

    netns.create_bridge()
    for node in lab.all_nodes:
        netns.create_node_net(node.name, node.address)
        node.start_holder()
        node.start_sshd(wait=False)
    for node in lab.all_nodes:
        node.wait_ssh()
