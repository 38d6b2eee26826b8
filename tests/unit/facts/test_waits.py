"""The multicast proof and the port probe end when nothing more can arrive: the commands that
make that possible (a pid line, a stop that only hits our own process, a quick ping), run for
real here where they can be (a local shell, the listener script on a free loopback port)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from omwizard.facts.network import (
    PING_COUNT,
    capture_command,
    parse_listener_ready,
    parse_pid,
    ping_command,
    stop_command,
)
from omwizard.facts.preflight import LISTENER_PY


def test_capture_names_its_pid_then_becomes_the_bounded_tcpdump():
    cmd = capture_command("eth0", "224.0.0.0", 12)
    assert cmd.startswith('echo "@@pid $$"; exec timeout 12 tcpdump -l -n -i eth0 -c 2 ')
    assert cmd.endswith("'icmp and dst host 224.0.0.0'")
    assert parse_pid("@@pid 4242") == 4242
    assert parse_pid("@@pid x") is None and parse_pid("listening on eth0") is None
    # the pid printed is the process that the exec turns into the bounded command
    out = subprocess.run(["sh", "-c", 'echo "@@pid $$"; exec sh -c \'echo $$\''],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert parse_pid(out[0]) == int(out[1])


def test_stop_only_hits_a_process_of_that_name():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        subprocess.run(["sh", "-c", stop_command(sleeper.pid, "timeout")], check=True)
        time.sleep(0.2)
        assert sleeper.poll() is None  # not a `timeout`: left alone
        subprocess.run(["sh", "-c", stop_command(sleeper.pid, "sleep")], check=True)
        assert sleeper.wait(timeout=5) == -15
    finally:
        sleeper.kill()
    gone = subprocess.run(["sh", "-c", stop_command(sleeper.pid, "sleep")])
    assert gone.returncode == 0  # already ended: nothing to do, no error


def fake_ping(folder: Path, body: str) -> dict[str, str]:
    """An environment whose `ping` is a stand-in script (no packet leaves the machine)."""
    script = folder / "ping"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_ping_is_quick_and_falls_back_for_an_older_ping(tmp_path: Path):
    cmd = ping_command("224.0.0.0")
    assert f"ping -t 1 -c {PING_COUNT} -i 0.2 -W 0.2 224.0.0.0" in cmd
    assert "-W 1 224.0.0.0" in cmd  # an older ping that takes no fractional wait
    # the wrapper passes ping's output and exit status through
    env = fake_ping(tmp_path, "echo 'ping: connect: Network is unreachable'; exit 2\n")
    run = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "Network is unreachable" in run.stdout
    env = fake_ping(tmp_path, 'case "$*" in *"-W 0.2"*) echo "ping: bad linger time: 0.2"; '
                    'exit 2;; esac; echo "2 packets transmitted, 0 received"; exit 1\n')
    run = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and run.stdout == "2 packets transmitted, 0 received\n"


def test_listener_says_its_pid_and_stops_cleanly_on_sigterm():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", LISTENER_PY, json.dumps({"tcp": {port: 1}})],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = parse_listener_ready(proc.stdout.readline())
        assert ready is not None and ready["bound"]["tcp"] == [port]
        assert ready["pid"] == proc.pid
        subprocess.run(["sh", "-c", stop_command(ready["pid"], "python")], check=True)
        out, _ = proc.communicate(timeout=5)
        assert out.strip() == "STOPPED" and proc.returncode == 0
    finally:
        proc.kill()
