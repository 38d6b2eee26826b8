"""A living cluster on the lab: grown from 2 OM nodes to 3 and shrunk back to 2, each time by
the CLI as an operator runs it, with a kill in the middle of the grow and of the shrink.

n1 has a drop-by-default nftables ruleset (network.firewall: manage), is the NFS server, and
the database runs on db (MariaDB, accounts per address). Proven at each point: the members
(real Hazelcast members), the nodes with nothing to change not restarted (same pid, same
start time), only the new member's traces added on the peers, and none left after it leaves;
the plan file keeps its comments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omwizard.engine.state import StateStore
from omwizard.lab import hazelcast as hz
from omwizard.lab import services

pytestmark = pytest.mark.lab

PASSWORD = "Lab-pw_4711"
N3 = "198.18.0.13"
NFT_CONF = """#!/usr/sbin/nft -f
flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname "lo" accept
\t\ttcp dport 22 accept
\t\tip protocol icmp accept
\t}
}
"""
WORK = ("--section", "network", "--section", "database", "--section", "nodes")


def omw(*args: str, state: Path, **env: str) -> tuple[int, dict | None, str]:
    environ = {**os.environ, "OMW_DB_PASSWORD": PASSWORD, **env}
    if not env:
        environ.pop("OMW_FAULT", None)
    argv = [sys.executable, "-m", "omwizard", *args, "--json", "--state", str(state)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=900,
                          stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return proc.returncode, doc, proc.stderr


def by(doc: dict, step: str) -> dict[str, dict]:
    section, _, name = step.partition(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def plan_text(lab, names: list[str], **overrides: dict) -> str:
    """The lab plan for these OM nodes, as an operator's file with comments."""
    data = lab.plan_dict(network={"firewall": "manage"}, storage={"kind": "nfs"}, **overrides)
    data["nodes"] = [n for n in data["nodes"] if n["name"] in (*names, "db")]
    data["nodes"][0]["roles"] = ["om", "storage"]
    text = "# the lab cluster (comments must survive remove-node)\n" + yaml.safe_dump(
        data, sort_keys=False)
    return text.replace("- name: n2\n", "- name: n2  # the second OM node\n")


def started(node) -> tuple[int, str] | None:
    """The OM member's pid and its start time (a restart changes both)."""
    pid = hz.member_pid(node)
    if pid is None:
        return None
    return pid, node.run(["ps", "-o", "lstart=", "-p", str(pid)], check=True).stdout.strip()


def members_ok(doc: dict, names: list[str]) -> None:
    members = by(doc, "verify.members")
    for name in names:
        assert members[name]["status"] == "ok", members[name]
        assert members[name]["data"]["size"] == len(names), members[name]


def traces_of_n3(lab) -> dict[str, list[str]]:
    """Where n3's address still appears on its peers (omwizard's rules, exports, accounts)."""
    n1, n2 = lab.nodes["n1"], lab.nodes["n2"]
    places = {
        "n1 nft": n1.run("nft list ruleset", check=True).stdout,
        "n1 nftables.conf": n1.run("cat /etc/nftables.conf", check=True).stdout,
        "n1 exports": n1.run("cat /etc/exports 2>/dev/null; true").stdout,
        "n1 hazelcast.xml": n1.run("cat /opt/om/webapps/openmeetings/WEB-INF/classes/"
                                   "hazelcast.xml").stdout,
        "n2 hazelcast.xml": n2.run("cat /opt/om/webapps/openmeetings/WEB-INF/classes/"
                                   "hazelcast.xml").stdout,
        "db accounts": services.mysql(lab.db, "SELECT Host FROM mysql.user WHERE User='om'")
        .stdout,
    }
    return {k: [ln for ln in v.splitlines() if N3 in ln] for k, v in places.items()
            if N3 in v}


def prepare(lab, lab_manager) -> None:
    """The lab as this file's cluster starts: MariaDB on db, n1 behind a drop-by-default
    nftables ruleset (shared with tests/lab/test_grow_shrink_kills.py)."""
    lab_manager.get()
    services.ensure_lab_services(lab)
    lab.reset()
    services.start_mariadb(lab.db)
    n1 = lab.nodes["n1"]
    n1.write_file("/etc/nftables.conf", NFT_CONF)
    n1.run("nft -f /etc/nftables.conf", check=True)


def restore(lab) -> None:
    lab.reset()
    lab.nodes["n1"].run(["exportfs", "-ra"])  # the host's export table as pristine


@pytest.fixture
def cluster_lab(lab, lab_manager):
    prepare(lab, lab_manager)
    yield lab
    restore(lab)


def apply_work(plan: Path, state: Path) -> None:
    """What an operator runs after editing the plan, but verify (storage on the NFS server
    only: this kernel has no NFS client, so the clients keep the lab's shared folder)."""
    rc, doc, err = omw("apply", str(plan), *WORK, "--yes", state=state)
    assert rc == 0 and doc is not None, err + json.dumps(doc, indent=1)[-4000:]
    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--node", "n1", "--yes",
                       state=state)
    assert doc is not None, err
    assert by(doc, "storage.nfs-server")["n1"]["status"] in ("ok", "changed"), doc


def apply_all(plan: Path, state: Path) -> tuple[int, dict | None, str]:
    apply_work(plan, state)
    return omw("apply", str(plan), "--section", "verify", "--yes", state=state)


def test_grow_to_three_and_shrink_back(cluster_lab, tmp_path: Path) -> None:
    lab = cluster_lab
    n1, n2, n3 = (lab.nodes[n] for n in ("n1", "n2", "n3"))
    plan = tmp_path / "plan.yaml"
    state = tmp_path / "state"

    # a running 2-node cluster
    plan.write_text(plan_text(lab, ["n1", "n2"]))
    rc, doc, err = apply_all(plan, state)
    assert doc is not None, err
    members_ok(doc, ["n1", "n2"])
    running = {n: started(lab.nodes[n]) for n in ("n1", "n2")}
    assert None not in running.values() and hz.member_pid(n3) is None

    # grow: n3 in the plan; the dry run names who is touched and who is not
    plan.write_text(plan_text(lab, ["n1", "n2", "n3"]))
    rc, doc, err = omw("apply", str(plan), *WORK, "--dry-run", state=state)
    assert doc is not None, err
    touch = doc["membership"]
    assert touch["added"] == ["n3"], touch
    assert "n2" in touch["untouched"], touch
    assert touch["touched"]["n1"] == ["network.firewall"], touch  # only n3's ports opened
    assert "nodes.hazelcast-xml" in touch["touched"]["n3"]

    # ... applied, killed halfway, and resumed by running the same command again
    rc, doc, err = omw("apply", str(plan), *WORK, "--yes", state=state, OMW_FAULT="after-begin:3")
    assert rc == -9, (rc, err)
    assert StateStore(state).open_records(), "the kill left a change open"
    apply_work(plan, state)
    # the restart of n3 killed right after its command ran (before the journal's end)
    rc, doc, err = omw("apply", str(plan), "--section", "verify", "--yes", state=state,
                       OMW_FAULT="after-write:1")
    assert rc == -9, (rc, err)
    rc, doc, err = omw("apply", str(plan), "--section", "verify", "--yes", state=state)
    assert doc is not None, err
    restart = by(doc, "verify.restart")
    assert restart["n3"]["status"] in ("changed", "ok") and \
        {restart[n]["status"] for n in ("n1", "n2")} == {"ok"}, restart
    members_ok(doc, ["n1", "n2", "n3"])
    assert {n: started(lab.nodes[n]) for n in ("n1", "n2")} == running  # not restarted
    assert StateStore(state).open_records() == []
    rules = [ln.strip() for ln in n1.run("nft list ruleset", check=True).stdout.splitlines()
             if "omwizard:lab" in ln]
    assert rules and all("198.18.0.12, 198.18.0.13" in ln for ln in rules), rules
    assert "om" in services.mysql(lab.db, f"SELECT User FROM mysql.user WHERE Host='{N3}'").stdout
    assert N3 in n1.run("cat /etc/exports", check=True).stdout

    # shrink: remove-node, killed once, run again; n3's own changes rolled back
    rc, doc, err = omw("remove-node", str(plan), "n3", "--leaving", "rollback", "--yes",
                       state=state, OMW_FAULT="after-write:2")
    assert rc == -9, (rc, err)
    assert "n3" in plan.read_text()  # the plan is updated last
    rc, doc, err = omw("remove-node", str(plan), "n3", "--leaving", "rollback", "--yes",
                       state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)[-4000:]
    members_ok(doc, ["n1", "n2"])
    restart = by(doc, "verify.restart")  # n1 and n2: nothing changed for them, no restart
    assert {restart[n]["status"] for n in ("n1", "n2")} == {"ok"}, restart
    assert restart["n3"]["status"] == "rolled-back"  # n3's own changes undone (--leaving)
    assert {n: started(lab.nodes[n]) for n in ("n1", "n2")} == running
    assert hz.member_pid(n3) is None
    assert traces_of_n3(lab) == {}
    text = plan.read_text()
    assert "name: n3" not in text and N3 not in text
    assert text.startswith("# the lab cluster (comments must survive remove-node)\n")
    assert "- name: n2  # the second OM node\n" in text
    assert re.search(r"firewall: manage", text)
    # n3's own changes are undone: its hazelcast.xml is the pristine one again
    assert b"<instance-name>n3" not in (
        n3.root / "opt/om/webapps/openmeetings/WEB-INF/classes/hazelcast.xml").read_bytes()
    assert StateStore(state).open_records() == []
