"""One lab node: a long-lived holder process owning a network, mount and UTS namespace.

The holder runs `unshare --mount --uts --propagation private` inside the node's network
namespace, gives the node its own /etc (an overlay, so renames over /etc files work as on a
real host), /opt, /home, /tmp and /run, and then sleeps. Everything else (sshd, services,
test commands) joins the holder's namespaces with nsenter, which is exactly what an SSH
session on the node sees.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import netns

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_ENV = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root",
            "LOGNAME": "root", "SHELL": "/bin/sh"}
# the holder mounts a node's own folder over each of these (see _holder_script): a host path
# under one of them is not what a process in the node sees there
NODE_PRIVATE = ("/home", "/tmp", "/opt", "/run")
SSHD_WAIT = 10.0  # seconds until a starting sshd must accept connections


def _proc_children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _ns_id(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def processes_in_mount_ns(pid: int) -> list[int]:
    """Every process that shares the mount namespace of `pid` (including pid itself)."""
    target = _ns_id(pid, "mnt")
    if target is None or target == _ns_id(os.getpid(), "mnt"):
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _ns_id(int(entry), "mnt") == target:
            found.append(int(entry))
    return found


def kill_and_wait(pids: list[int], timeout: float = 5.0) -> None:
    """SIGKILL these pids and wait until each is gone or a zombie (someone else reaps it)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.01)


class LabNode:
    """A lab host: run commands in it, start processes in it, break it on purpose."""

    interface = "eth0"

    def __init__(self, name: str, address: str, root: Path, lab_dir: Path,
                 shared_data: Path | None) -> None:
        self.name = name
        self.address = address
        self.root = root  # host folder: opt/, home/, tmp/, etc-upper/, pristine/, sshd files
        self.lab_dir = lab_dir
        self.shared_data = shared_data  # bind-mounted at /opt/omdata (OM nodes only)
        self.netns = netns.netns_name(name)
        self.veth = netns.veth_name(name)
        self.pid: int = 0  # the namespace holder
        self._holder: subprocess.Popen | None = None
        self._sshd: subprocess.Popen | None = None
        self._tracked: set[int] = set()
        self._kept: set[int] = set()
        self._popens: list[subprocess.Popen] = []
        self.fault_mounts: list[str] = []  # mount points faults.py added (undone by reset)

    def __repr__(self) -> str:
        return f"LabNode({self.name!r}, {self.address!r}, pid={self.pid})"

    # -- folders ---------------------------------------------------------------------------
    @property
    def opt(self) -> Path:
        return self.root / "opt"

    @property
    def etc_upper(self) -> Path:
        return self.root / "etc-upper"

    @property
    def etc_work(self) -> Path:
        return self.root / "etc-work"

    @property
    def pristine(self) -> Path:
        return self.root / "pristine"

    def _pidfile_dir(self) -> Path:
        return self.lab_dir / "pids"

    def _record_pid(self, pid: int) -> None:
        """Pid files let cleanup_leftovers() kill what a crashed run left behind."""
        self._pidfile_dir().mkdir(exist_ok=True)
        (self._pidfile_dir() / f"{self.name}-{pid}.pid").write_text(f"{pid}\n")

    # -- running things inside ---------------------------------------------------------------
    def _enter(self, cmd: list[str] | str) -> list[str]:
        if not self.pid:
            raise RuntimeError(f"lab node {self.name} is not running")
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-u", "--", *argv]

    def run(self, cmd: list[str] | str, *, check: bool = False, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command as root inside the node (a str runs under sh -c)."""
        proc = subprocess.run(self._enter(cmd), capture_output=True, text=True, input=input,
                              timeout=timeout, env=NODE_ENV, cwd="/")
        if check and proc.returncode != 0:
            raise netns.LabCommandError(
                f"[{self.name}] {cmd if isinstance(cmd, str) else shlex.join(cmd)} exited "
                f"{proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def write_file(self, path: str, text: str) -> None:
        """Write text to path inside the node (atomically, parents made). The text travels
        on stdin: a host path under /tmp or /home is not what the node sees there."""
        q = shlex.quote
        self.run(f"mkdir -p {q(os.path.dirname(path))} && cat > {q(path)}.omwlab.tmp && "
                 f"mv -f {q(path)}.omwlab.tmp {q(path)}", input=text, check=True)

    def spawn(self, argv: list[str] | str, **popen_kw) -> subprocess.Popen:
        """Start a process inside the node; it is killed by reset() unless keep() is called."""
        popen_kw.setdefault("env", NODE_ENV)
        popen_kw.setdefault("cwd", "/")
        popen_kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(self._enter(argv), **popen_kw)
        self._popens.append(proc)
        self.track(proc.pid)
        return proc

    def track(self, pid: int) -> None:
        """Register a pid (started in this node) for reset() and teardown to kill."""
        self._tracked.add(pid)
        self._record_pid(pid)

    def keep(self, pid: int) -> None:
        """Let this pid and its descendants survive reset() (e.g. a database server)."""
        self.track(pid)
        self._kept.add(pid)

    def unkeep(self, pid: int) -> None:
        self._kept.discard(pid)

    # -- holder ----------------------------------------------------------------------------------
    def _holder_script(self) -> str:
        q = shlex.quote
        lines = [
            "set -e",
            f"hostname {q(self.name)}",
            f"mount -t overlay omwlab-etc -o lowerdir=/etc,upperdir={q(str(self.etc_upper))},"
            f"workdir={q(str(self.etc_work))} /etc",
            f"mount --bind {q(str(self.opt))} /opt",
            f"mount --bind {q(str(self.root / 'home'))} /home",
            f"mount --bind {q(str(self.root / 'tmp'))} /tmp",
            "mount -t tmpfs -o mode=0755 omwlab-run /run",
            "mkdir -p -m 0755 /run/sshd /run/lock",
        ]
        if self.shared_data is not None:
            lines.append(f"mount --bind {q(str(self.shared_data))} /opt/omdata")
        lines += ["echo ready", "exec sleep infinity </dev/null >/dev/null 2>&1"]
        return "\n".join(lines)

    def start_holder(self) -> None:
        """Create the node's mount/UTS namespaces inside its netns; returns when set up."""
        for sub in ("home", "tmp"):
            (self.root / sub).mkdir(exist_ok=True)
        os.chmod(self.root / "tmp", 0o1777)
        self.etc_work.mkdir(exist_ok=True)
        (self.opt / "omdata").mkdir(parents=True, exist_ok=True)
        argv = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--uts",
                "--propagation", "private", "--", "sh", "-c", self._holder_script()]
        errlog = open(self.root / "holder.log", "w")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errlog, text=True,
                                start_new_session=True, env=NODE_ENV)
        errlog.close()
        self._holder = proc
        self._record_pid(proc.pid)
        line = proc.stdout.readline() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
        if line.strip() != "ready":
            proc.kill()
            proc.wait()
            log = (self.root / "holder.log").read_text()
            raise netns.LabCommandError(f"[{self.name}] node set-up failed: {log.strip()}")
        self.pid = proc.pid

    def mount_etc(self) -> None:
        """(Re)mount the /etc overlay after reset restored its upper dir."""
        q = shlex.quote
        self.run(f"mount -t overlay omwlab-etc -o lowerdir=/etc,upperdir={q(str(self.etc_upper))},"
                 f"workdir={q(str(self.etc_work))} /etc", check=True)

    # -- sshd ------------------------------------------------------------------------------------
    @property
    def sshd_pid(self) -> int | None:
        if self._sshd is not None and self._sshd.poll() is None:
            return self._sshd.pid
        return None

    def start_sshd(self, wait: bool = True) -> None:
        """Start the node's OpenSSH server (no-op when running); wait until it accepts."""
        if self.sshd_pid is not None:
            return
        log = open(self.root / "sshd.log", "a")  # noqa: SIM115 - kept by the child
        self._sshd = subprocess.Popen(
            self._enter(["/usr/sbin/sshd", "-D", "-e", "-f", str(self.root / "sshd_config")]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=NODE_ENV, cwd="/",
            start_new_session=True)
        log.close()
        self._record_pid(self._sshd.pid)
        if wait:
            self.wait_ssh()

    def wait_ssh(self, timeout: float = SSHD_WAIT) -> None:
        """Poll the node's port 22 until sshd answers with its banner."""
        deadline = time.monotonic() + timeout
        while True:
            if self._sshd is not None and self._sshd.poll() is not None:
                log = (self.root / "sshd.log").read_text()[-2000:]
                raise netns.LabCommandError(f"[{self.name}] sshd exited: {log}")
            try:
                with socket.create_connection((self.address, 22), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise netns.LabCommandError(f"[{self.name}] sshd not listening after {timeout}s")
            time.sleep(0.02)

    def stop_sshd(self) -> None:
        """Stop the listening sshd (open sessions stay, as with `systemctl stop ssh`)."""
        if self._sshd is not None:
            if self._sshd.poll() is None:
                self._sshd.kill()
            self._sshd.wait()
            self._sshd = None

    # -- state -------------------------------------------------------------------------------------
    def kill_processes(self, *, everything: bool = False) -> None:
        """Kill processes in the node: all but holder, sshd and kept ones (or everything)."""
        for proc in self._popens:
            proc.poll()
        spare: set[int] = set()
        if not everything:
            children = _proc_children()
            spare = {self.pid}
            if self.sshd_pid:
                spare.add(self.sshd_pid)
            stack = list(self._kept)
            while stack:
                pid = stack.pop()
                if pid not in spare:
                    spare.add(pid)
                    stack.extend(children.get(pid, []))
        victims = set(processes_in_mount_ns(self.pid)) if self.pid else set()
        victims |= {p for p in self._tracked if Path(f"/proc/{p}").exists()
                    and _ns_id(p, "mnt") == _ns_id(self.pid, "mnt")}
        if everything:
            for popen in (self._sshd, self._holder):
                if popen is not None:
                    victims.add(popen.pid)
        victims -= spare
        kill_and_wait(sorted(victims))
        for proc in self._popens:
            proc.poll()
        self._popens = [p for p in self._popens if p.returncode is None]
        if everything:
            for popen in (self._sshd, self._holder):
                if popen is not None:
                    try:
                        popen.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
            self._sshd = self._holder = None
            self.pid = 0
            self._tracked.clear()
            self._kept.clear()
        else:
            self._tracked &= spare | self._kept

    def snapshot(self) -> None:
        """Make the node's current /etc changes, /opt and /home its pristine state for reset()."""
        self.pristine.mkdir(exist_ok=True)
        for src, name in ((self.etc_upper, "etc-upper"), (self.opt, "opt"),
                          (self.root / "home", "home")):
            netns.sh(["rsync", "-a", "--delete", f"{src}/", f"{self.pristine / name}/"])

    def restore(self) -> None:
        """Back to the pristine files: undo fault mounts, /etc overlay, /opt, /home, /tmp."""
        for mount_point in reversed(self.fault_mounts):
            self.run(["umount", "-l", mount_point])
        self.fault_mounts.clear()
        self.run(["umount", "-l", "/etc"], check=True)
        netns.sh(["rm", "-rf", str(self.etc_upper), str(self.etc_work)])
        netns.sh(["cp", "-a", str(self.pristine / "etc-upper"), str(self.etc_upper)])
        self.etc_work.mkdir()
        self.mount_etc()
        for name, dest in (("opt", self.opt), ("home", self.root / "home")):
            netns.sh(["rsync", "-a", "--delete", f"{self.pristine / name}/", f"{dest}/"])
        self.run("find /tmp -mindepth 1 -delete")

    def reset_network(self) -> None:
        """Only the connected route, link up, no firewall rules, hostname as built."""
        netns.set_host_link(self.name, True)
        q = shlex.quote
        self.run(
            f"hostname {q(self.name)}; ip link set lo up; ip link set eth0 up; "
            "ip route flush table main; ip addr flush dev eth0; "
            f"ip addr add {q(self.address)}/{netns.PREFIXLEN} dev eth0; "
            "nft flush ruleset 2>/dev/null; "
            "for t in filter nat mangle raw; do iptables -t $t -F 2>/dev/null; "
            "iptables -t $t -X 2>/dev/null; done; true",
            check=True)

    # -- helpers for tests -------------------------------------------------------------------
    def set_timezone(self, zone: str) -> None:
        """The node's zone as Debian keeps it: /etc/timezone and the /etc/localtime link."""
        if not (Path("/usr/share/zoneinfo") / zone).is_file() or ".." in zone:
            raise ValueError(f"unknown time zone {zone!r}")
        q = shlex.quote
        self.run(f"ln -sfn {q('/usr/share/zoneinfo/' + zone)} /etc/localtime && "
                 f"echo {q(zone)} > /etc/timezone", check=True)

    def add_user(self, name: str, password: str | None = None, nopasswd: bool = False) -> None:
        """A login user with sudo rights (NOPASSWD, or with `password`), key as root's."""
        q = shlex.quote
        self.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        if password is not None:
            self.run(["chpasswd"], input=f"{name}:{password}\n", check=True)
        else:
            # "*" is no password but not "locked": sshd (UsePAM no) refuses locked accounts.
            self.run(["usermod", "-p", "*", name], check=True)
        rule = "NOPASSWD: ALL" if nopasswd else "ALL"
        self.run(f"printf '%s\\n' {q(f'{name} ALL=(ALL:ALL) {rule}')} > "
                 f"/etc/sudoers.d/omwlab-{name} && chmod 0440 /etc/sudoers.d/omwlab-{name}",
                 check=True)
        keys = self.lab_dir / "authorized_keys"
        pub = (keys / "root").read_text()
        target = keys / name
        target.write_text(pub)
        target.chmod(0o644)
