"""`omwizard rehearse`: a throwaway cluster, applied headless, and nothing left afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from omwizard.cli.rehearse import REHEARSAL_DIR
from omwizard.lab import netns as lab_netns
from tests.unit.lab.test_omfiles import CLASSES, install_tree

pytestmark = pytest.mark.lab_build


def rehearse(*args: str, timeout: float = 1500,
             wait: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMW_DB_PASSWORD"}
    env.setdefault("OMW_LAB_WAIT", "600")  # another test session may hold the lab slot
    if wait is not None:
        env["OMW_LAB_WAIT"] = wait
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


def node_file(plan: dict, address: str, path: str) -> str:
    """A file on a rehearsal node, read with plain OpenSSH and the rehearsal plan's key."""
    ssh = plan["ssh"]
    return subprocess.run(
        ["ssh", "-i", ssh["identity"], "-o", f"UserKnownHostsFile={ssh['known_hosts']}",
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", f"root@{address}",
         "cat", path],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout


def test_killed_rehearsal_with_operator_files_is_cleaned_by_down(own_lab_slot, tmp_path) -> None:
    """--om-files: the nodes get the operator's OpenMeetings files (never its installed
    persistence.xml, which holds a real password); a SIGKILLed run is removed by --down."""
    om_home = install_tree(tmp_path / "open810", "8.1.0")
    hazelcast = (om_home / CLASSES / "hazelcast.xml").read_text()
    marked = re.sub(r"<hazelcast(?=[\s>])", "<!-- the operator's own copy -->\n<hazelcast",
                    hazelcast, count=1)
    assert marked != hazelcast
    (om_home / CLASSES / "hazelcast.xml").write_text(marked)
    mysql = (om_home / CLASSES / "META-INF" / "mysql_persistence.xml").read_text()
    assert "Operator-Secret" in (om_home / CLASSES / "META-INF" / "persistence.xml").read_text()
    proc = subprocess.Popen(
        [sys.executable, "-m", "omwizard", "rehearse", "--nodes", "2", "--headless",
         "--om-files", str(om_home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "OMW_LAB_WAIT": os.environ.get("OMW_LAB_WAIT", "600")},
    )
    try:
        deadline = time.monotonic() + 900  # it may wait for the lab slot first
        assert proc.stdout is not None
        said = []
        for line in proc.stdout:  # wait until the cluster is up and the apply has begun
            said.append(line)
            if line.startswith("plan:") or time.monotonic() > deadline:
                break
        assert any("OpenMeetings 8.1.0 files from " + str(om_home) in line for line in said), said
        assert lab_netns.lab_namespaces(), "the rehearsal cluster should be up"
        plan = yaml.safe_load((REHEARSAL_DIR / "plan.yaml").read_text())
        n1 = plan["nodes"][0]["address"]
        classes = "/opt/om/webapps/openmeetings/WEB-INF/classes"
        assert "the operator's own copy" in node_file(plan, n1, f"{classes}/hazelcast.xml")
        # the MySQL template stands in for the operator's persistence.xml (the apply may
        # already be editing it: its first element is all this compares)
        persistence = node_file(plan, n1, f"{classes}/META-INF/persistence.xml")
        assert "Operator-Secret" not in persistence
        assert persistence.split("<persistence-unit")[0] == mysql.split("<persistence-unit")[0]
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    down = rehearse("--down")
    assert down.returncode == 0, down.stdout + down.stderr
    nothing_left()
