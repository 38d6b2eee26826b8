"""`omwizard rehearse`: a throwaway cluster, applied headless, and nothing left afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omwizard.lab import netns as lab_netns
from omwizard.rehearse import REHEARSAL_DIR

pytestmark = pytest.mark.lab_build


def rehearse(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
    return subprocess.run(
        [sys.executable, "-m", "omwizard", "rehearse", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def nothing_left() -> None:
    assert lab_netns.lab_namespaces() == []
    assert lab_netns.lab_links() == []
    assert not REHEARSAL_DIR.exists()
    assert not Path("/var/tmp/omwlab").exists()


def test_headless_rehearsal_forms_a_cluster_and_leaves_nothing(own_lab_slot) -> None:
    result = rehearse("--nodes", "2", "--headless", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(result.stdout[result.stdout.index('{"omwizard"') :].splitlines()[0])
    members = [
        r
        for r in doc["results"]
        if (r["section"], r["step"]) == ("verify", "members") and r["status"] != "skipped"
    ]
    assert {r["node"] for r in members} == {"n1", "n2"}
    assert all(r["status"] == "ok" for r in members), members
    assert doc["summary"]["failed"] == 0
    nothing_left()


def test_killed_rehearsal_is_cleaned_by_down(own_lab_slot) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omwizard", "rehearse", "--nodes", "2", "--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until the cluster is up and the apply has begun
            if line.startswith("plan:") or time.monotonic() > deadline:
                break
        time.sleep(1)
        assert lab_netns.lab_namespaces(), "the rehearsal cluster should be up"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    down = rehearse("--down")
    assert down.returncode == 0, down.stdout + down.stderr
    nothing_left()
