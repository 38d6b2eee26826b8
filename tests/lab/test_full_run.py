"""The whole procedure on the lab, headless: apply every section, export, replay, roll back.

This is the operator's story end to end: a fresh 3-node cluster with a MariaDB node becomes a
cluster whose Hazelcast members find each other; the exported plan re-loads and, applied
again, changes nothing; rollback leaves every node as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.lab import services

pytestmark = pytest.mark.lab

PASSWORD = "Full-Run pw; $(touch /tmp/pwned) & <x>"
WATCHED = [
    "/opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml",
    "/opt/om/webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml",
    "/etc/systemd/system/openmeetings.service",
    "/etc/systemd/system/openmeetings.service.d/omwizard.conf",
    "/etc/timezone",
    "/etc/fstab",
    "/etc/exports",
]


def omw(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMW_DB_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "omwizard", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )


def fingerprint(lab) -> dict[str, str]:  # noqa: ANN001
    """sha256 (or 'absent') of every watched file, the zone link and the multicast route."""
    script = (
        "for f in " + " ".join(WATCHED) + "; do "
        'if [ -e "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi; done; '
        "readlink /etc/localtime; ip route show 224.0.0.0/4"
    )
    return {name: node.run(script, check=True).stdout for name, node in lab.nodes.items()}


def results(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    return json.loads(proc.stdout)["results"]


def test_apply_export_replay_rollback(fresh_lab, tmp_path: Path) -> None:  # noqa: ANN001
    lab = fresh_lab
    services.ensure_lab_services(lab)
    services.start_mariadb(lab.db)
    for node in lab.nodes.values():  # OpenMeetings' health endpoint, as the stand-in answers it
        services.start_health_responder(node)
    before = fingerprint(lab)
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = str(tmp_path / "state")

    applied = omw("apply", str(plan), "--yes", "--json", "--state", state)
    assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
    done = results(applied)
    bad = [r for r in done if r["status"] not in ("ok", "changed", "skipped")]
    assert bad == []
    members = [
        r
        for r in done
        if (r["section"], r["step"]) == ("verify", "members") and r["node"] in lab.nodes
    ]
    assert {r["node"] for r in members} == set(lab.nodes)
    assert all(r["status"] == "ok" for r in members), members
    logins = [
        r
        for r in done
        if (r["section"], r["step"]) == ("database", "db-login") and r["node"] in lab.nodes
    ]
    assert logins and all(r["status"] == "ok" for r in logins)
    # on the working cluster the members hold the multicast port: verify.ports does not wait
    # out UDP probes there, and says so
    ports = [r for r in done if (r["section"], r["step"]) == ("verify", "ports")
             and r["node"] in lab.nodes]
    assert ports and all(r["status"] == "ok" for r in ports), ports
    assert all("UDP not probed (a running service holds the port)" in r["detail"]
               for r in ports), [r["detail"] for r in ports]
    assert PASSWORD not in applied.stdout and PASSWORD not in applied.stderr
    assert not any(Path("/tmp").glob("pwned*"))

    exported = tmp_path / "cluster.yaml"
    out = omw("export", str(plan), "-o", str(exported), "--state", state)
    assert out.returncode == 0, out.stdout + out.stderr
    text = exported.read_text()
    assert "report" in text and PASSWORD not in text
    assert omw("validate", str(exported)).returncode == 0

    replay = omw("apply", str(exported), "--yes", "--json", "--state", state)
    assert replay.returncode == 0, replay.stdout[-4000:] + replay.stderr[-4000:]
    summary = json.loads(replay.stdout)["summary"]
    assert summary["changed"] == 0 and summary["failed"] == 0, summary

    undone = omw("rollback", str(plan), "--yes", "--json", "--state", state)
    assert undone.returncode == 0, undone.stdout[-4000:] + undone.stderr[-4000:]
    assert fingerprint(lab) == before
    journal = json.loads((Path(state) / "journal.json").read_text())
    records = journal["records"] if isinstance(journal, dict) else journal
    assert not [r for r in records if r["phase"] in ("begin", "done")]
    users = services.mysql(lab.db, "SELECT COUNT(*) FROM mysql.user WHERE User='om'")
    assert users.stdout.strip() == "0"
