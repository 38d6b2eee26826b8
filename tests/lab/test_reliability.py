"""Reliability on the lab (issue 10): crash and resume, faults on a node, rollback fidelity,
and two wizards at once. Every run goes through the CLI as a subprocess, as an operator's.

The crash points use the test-only hook in omwizard/step.py (OMW_FAULT="after-begin:N" kills
the wizard with SIGKILL right after the Nth journal_begin, "after-write:N" right after the Nth
change reached a node but before its journal_end), and one kill from outside at a moment
chosen by polling the journal, as an operator's Ctrl-\\ or a dying terminal would.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omwizard.engine.state import StateStore
from omwizard.lab import Lab, faults, set_timezone
from omwizard.om.layout import OmLayout

pytestmark = pytest.mark.lab

PASSWORD = "lab-secret"
OM = ("n1", "n2", "n3")
OTHER_ZONE = "America/New_York"
LAYOUT = OmLayout("/opt/om")
DROPIN = "/etc/systemd/system/openmeetings.service.d/omwizard.conf"
NETPLAN_OURS = "/etc/netplan/60-omwizard-multicast.yaml"
EDITED = ["/etc/timezone", "/etc/network/interfaces", "/etc/netplan/01-netcfg.yaml",
          NETPLAN_OURS, DROPIN, LAYOUT.hazelcast_xml, LAYOUT.persistence_xml, "/etc/fstab"]
TARGET_DIRS = ["/etc", "/etc/network", "/etc/netplan", "/etc/systemd/system", LAYOUT.classes,
               LAYOUT.classes + "/META-INF"]
SECTIONS = ("--section", "preflight", "--section", "network", "--section", "storage",
            "--section", "nodes")
BACKUPS = Path("/var/backups/omwizard/lab")  # /var is not per node in the lab: one folder

IFUPDOWN = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n" \
           "\taddress 198.18.0.11/24\n"
NETPLAN = "network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    eth0:\n" \
          "      addresses: [198.18.0.12/24]\n"


def argv(*args: str, state: Path) -> list[str]:
    return [sys.executable, "-m", "omwizard", *args, "--json", "--state", str(state)]


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "OMW_DB_PASSWORD": PASSWORD, **extra}
    out.pop("OMW_FAULT", None)
    out.update(extra)
    return out


def omw(*args: str, state: Path, **extra: str) -> tuple[int, dict | None, str]:
    proc = subprocess.run(argv(*args, state=state), capture_output=True, text=True,
                          env=env(**extra), timeout=600, stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return proc.returncode, doc, proc.stderr


def results(doc: dict, step: str) -> dict[str, dict]:
    section, name = step.split(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def scenario(lab: Lab) -> None:
    """Nodes that give every section something to change: zones, ifupdown, netplan."""
    for node in lab.all_nodes:
        set_timezone(node, OTHER_ZONE if node.name in ("n2", "n3") else "Europe/Berlin")
    lab.node("n1").run("mkdir -p /etc/network && cat > /etc/network/interfaces",
                       input=IFUPDOWN, check=True)
    lab.node("n2").run("mkdir -p /etc/netplan && cat > /etc/netplan/01-netcfg.yaml",
                       input=NETPLAN, check=True)


PROBE = r"""
for f in {files}; do
  if [ -e "$f" ]; then echo "file $f $(sha256sum < "$f" | cut -c1-64) $(stat -c '%U:%G:%a' "$f")"
  else echo "file $f absent"; fi
done
echo "localtime $(readlink /etc/localtime)"
ip route show table main | sed 's/^/route /'
echo "omdata $(stat -c '%U:%G:%a' /opt/omdata)"
for d in {dirs}; do
  [ -d "$d" ] && find "$d" -maxdepth 1 -name '.omwizard.*' | sed 's/^/temp /'
done
true
"""


def node_state(lab: Lab) -> dict[str, list[str]]:
    """What the wizard may change on each node: file hashes, owners, routes, temp files."""
    script = PROBE.format(files=" ".join(EDITED), dirs=" ".join(TARGET_DIRS))
    return {n.name: n.run(script, check=True).stdout.splitlines() for n in lab.all_nodes}


def backups() -> set[str]:
    return {p.name for p in BACKUPS.iterdir()} if BACKUPS.is_dir() else set()


def backup_counts(names: set[str]) -> collections.Counter:
    """New backups by the flattened path they keep (the record id prefix stripped)."""
    return collections.Counter(n.split("-", 1)[1] for n in names if not n.endswith(".tmp"))


def run_reference(lab: Lab, tmp: Path) -> dict:
    lab.reset()
    scenario(lab)
    before = backups()
    state = tmp / "ref-state"
    rc, doc, err = omw("apply", str(lab.write_plan(tmp / "ref.yaml")), *SECTIONS, "--yes",
                       state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    journal = StateStore(state).journal()
    return {"nodes": node_state(lab), "backups": backup_counts(backups() - before),
            "records": len(journal), "files": sum(r["kind"] == "file" for r in journal)}


_REFERENCE: dict[str, dict] = {}


@pytest.fixture
def reference(fresh_lab: Lab, tmp_path_factory) -> dict:
    """One uninterrupted apply on a fresh lab: what every resumed run must end as."""
    if "ref" not in _REFERENCE:
        _REFERENCE["ref"] = run_reference(fresh_lab, tmp_path_factory.mktemp("reference"))
    fresh_lab.reset()
    return _REFERENCE["ref"]


def kill_when_journal_has(cmd: list[str], state: Path, n: int, environ: dict) -> int:
    """Start the wizard; SIGKILL it as soon as its journal holds n records (polled)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=environ, stdin=subprocess.DEVNULL)
    journal = state / "journal.json"
    try:
        while proc.poll() is None:
            try:
                records = json.loads(journal.read_text())["records"]
            except (OSError, ValueError, KeyError):
                records = []
            if len(records) >= n:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        proc.wait()
    return proc.returncode


@pytest.mark.parametrize("fault", ["after-begin:1", "after-write:1", "after-begin:3",
                                   "after-write:4", "after-write:8", "after-begin:11",
                                   "poll:2", "poll:6"])
def test_crash_and_resume_ends_as_an_uninterrupted_run(reference, fresh_lab: Lab,
                                                       tmp_path: Path, fault: str) -> None:
    lab = fresh_lab
    scenario(lab)
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    kind, _, n = fault.partition(":")
    assert int(n) <= reference["records"], "the crash point must lie inside the run"
    before = backups()
    cmd = argv("apply", str(plan), *SECTIONS, "--yes", state=state)
    if kind == "poll":
        rc = kill_when_journal_has(cmd, state, int(n), env())
    else:
        rc = subprocess.run(cmd, capture_output=True, env=env(OMW_FAULT=fault),
                            timeout=600, stdin=subprocess.DEVNULL).returncode
    assert rc == -signal.SIGKILL, f"the wizard was not killed at {fault} (exit {rc})"

    # the state directory is readable after the kill, and says what was under way
    store = StateStore(state)
    journal = store.journal()
    store.results()
    store.meta()
    assert len(journal) >= int(n)
    if kind == "after-begin":
        assert journal[int(n) - 1]["phase"] == "begin"
    if kind in ("after-begin", "after-write"):
        assert store.open_records(), "the interrupted change must stay open in the journal"

    rc, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert StateStore(state).open_records() == []
    assert node_state(lab) == reference["nodes"]
    assert backup_counts(backups() - before) == reference["backups"], "a second backup"
    # every file change that is done was made once per node and path
    done = collections.Counter((r["node"], r["target"]) for r in StateStore(state).journal()
                               if r["kind"] == "file" and r["phase"] == "done")
    assert set(done.values()) <= {1}, done

    rc, doc, err = omw("check", str(plan), "--section", "network", "--section", "storage",
                       "--section", "nodes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)


# -- faults on a node -----------------------------------------------------------------------

FAULT_SECTIONS = ("--section", "network", "--section", "storage", "--section", "nodes")


FAULTS = {
    "link-down": (lambda lab: faults.link_down(lab.node("n2")),
                  lambda lab: faults.link_up(lab.node("n2")), "cannot connect to 198.18.0.12"),
    "sshd-stopped": (lambda lab: faults.stop_sshd(lab.node("n2")),
                     lambda lab: faults.start_sshd(lab.node("n2")),
                     "cannot connect to 198.18.0.12"),
    "readonly": (lambda lab: faults.readonly(lab.node("n2"), LAYOUT.classes),
                 lambda lab: faults.writable(lab.node("n2"), LAYOUT.classes),
                 "Read-only file system"),
    "full": (lambda lab: faults.fill(lab.node("n2"), LAYOUT.classes),
             lambda lab: faults.writable(lab.node("n2"), LAYOUT.classes),
             "No space left on device"),
    "wrong-sudo-password": (None, None, "sudo refused the password for deploy"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_on_one_node_fails_it_alone_and_a_later_run_completes(
        fresh_lab: Lab, tmp_path: Path, fault: str) -> None:
    lab = fresh_lab
    state = tmp_path / "state"
    break_it, repair, expected = FAULTS[fault]
    plan_data = lab.plan_dict()
    extra: dict[str, str] = {}
    if fault == "wrong-sudo-password":
        lab.node("n2").add_user("deploy", password="right-Passw0rd")
        plan_data["nodes"][1]["ssh"] = {"user": "deploy"}
        extra = {"OMW_SUDO_PASSWORD": "wrong-password"}
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps(plan_data))  # JSON is YAML
    before = node_state(lab)
    if break_it is not None:
        break_it(lab)
    try:
        rc, doc, err = omw("apply", str(plan), *FAULT_SECTIONS, "--yes", state=state, **extra)
        assert rc == 1, err
        assert doc is not None, err
        n2 = [r for r in doc["results"] if r["node"] == "n2" and r["status"] != "skipped"]
        failed = [r for r in n2 if r["status"] == "failed"]
        assert failed, n2
        assert any(expected in r["detail"] for r in failed), failed
        assert all(r["remedy"] for r in failed), failed
        if fault in ("readonly", "full"):  # only the edit under the broken folder fails
            assert [f"{r['section']}.{r['step']}" for r in failed] == ["nodes.hazelcast-xml"]
            assert "n2" in failed[0]["detail"] or "cannot write" in failed[0]["detail"]
        for name in ("n1", "n3"):
            mine = [r for r in doc["results"] if r["node"] == name]
            assert {r["status"] for r in mine} <= {"ok", "changed", "skipped"}, mine
            assert results(doc, "nodes.hazelcast-xml")[name]["status"] == "changed"
        assert StateStore(state).open_records() == []
        if break_it is not None and fault != "link-down" and fault != "sshd-stopped":
            # no half-written file and no temp file on the broken node
            now = node_state(lab)["n2"]
            assert not [line for line in now if line.startswith("temp ")], now
            hz = [line for line in now if LAYOUT.hazelcast_xml in line]
            assert hz == [line for line in before["n2"] if LAYOUT.hazelcast_xml in line]
    finally:
        if repair is not None:
            repair(lab)
    for name, lines in node_state(lab).items():
        assert not [line for line in lines if line.startswith("temp ")], (name, lines)
    if fault == "wrong-sudo-password":
        extra = {"OMW_SUDO_PASSWORD": "right-Passw0rd"}
    rc, doc, err = omw("apply", str(plan), *FAULT_SECTIONS, "--yes", state=state, **extra)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert results(doc, "nodes.hazelcast-xml")["n2"]["status"] == "changed"
    assert results(doc, "nodes.hazelcast-xml")["n1"]["status"] == "ok"


# -- rollback fidelity ----------------------------------------------------------------------

TREE = r"""
find /etc /opt/om -xdev \( -type f -o -type l \) 2>/dev/null | LC_ALL=C sort | while read -r f; do
  if [ -L "$f" ]; then echo "link $f $(readlink "$f")"
  else echo "file $f $(sha256sum < "$f" | cut -c1-64) $(stat -c '%U:%G:%a' "$f")"; fi
done
find /etc /opt/om /opt/omdata -xdev -type d 2>/dev/null | LC_ALL=C sort \
  | while read -r d; do echo "dir $d $(stat -c '%U:%G:%a' "$d")"; done
ip route show table all | grep -v ' table local ' | sed 's/^/route /'
"""


def tree(lab: Lab) -> dict[str, list[str]]:
    return {n.name: n.run(TREE, check=True, timeout=120).stdout.splitlines()
            for n in lab.all_nodes}


def test_rollback_restores_every_byte_and_respects_later_edits(fresh_lab: Lab,
                                                               tmp_path: Path) -> None:
    lab = fresh_lab
    scenario(lab)
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    pristine = tree(lab)

    rc, doc, err = omw("apply", str(plan), *SECTIONS, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    applied = tree(lab)
    assert applied != pristine
    for name in OM:
        assert any(line.startswith("route 224.0.0.0/4") for line in applied[name])
    rc, doc, err = omw("rollback", str(plan), *SECTIONS, "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert tree(lab) == pristine
    assert {r["phase"] for r in StateStore(state).journal()} <= {"undone", "aborted"}

    # someone edits hazelcast.xml after the wizard: rollback keeps it, shows the diff, exit 1
    rc, doc, err = omw("apply", str(plan), "--section", "nodes", "--yes", state=state)
    assert rc == 0, err
    n1 = lab.node("n1")
    n1.run(["sh", "-c", f"echo '<!-- tuned by hand -->' >> {LAYOUT.hazelcast_xml}"], check=True)
    hand = n1.run(["cat", LAYOUT.hazelcast_xml], check=True).stdout
    rc, doc, err = omw("rollback", str(plan), "--section", "nodes", "--yes", state=state)
    assert rc == 1, err
    hx = results(doc, "nodes.hazelcast-xml")
    assert hx["n1"]["status"] == "failed"
    assert "changed after omwizard wrote it" in hx["n1"]["detail"]
    assert "+<!-- tuned by hand -->" in hx["n1"]["diff"]
    assert "rollback --force" in hx["n1"]["remedy"]
    assert hx["n2"]["status"] == hx["n3"]["status"] == "rolled-back"
    assert n1.run(["cat", LAYOUT.hazelcast_xml], check=True).stdout == hand

    rc, doc, err = omw("rollback", str(plan), "--section", "nodes", "--yes", "--force",
                       state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert results(doc, "nodes.hazelcast-xml")["n1"]["status"] == "rolled-back"
    assert tree(lab) == pristine


# -- two wizards ----------------------------------------------------------------------------


def test_second_wizard_on_the_same_cluster_is_refused_by_the_lock(fresh_lab: Lab,
                                                                  tmp_path: Path) -> None:
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    first = subprocess.Popen(argv("apply", str(plan), "--section", "nodes", "--yes",
                                  state=state),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env(), stdin=subprocess.DEVNULL)
    lock = state / "lock"
    stopped = False
    try:
        while first.poll() is None:  # until the first one holds the lock (its pid written)
            try:
                holder = json.loads(lock.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            if holder.get("pid") == first.pid:
                first.send_signal(signal.SIGSTOP)  # keep it holding the lock, deterministically
                stopped = True
                break
            time.sleep(0.002)
        assert stopped, "the first wizard ended before it was seen holding the lock"
        rc, doc, err = omw("apply", str(plan), "--section", "nodes", "--yes", state=state)
        assert rc == 1
        assert f"pid {first.pid} on host {os.uname().nodename}" in err, err
        assert "another omwizard" in err and "cluster lab" in err, err
    finally:
        if stopped:
            first.send_signal(signal.SIGCONT)
        out, errs = first.communicate(timeout=600)
    assert first.returncode == 0, errs
    assert {r["status"] for r in json.loads(out)["results"]} <= {"changed", "ok", "skipped"}


def test_two_clusters_at_once_both_work(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    plans = {}
    for name in ("alpha", "beta"):
        plans[name] = lab.write_plan(tmp_path / f"{name}.yaml",
                                     cluster={"name": name, "timezone": "Europe/Berlin"})
    runs = {
        "alpha": argv("apply", str(plans["alpha"]), "--section", "nodes", "--node", "n1",
                      "--node", "n2", "--yes", state=tmp_path / "alpha"),
        "beta": argv("apply", str(plans["beta"]), "--section", "nodes", "--node", "n3",
                     "--yes", state=tmp_path / "beta"),
    }
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env(), stdin=subprocess.DEVNULL)
             for name, cmd in runs.items()}
    outs = {name: p.communicate(timeout=600) for name, p in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, outs[name][1]
    mine = {"alpha": {"n1", "n2"}, "beta": {"n3"}}
    for name in procs:
        doc = json.loads(outs[name][0])
        assert doc["cluster"] == name
        changed = {r["node"] for r in doc["results"] if r["status"] == "changed"}
        assert changed == mine[name], doc
        assert {r["node"] for r in StateStore(tmp_path / name).journal()} == mine[name]
    for node in OM:
        text = lab.node(node).run(["cat", LAYOUT.hazelcast_xml], check=True).stdout
        owner = "beta" if node == "n3" else "alpha"
        assert f"<cluster-name>omwizard-{owner}</cluster-name>" in text, (node, text[:2000])


HANG = "#!/bin/sh\necho $$ > /tmp/omw-hang.pid\nexec sleep 600\n"


def test_a_hanging_command_fails_its_node_alone_and_is_settled_later(
        fresh_lab: Lab, tmp_path: Path) -> None:
    """`route add` hangs on n2: bounded, n2 failed with what happened, the others finish; the
    change of unknown effect stays open in the journal and the next apply settles it."""
    lab = fresh_lab
    n2 = lab.node("n2")
    state = tmp_path / "state"
    plan = lab.write_plan(tmp_path / "plan.yaml")
    n2.run(f"printf %s {shlex.quote(HANG)} > /tmp/omw-hang && chmod +x /tmp/omw-hang "
           "&& mount --bind /tmp/omw-hang /usr/sbin/route", check=True)
    try:
        rc, doc, err = omw("apply", str(plan), "--section", "network", "--yes", state=state,
                           OMW_COMMAND_TIMEOUT="5")
        assert rc == 1, err
        route = results(doc, "network.multicast-route")
        assert route["n2"]["status"] == "failed"
        assert "did not finish within 5s" in route["n2"]["detail"]
        assert route["n2"]["remedy"]
        assert route["n1"]["status"] == route["n3"]["status"] == "changed"
        assert [r["node"] for r in StateStore(state).open_records()] == ["n2"]
    finally:
        n2.run("umount /usr/sbin/route; kill $(cat /tmp/omw-hang.pid) 2>/dev/null; true")
    rc, doc, err = omw("apply", str(plan), "--section", "network", "--yes", state=state)
    assert rc == 0, err + json.dumps(doc, indent=1)
    assert results(doc, "network.multicast-route")["n2"]["status"] == "changed"
    assert results(doc, "network.multicast-route")["n1"]["status"] == "ok"
    assert StateStore(state).open_records() == []
    assert "224.0.0.0/4" in n2.run(["ip", "route", "show", "224.0.0.0/4"], check=True).stdout
