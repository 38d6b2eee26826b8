"""A real OpenSSH sshd on 127.0.0.1, outside the namespaced lab: one process, its own host and
client keys in one directory. The SSH layer's tests (tests/remote) and the login benchmark
(benchmarks/handshake_rtt.py) log in to it; it needs root and /usr/sbin/sshd, not the lab.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SSHD = "/usr/sbin/sshd"

CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
"""


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A passphrase-less key pair of that kind at path and path.pub; path."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sshd_available() -> str | None:
    """Why no loopback sshd can run here, or None."""
    if os.geteuid() != 0:
        return "needs root to run sshd"
    if not Path(SSHD).exists():
        return "needs openssh-server (/usr/sbin/sshd)"
    return None


@dataclass
class LoopbackSshd:
    """The running sshd: root logs in with client_key; its log is dir/sshd.log. A context
    manager: leaving the `with` stops it."""

    port: int
    dir: Path
    client_key: Path
    host_pub: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.dir / "sshd.log", "ab") as log:  # sshd keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start: " + (self.dir / "sshd.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> LoopbackSshd:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def drop_connections(self) -> None:
        """Kill the per-connection sshd children (ours: the listener we started is their parent)."""
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def new_host_key(self) -> None:
        """Simulate a reinstalled node: a different host key on the same address."""
        self.stop()
        for suffix in ("", ".pub"):
            (self.dir / f"host_key{suffix}").unlink()
        keygen(self.dir / "host_key")
        self.start()

    def pinned_line(self, port: int | None = None) -> str:
        """The known_hosts line for this host key at 127.0.0.1:port (default: the sshd's own;
        a relay in front of it has another)."""
        kind, key = self.host_pub.read_text().split(" ")[:2]
        return f"[127.0.0.1]:{self.port if port is None else port} {kind} {key}\n"


def start_sshd(directory: Path, extra_config: str = "") -> LoopbackSshd:
    """A started sshd on a free loopback port, its keys and config in directory (which must
    exist); extra_config lines go at the end of its sshd_config, {dir} standing for directory
    (a caller's own variant of the node)."""
    Path("/run/sshd").mkdir(exist_ok=True)
    keygen(directory / "host_key")
    keygen(directory / "client_key")
    shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
    port = free_port()
    (directory / "sshd_config").write_text(
        CONFIG.format(port=port, dir=directory) + extra_config.format(dir=directory))
    server = LoopbackSshd(port, directory, directory / "client_key", directory / "host_key.pub",
                          directory / "known_hosts")
    server.start()
    return server
