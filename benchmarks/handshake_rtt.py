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

from omwizard.lab.loopback_sshd import LoopbackSshd, start_sshd  # noqa: E402
from omwizard.remote import handshake  # noqa: E402


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


async def _login(port: int, server: LoopbackSshd, command: bool) -> float:
    start = time.perf_counter()
    conn = await handshake.connect(
        "127.0.0.1", port=port, username="root", known_hosts=str(server.known_hosts),
        config=None, client_keys=[str(server.client_key)])
    if command:
        await conn.run("true", check=True)
    took = time.perf_counter() - start
    conn.close()
    await conn.wait_closed()
    return took


def measure(server: LoopbackSshd, rtt_ms: float, reps: int, command: bool) -> float:
    """Round trips of one login (and one command when asked) through the relay."""
    times: dict[float, float] = {}
    for delay in (0.0, rtt_ms / 2):
        with relay(server.port, delay) as port:
            server.known_hosts.write_text(server.pinned_line(port))
            times[delay] = statistics.median(
                asyncio.run(_login(port, server, command)) for _ in range(reps))
    return (times[rtt_ms / 2] - times[0.0]) / (rtt_ms / 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=100)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with (tempfile.TemporaryDirectory(prefix="omw-hs-") as tmp,
          start_sshd(Path(tmp), "MaxStartups 100\n") as server):
        for label, switch in (("plain (OMW_FAST_AUTH=0)", "0"), ("fast", "1")):
            os.environ["OMW_FAST_AUTH"] = switch
            login = measure(server, args.rtt_ms, args.reps, command=False)
            first = measure(server, args.rtt_ms, args.reps, command=True)
            print(f"{label}: login {login:.1f} round trips (TCP included); "
                  f"login + one command {first:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
