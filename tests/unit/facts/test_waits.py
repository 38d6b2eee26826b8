"""The multicast proof ends when nothing more can arrive: its quick ping, run for real here in
a local shell (test_multicast_script.py and test_ports_script.py run the whole scripts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from omwizard.facts.network import (
    PING_COUNT,
    ping_command,
)


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
