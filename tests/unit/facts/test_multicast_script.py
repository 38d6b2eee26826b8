"""The multicast proof as one script per node (issue 21), run for real in a local shell with
stand-in `tcpdump` and `ping` (no packet leaves the machine), and its parser on data."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from omwizard.facts.network import (
    MULTICAST_MARGIN,
    MULTICAST_SETTLE,
    echo_requests,
    multicast_ping_time,
    multicast_script,
    parse_multicast_run,
    parse_ping,
)

GROUP = "224.0.0.0"
SEEN = "12:00:00.1 IP 198.18.0.11 > 224.0.0.0: ICMP echo request, id 7, seq {n}, length 64"

# a stand-in tcpdump: says it listens, then prints the packets of $FAKE_PACKETS (one a line)
# and exits as `-c 2` would, or waits to be stopped (SIGTERM: it prints its count, exits 0).
# It runs under another name (FAKE), so that no `pgrep -x tcpdump` elsewhere sees it.
FAKE = "omw-fake-capture"
TCPDUMP = """#!/bin/sh
trap 'echo "0 packets captured" >&2; exit 0' TERM
[ -n "$FAKE_NO_LISTEN" ] && { echo "tcpdump: eth9: No such device exists" >&2; exit 1; }
echo "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes" >&2
if [ -n "$FAKE_PACKETS" ]; then sleep 0.2; printf '%s\\n' "$FAKE_PACKETS"; exit 0; fi
while :; do sleep 0.05; done
"""
PING = """#!/bin/sh
echo "PING 224.0.0.0 (224.0.0.0) 56(84) bytes of data."
echo "--- 224.0.0.0 ping statistics ---"
echo "2 packets transmitted, 0 received, 100% packet loss, time 201ms"
exit 1
"""


def fake_tools(folder: Path, **env: str) -> dict[str, str]:
    for name, body in ((FAKE, TCPDUMP), ("ping", PING)):
        (folder / name).write_text(body)
        (folder / name).chmod(0o755)
    return {**os.environ, **env, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def run(script: str, env: dict[str, str]) -> tuple[str, float]:
    assert " tcpdump -l " in script
    script = script.replace(" tcpdump -l ", f" {FAKE} -l ")
    began = time.monotonic()
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env,
                         timeout=30)
    return out.stdout, time.monotonic() - began


def test_the_sender_pings_once_listening_and_its_capture_ends_by_itself(tmp_path: Path):
    packets = "\n".join(SEEN.format(n=n) for n in (1, 2))
    out, took = run(multicast_script("eth0", GROUP, True),
                    fake_tools(tmp_path, FAKE_PACKETS=packets))
    got = parse_multicast_run(out)
    assert got.listening and not got.stopped and got.capture_ran
    assert got.ping is not None and got.ping[0] == 1
    assert parse_ping(got.ping[1]).transmitted == 2
    assert echo_requests(got.capture, GROUP) == ["198.18.0.11", "198.18.0.11"]
    assert took < MULTICAST_SETTLE + 1.5


def test_a_receiver_that_sees_nothing_is_stopped_once_the_pings_are_over(tmp_path: Path):
    out, took = run(multicast_script("eth0", GROUP, False), fake_tools(tmp_path))
    got = parse_multicast_run(out)
    assert got.listening and got.stopped and got.capture_ran
    assert got.ping is None  # a receiver does not ping
    assert echo_requests(got.capture, GROUP) == []
    bound = MULTICAST_SETTLE + multicast_ping_time() + MULTICAST_MARGIN
    assert bound - 0.1 <= took < bound + 1.5


def test_a_capture_that_cannot_start_says_so_and_the_sender_does_not_ping(tmp_path: Path):
    out, took = run(multicast_script("eth9", GROUP, True), fake_tools(tmp_path, FAKE_NO_LISTEN="1"))
    got = parse_multicast_run(out)
    assert not got.listening and got.ping is None
    assert got.capture_status == 1 and not got.capture_ran
    assert "No such device" in got.capture
    assert took < 2.5


def test_parse_multicast_run_on_captured_output():
    out = (
        "@@listening\n@@ping 0\nPING 224.0.0.0\n2 packets transmitted, 0 received\n"
        "@@capture 0\n" + SEEN.format(n=1) + "\n" + SEEN.format(n=2) + "\n"
        "listening on eth0, link-type EN10MB\n2 packets captured\n"
    )
    got = parse_multicast_run(out)
    assert got.listening and not got.stopped and got.capture_ran
    assert got.ping == (0, "PING 224.0.0.0\n2 packets transmitted, 0 received")
    assert len(echo_requests(got.capture, GROUP)) == 2
    stopped = parse_multicast_run("@@listening\n@@stopped\n@@capture 143\n")
    assert stopped.capture_ran and stopped.capture == ""
    assert not parse_multicast_run("@@listening\n@@capture 143\n").capture_ran
    cut = parse_multicast_run("@@listening\n")
    assert cut.capture_status is None and not cut.capture_ran


def test_a_script_ended_from_outside_ends_its_capture(tmp_path: Path):
    """The wizard gone (a signal, or its channel closed): no capture is left running."""
    import signal

    script = multicast_script("eth0", GROUP, False).replace(" tcpdump -l ", f" {FAKE} -l ")
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True,
                            env=fake_tools(tmp_path))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "@@listening"
    assert subprocess.run(["pgrep", "-f", f"{FAKE} -l"], capture_output=True).returncode == 0
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    time.sleep(0.3)
    assert subprocess.run(["pgrep", "-f", f"{FAKE} -l"], capture_output=True).returncode == 1
