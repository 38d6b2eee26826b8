"""The storage section on the lab, through the CLI as an operator runs it.

The lab bind-mounts one host folder at /opt/omdata in every OM node (storage.kind existing:
the success path). This kernel has no NFS file system, so with kind nfs the wizard is tested
up to the mount: the exact exports and fstab lines, idempotency, and a failing `mount` that
is reported with its cause and leaves /etc/fstab as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.engine.state import StateStore

pytestmark = pytest.mark.lab

PASSWORD = "Lab-pw_4711"
DROPIN = "/etc/systemd/system/openmeetings.service.d/omwizard.conf"
OLD_DATA = "/opt/om/webapps/openmeetings/data"
NFS_LINE_OPTS = "(rw,sync,no_subtree_check,no_root_squash)"


def omw(*args: str, state: Path, timeout: float = 600) -> tuple[int, dict | None, str]:
    """Run the CLI as an operator would; (exit status, JSON document or None, stderr)."""
    env = {**os.environ, "OMW_DB_PASSWORD": PASSWORD}
    argv = [sys.executable, "-m", "omwizard", *args, "--state", str(state)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    doc = json.loads(proc.stdout) if "--json" in args and proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr


def by(doc: dict, step: str) -> dict[str, dict]:
    section, _, name = step.partition(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def read(node, path: str) -> bytes | None:
    """A file as the node sees it (its /etc overlay, its /opt)."""
    proc = subprocess.run(node._enter(["cat", "--", path]), capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def owner(node, path: str) -> str:
    return node.run(["stat", "-c", "%U:%G", "--", path], check=True).stdout.strip()


def test_existing_apply_proves_sharing_and_rolls_back(fresh_lab, tmp_path: Path) -> None:
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")  # storage.kind existing, /opt/omdata
    state = tmp_path / "state"
    # n2 has uploads in OM's default data dir that are not in the shared folder yet
    room = f"{OLD_DATA}/files/room7"
    lab.nodes["n2"].run(f"mkdir -p {room} && echo pdf > {room}/a.pdf", check=True)
    before = {name: read(node, DROPIN) for name, node in lab.nodes.items()}
    assert set(before.values()) == {None}

    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--yes", "--json", state=state)
    assert rc == 0, (err, doc)
    data_dir = by(doc, "storage.data-dir")
    for name, node in lab.nodes.items():
        assert data_dir[name]["status"] == "changed", data_dir[name]
        assert "-DDATA_DIR=/opt/omdata" in read(node, DROPIN).decode()
    assert data_dir["db"]["status"] == "skipped"
    assert owner(lab.nodes["n1"], "/opt/omdata") == "nobody:nogroup"  # the 9.1.0 unit's User=
    # the leftover uploads are pointed out with the copy command, and not copied
    assert "WARNING" in data_dir["n2"]["detail"] and "files/room7/a.pdf" in data_dir["n2"]["detail"]
    assert f"cp -a -n -- {OLD_DATA}/. /opt/omdata/" in data_dir["n2"]["remedy"]
    assert "WARNING" not in data_dir["n1"]["detail"]
    assert not (lab.shared_data / "files").exists()
    for step in ("storage.nfs-server", "storage.nfs-client"):
        for result in by(doc, step).values():
            assert result["status"] == "skipped" and "existing" in result["detail"], result
    shared = by(doc, "storage.shared")
    for name in lab.nodes:
        assert shared[name]["status"] == "ok", shared[name]
        assert "shared" in shared[name]["detail"] and "65534:65534" in shared[name]["detail"]
    assert not any(p.name.startswith(".omwizard-shared-") for p in lab.shared_data.iterdir())

    rc, doc, err = omw("check", str(plan), "--section", "storage", "--json", state=state)
    assert rc == 0, (err, doc)

    rc, doc, err = omw("rollback", str(plan), "--section", "storage", "--yes", "--json",
                       state=state)
    assert rc == 0, (err, doc)
    assert {name: read(node, DROPIN) for name, node in lab.nodes.items()} == before
    assert owner(lab.nodes["n1"], "/opt/omdata") == "root:root"
    assert StateStore(state).open_records() == []


def test_uid_mismatch_is_reported_with_the_fix(fresh_lab, tmp_path: Path) -> None:
    lab = fresh_lab
    plan = lab.write_plan(tmp_path / "plan.yaml")
    state = tmp_path / "state"
    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--yes", "--json", state=state)
    assert rc == 0, (err, doc)
    # n3's nobody gets another uid (its /etc is its own)
    lab.nodes["n3"].run("sed -i 's/^nobody:x:65534:/nobody:x:1234:/' /etc/passwd", check=True)
    assert lab.nodes["n3"].run(["id", "-u", "nobody"]).stdout.strip() == "1234"

    rc, doc, err = omw("check", str(plan), "--section", "storage", "--json", state=state)
    assert rc == 1
    shared = by(doc, "storage.shared")
    assert shared["n1"]["status"] == "ok" and shared["n2"]["status"] == "ok", shared
    n3 = shared["n3"]
    assert n3["status"] == "failed"
    assert "1234:65534 here, 65534:65534 on the other nodes" in n3["detail"], n3
    assert "usermod -u 65534 nobody" in n3["remedy"]
    assert "find / -xdev -uid 1234 -exec chown -h 65534 {} +" in n3["remedy"]


def _exports_lines(lab, path: str = "/opt/omdata") -> list[str]:
    return [f"{path} {lab.nodes[n].address}{NFS_LINE_OPTS}" for n in ("n2", "n3")]


@pytest.fixture
def nfs_lab(fresh_lab):
    """The lab with n2/n3's shared bind mount taken away (they are to mount NFS there)."""
    lab = fresh_lab
    yield lab
    for name in ("n2", "n3"):
        node = lab.nodes[name]
        if node.run(["findmnt", "-n", "--mountpoint", "/opt/omdata"]).returncode != 0:
            node.run(["mount", "--bind", str(lab.shared_data), "/opt/omdata"], check=True)
    lab.reset()
    lab.nodes["n1"].run(["exportfs", "-ra"])  # the export table (host's /var/lib/nfs) as pristine


def test_nfs_lines_idempotency_and_failing_mount(nfs_lab, tmp_path: Path) -> None:
    lab = nfs_lab
    plan = lab.write_plan(tmp_path / "plan.yaml", storage={"kind": "nfs"})  # n1: role storage
    state = tmp_path / "state"
    n1, n2, n3 = (lab.nodes[n] for n in ("n1", "n2", "n3"))

    # the lab's bind mount at /opt/omdata is "another file system": refused, with the hint
    rc, doc, err = omw("check", str(plan), "--section", "storage", "--json", state=state)
    client = by(doc, "storage.nfs-client")
    assert client["n1"]["status"] == "skipped"
    assert client["n2"]["status"] == "failed", client["n2"]
    assert "another file system" in client["n2"]["detail"]
    assert "storage.kind: existing" in client["n2"]["remedy"]
    for node in (n2, n3):
        node.run(["umount", "/opt/omdata"], check=True)

    exports0 = read(n1, "/etc/exports")
    fstab0 = {n: read(lab.nodes[n], "/etc/fstab") for n in ("n2", "n3")}

    # dry-run: the diffs, nothing written
    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--dry-run", "--json",
                       state=state)
    dry = by(doc, "storage.nfs-server")["n1"]
    assert dry["status"] == "would-change", dry
    assert all(f"+{line}" in dry["diff"] for line in _exports_lines(lab))
    assert "+198.18.0.11:/opt/omdata /opt/omdata nfs timeo=50,hard,intr" in by(
        doc, "storage.nfs-client")["n2"]["diff"]
    assert read(n1, "/etc/exports") == exports0
    assert StateStore(state).journal() == []
    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--yes", "--json", state=state)
    assert rc == 1, (err, doc)
    server = by(doc, "storage.nfs-server")
    assert server["n1"]["status"] == "changed", server["n1"]
    assert {server[n]["status"] for n in ("n2", "n3", "db")} == {"skipped"}
    exports1 = read(n1, "/etc/exports")
    assert exports1 == (exports0 or b"") + ("\n".join(_exports_lines(lab)) + "\n").encode()
    live = n1.run(["exportfs", "-v"], check=True).stdout
    assert "198.18.0.12(" in live and "198.18.0.13(" in live

    client = by(doc, "storage.nfs-client")
    for name in ("n2", "n3"):
        result = client[name]
        assert result["status"] == "failed", result
        assert "mount /opt/omdata" in result["detail"] and "No such device" in result["detail"]
        assert "/etc/fstab was restored" in result["detail"]
        assert "no NFS client" in result["remedy"]
        assert read(lab.nodes[name], "/etc/fstab") == fstab0[name]
        # the line was written, then put back: both edits are in the journal's changes
        assert [c["target"] for c in result["changes"]].count("/etc/fstab") == 2
        assert "198.18.0.11:/opt/omdata /opt/omdata nfs timeo=50,hard,intr" in result["diff"]
    shared = by(doc, "storage.shared")
    assert shared["n1"]["status"] == "ok", shared["n1"]  # the writer; nothing to read there
    assert shared["n2"]["status"] == "failed" and "not shared" in shared["n2"]["detail"]
    store = StateStore(state)
    assert store.open_records() == []
    records = len(store.journal())

    # again: the server changes nothing; the clients fail the same way, files as before
    rc, doc, err = omw("apply", str(plan), "--section", "storage", "--yes", "--json", state=state)
    assert rc == 1
    assert by(doc, "storage.nfs-server")["n1"]["status"] == "ok"
    assert by(doc, "storage.data-dir")["n1"]["status"] == "ok"
    assert read(n1, "/etc/exports") == exports1
    new = store.journal()[records:]
    assert {(r["node"], r["step"]) for r in new} <= {("n2", "nfs-client"), ("n3", "nfs-client")}
    assert {n: read(lab.nodes[n], "/etc/fstab") for n in ("n2", "n3")} == fstab0
    assert store.open_records() == []

    # rollback: every file byte-identical to before, and the export table follows the file
    rc, doc, err = omw("rollback", str(plan), "--section", "storage", "--yes", "--json",
                       state=state)
    assert rc == 0, (err, doc)
    assert read(n1, "/etc/exports") == exports0
    assert {n: read(lab.nodes[n], "/etc/fstab") for n in ("n2", "n3")} == fstab0
    assert {name: read(node, DROPIN) for name, node in lab.nodes.items()} == dict.fromkeys(
        lab.nodes)
    assert "198.18.0.12(" not in n1.run(["exportfs", "-v"], check=True).stdout
    journal = StateStore(state).journal()
    assert not [r for r in journal if r["phase"] == "begin"]
    assert {r["phase"] for r in journal if r["kind"] == "file"} <= {"undone"}
