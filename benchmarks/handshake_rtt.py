#!/usr/bin/env python3
"""The SSH login's round trips, fast (remote.handshake) and plain (OMW_FAST_AUTH=0), without
the lab: a real sshd of our own on loopback behind benchmarks/relay.py.

Each figure is (time at the relay's RTT - time at 0 ms) / RTT for a connect up to a logged-in
connection (TCP included), medians of --reps; then the same for connect + one command (the
channel's open and the exec on top). Needs root (sshd) and /usr/sbin/sshd.

    sudo .venv/bin/python benchmarks/handshake_rtt.py --rtt-ms 100 --reps 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from omwizard.remote import handshake  # noqa: E402

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sshd(work: Path) -> Iterator[int]:
    """A loopback sshd accepting work/client_key for root; yields its port."""
    Path("/run/sshd").mkdir(exist_ok=True)
    _keygen(work / "host_key")
    _keygen(work / "client_key")
    shutil.copy(work / "client_key.pub", work / "authorized_keys")
    port = _free_port()
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work}/host_key\nPidFile {work}/sshd.pid\n"
        f"AuthorizedKeysFile {work}/authorized_keys\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nMaxStartups 100\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(work / "sshd_config")],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def relay(port: int, delay_ms: float) -> Iterator[int]:
    """benchmarks/relay.py in front of the sshd (its own process); yields its port."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "relay.py"), "--delay-ms", str(delay_ms),
         f"n=127.0.0.1:{port}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield int(json.loads(line.removeprefix("READY "))["n"])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


async def _login(port: int, work: Path, command: bool) -> float:
    known = work / "known_hosts"
    start = time.perf_counter()
    conn = await handshake.connect(
        "127.0.0.1", port=port, username="root", known_hosts=str(known), config=None,
        client_keys=[str(work / "client_key")])
    if command:
        await conn.run("true", check=True)
    took = time.perf_counter() - start
    conn.close()
    await conn.wait_closed()
    return took


def measure(sshd_port: int, work: Path, rtt_ms: float, reps: int, command: bool) -> float:
    """Round trips of one login (and one command when asked) through the relay."""
    times: dict[float, float] = {}
    for delay in (0.0, rtt_ms / 2):
        with relay(sshd_port, delay) as port:
            (work / "known_hosts").write_text(
                f"[127.0.0.1]:{port} " + " ".join(
                    (work / "host_key.pub").read_text().split()[:2]) + "\n")
            times[delay] = statistics.median(
                asyncio.run(_login(port, work, command)) for _ in range(reps))
    return (times[rtt_ms / 2] - times[0.0]) / (rtt_ms / 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=100)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="omw-hs-") as tmp, sshd(Path(tmp)) as port:
        for label, switch in (("plain (OMW_FAST_AUTH=0)", "0"), ("fast", "1")):
            os.environ["OMW_FAST_AUTH"] = switch
            login = measure(port, Path(tmp), args.rtt_ms, args.reps, command=False)
            first = measure(port, Path(tmp), args.rtt_ms, args.reps, command=True)
            print(f"{label}: login {login:.1f} round trips (TCP included); "
                  f"login + one command {first:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
