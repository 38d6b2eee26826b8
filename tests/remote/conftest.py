"""A real OpenSSH sshd on loopback, started per test module, for the SSH layer's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sshd:
    port: int
    dir: Path
    client_key: Path
    host_pub: Path
    known_hosts: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "ab"),  # noqa: SIM115
        )
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
        _keygen(self.dir / "host_key")
        self.start()

    def pinned_line(self) -> str:
        kind, key = self.host_pub.read_text().split(" ")[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def sshd_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run sshd"
    if not Path(SSHD).exists():
        return "needs openssh-server (/usr/sbin/sshd)"
    return None


def started_sshd(tmp_path_factory: pytest.TempPathFactory, name: str,
                 extra_config: str = "") -> Sshd:
    """A real sshd on a free loopback port with its own host and client keys; extra_config
    lines go at the end of its sshd_config (a test's own variant of the node)."""
    reason = sshd_available()
    if reason:
        if os.environ.get("OMW_LAB") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    d = tmp_path_factory.mktemp(name)
    os.chmod(d, 0o755)
    Path("/run/sshd").mkdir(exist_ok=True)
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
{extra_config.format(dir=d)}"""
    )
    server = Sshd(port, d, d / "client_key", d / "host_key.pub", d / "known_hosts")
    server.start()
    return server


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = started_sshd(tmp_path_factory, "sshd",
                          "MaxStartups 100\nSubsystem sftp internal-sftp\n")
    try:
        yield server
    finally:
        server.stop()
