"""Security on the lab (issue 10): hostile values run nothing, secrets leak nowhere, host keys.

Every run goes through the CLI as a subprocess. The lab has no pid namespace, so the host's
/proc shows every process of every node: the secret test polls it while apply runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import asyncssh
import pytest
from lxml import etree

from omwizard.configs.persistence import parse_connection_properties
from omwizard.lab import Lab
from omwizard.lab.services import start_mariadb
from omwizard.om.layout import OmLayout

pytestmark = pytest.mark.lab

LAYOUT = OmLayout("/opt/om")
BACKUPS = Path("/var/backups/omwizard")
# every shell and XML metacharacter OpenJPA allows (no comma, no edge whitespace)
DB_PASSWORD = "p$(touch /tmp/pwned-db1)`touch /tmp/pwned-db2`;touch /tmp/pwned-db3|x&'\"<b>]]>\\z"
SUDO_PASSWORD = "Sudo-$(touch /tmp/pwned-sudo)'\";|`id`"
URLS = {  # what a URL may hold (validation refuses backticks, |, spaces, double quotes)
    "n1": "http://198.18.0.11:5080/openmeetings?a=$(touch$IFS/tmp/pwned-url1)&b='x';c=1",
    "n2": "http://198.18.0.12:5080/om;touch$IFS/tmp/pwned-url2;#x&&$(id)",
    "n3": "https://198.18.0.13/o'm/(sub)?q=$IFS!*+@[]",
}


def omw(*args: str, state: Path, **extra: str) -> tuple[int, dict | None, str, str]:
    env = {**os.environ, "OMW_DB_PASSWORD": DB_PASSWORD, **extra}
    env.pop("OMW_FAULT", None)
    proc = subprocess.run([sys.executable, "-m", "omwizard", *args, "--json", "--state",
                           str(state)], capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return proc.returncode, doc, proc.stdout, proc.stderr


def results(doc: dict, step: str) -> dict[str, dict]:
    section, name = step.split(".")
    return {r["node"]: r for r in doc["results"] if r["section"] == section and r["step"] == name}


def pwned(lab: Lab) -> list[str]:
    """Any /tmp/pwned* on any node (each has its own /tmp), on this host, or in / (a cwd)."""
    found = [str(p) for p in Path("/tmp").glob("pwned*")] + [str(p) for p in Path("/").glob(
        "pwned*")]
    for node in lab.all_nodes:
        out = node.run("ls -d /tmp/pwned* /pwned* /root/pwned* 2>/dev/null; true").stdout
        found += [f"{node.name}:{line}" for line in out.split()]
    return found


def hostile_plan(lab: Lab, path: Path) -> Path:
    data = lab.plan_dict()
    for node in data["nodes"]:
        if node["name"] in URLS:
            node["server_url"] = URLS[node["name"]]
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def test_metacharacters_run_nothing_and_arrive_literally(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    start_mariadb(lab.db)
    plan = hostile_plan(lab, tmp_path / "plan.yaml")
    state = tmp_path / "state"
    assert pwned(lab) == []
    rc, doc, out, err = omw("apply", str(plan), "--section", "database", "--section", "nodes",
                            "--yes", state=state)
    assert pwned(lab) == []
    assert rc == 0, err + out
    for name, node in lab.nodes.items():
        hz = etree.fromstring(node.run(["cat", LAYOUT.hazelcast_xml], check=True).stdout.encode())
        attrs = {a.get("name"): a.text for a in hz.iter("{*}attribute")}
        assert attrs.get("server.url") == URLS[name], attrs
        px = etree.fromstring(node.run(["cat", LAYOUT.persistence_xml], check=True)
                              .stdout.encode())
        value = next(p.get("value") for p in px.iter("{*}property")
                     if p.get("name") == "openjpa.ConnectionProperties")
        props = dict(parse_connection_properties(value))
        assert props["Password"] == DB_PASSWORD, props
    assert results(doc, "database.db-login")["n1"]["status"] == "ok"
    # the server has exactly that password: a login with it works from an OM node
    login = lab.node("n1").run(
        f"MYSQL_PWD=$(cat) mysql -h {lab.db.address} -u om -N -e 'SELECT 42' openmeetings",
        input=DB_PASSWORD)
    assert login.stdout.strip() == "42", login.stderr
    rc, doc, out, err = omw("rollback", str(plan), "--section", "database", "--section",
                            "nodes", "--yes", state=state)
    assert rc == 0, err + out
    assert pwned(lab) == []


# -- secrets --------------------------------------------------------------------------------


class CmdlineWatch(threading.Thread):
    """Reads every process's argument list (host and lab nodes) until stopped."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(daemon=True)
        self.secrets = [s.encode() for s in secrets]
        self.stop = threading.Event()
        self.leaks: list[str] = []
        self.seen = 0
        self.sudo_seen = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                self.seen += 1
                if b"sudo" in raw:
                    self.sudo_seen += 1
                for secret in self.secrets:
                    if secret in raw:
                        self.leaks.append(raw.replace(b"\0", b" ").decode(errors="replace"))


def files_holding(root: Path, secret: str, skip: tuple[str, ...] = ()) -> list[str]:
    needle = secret.encode()
    hits = []
    if not root.exists():
        return hits
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and not str(path).endswith(skip):
            try:
                if needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return hits


def test_no_secret_in_any_file_output_or_argument_list(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    start_mariadb(lab.db)
    lab.node("n2").add_user("deploy", password=SUDO_PASSWORD)
    data = lab.plan_dict()
    data["nodes"][1]["ssh"] = {"user": "deploy"}
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps(data))
    state = tmp_path / "state"
    watch = CmdlineWatch([DB_PASSWORD, SUDO_PASSWORD])
    watch.start()
    try:
        rc, doc, out, err = omw("apply", str(plan), "--section", "preflight", "--section",
                                "network", "--section", "database", "--section", "storage",
                                "--section", "nodes", "--yes", state=state,
                                OMW_SUDO_PASSWORD=SUDO_PASSWORD)
        rc2, _, out2, err2 = omw("export", str(plan), "-o", str(tmp_path / "export.yaml"),
                                 state=state)
    finally:
        watch.stop.set()
        watch.join()
    assert rc == 0, err + out
    assert rc2 == 0, err2
    # n2 really worked through sudo with the password (and the watch really saw processes)
    assert results(doc, "nodes.hazelcast-xml")["n2"]["status"] == "changed"
    assert watch.seen > 100 and watch.sudo_seen > 0
    assert watch.leaks == []
    for secret in (DB_PASSWORD, SUDO_PASSWORD):
        for text in (out, err, out2, err2):
            assert secret not in text
        assert files_holding(state, secret) == []
        assert files_holding(tmp_path / "export.yaml", secret) == []
        assert files_holding(BACKUPS, secret) == []
        for node in lab.all_nodes:
            for folder in ("tmp", "home", "etc-upper"):
                assert files_holding(node.root / folder, secret) == []
    for node in lab.nodes.values():  # persistence.xml is where the DB password belongs
        assert files_holding(node.opt, SUDO_PASSWORD) == []
        hits = files_holding(node.opt, DB_PASSWORD, skip=("META-INF/persistence.xml",))
        assert hits == []
        assert files_holding(node.opt / LAYOUT.persistence_xml.removeprefix("/opt/"),
                             DB_PASSWORD) == []  # stored XML-escaped, never raw
    assert pwned(lab) == []


# -- host keys ------------------------------------------------------------------------------


def fingerprint(public_line: str) -> str:
    parts = public_line.split()
    i = next(i for i, p in enumerate(parts) if p.startswith(("ssh-", "ecdsa-")))
    key = asyncssh.import_public_key(" ".join(parts[i:i + 2]))
    return key.get_fingerprint("sha256")


def known_keys(lab: Lab) -> dict[str, str]:
    """address -> 'type base64' from the lab's known_hosts."""
    out = {}
    for line in lab.known_hosts.read_text().splitlines():
        host, *key = line.split()
        out[host] = " ".join(key)
    return out


def check_ssh(lab: Lab, tmp_path: Path, known: Path, policy: str, tag: str):
    plan = lab.write_plan(tmp_path / f"plan-{tag}.yaml",
                          ssh={"known_hosts": str(known), "host_keys": policy})
    rc, doc, out, err = omw("check", str(plan), "--section", "preflight",
                            state=tmp_path / f"state-{tag}")
    assert doc is not None, err + out
    return rc, results(doc, "preflight.ssh")


def test_strict_refuses_unknown_and_changed_keys(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    keys = known_keys(lab)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    rc, ssh = check_ssh(lab, tmp_path, empty, "strict", "unknown")
    assert rc == 1
    for node in lab.all_nodes:
        r = ssh[node.name]
        assert r["status"] == "failed", r
        assert f"is not in {empty}" in r["detail"], r
        assert fingerprint(keys[node.address]) in r["detail"], r
    assert empty.read_text() == ""

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    wrong = other.with_suffix(".pub").read_text().split()
    changed = tmp_path / "changed_known_hosts"
    lines = [f"{host} {key}" for host, key in keys.items() if host != lab.node("n2").address]
    lines.append(f"{lab.node('n2').address} {wrong[0]} {wrong[1]}")
    changed.write_text("\n".join(lines) + "\n")
    before = changed.read_text()
    rc, ssh = check_ssh(lab, tmp_path, changed, "strict", "changed")
    assert rc == 1
    detail = ssh["n2"]["detail"]
    assert ssh["n2"]["status"] == "failed" and "HOST KEY CHANGED" in detail, ssh["n2"]
    assert fingerprint(" ".join(wrong[:2])) in detail  # the pinned one
    assert fingerprint(keys[lab.node("n2").address]) in detail  # the offered one
    assert "ssh-keygen -R" in ssh["n2"]["remedy"]
    for name in ("n1", "n3", "db"):
        assert ssh[name]["status"] == "ok", ssh[name]
    assert changed.read_text() == before


def test_accept_new_pins_then_refuses_a_changed_key(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    keys = known_keys(lab)
    pinned = tmp_path / "pinned" / "known_hosts"
    rc, ssh = check_ssh(lab, tmp_path, pinned, "accept-new", "first")
    for node in lab.all_nodes:
        assert ssh[node.name]["status"] == "ok", ssh[node.name]
    learned = known_keys_from(pinned)
    assert learned == {addr: keys[addr] for addr in keys}
    assert oct(pinned.stat().st_mode & 0o777) == "0o600"

    n2 = lab.node("n2")
    key = n2.root / "ssh_host_ed25519_key"
    saved = tmp_path / "saved_host_key"
    shutil.copy2(key, saved)
    shutil.copy2(key.with_suffix(".pub"), saved.with_suffix(".pub"))
    try:
        n2.stop_sshd()
        key.unlink()
        key.with_suffix(".pub").unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        new_fp = fingerprint(key.with_suffix(".pub").read_text())
        n2.start_sshd()
        before = pinned.read_text()
        rc, ssh = check_ssh(lab, tmp_path, pinned, "accept-new", "again")
        assert rc == 1
        detail = ssh["n2"]["detail"]
        assert ssh["n2"]["status"] == "failed" and "HOST KEY CHANGED" in detail, ssh["n2"]
        assert new_fp in detail and fingerprint(keys[n2.address]) in detail
        for name in ("n1", "n3", "db"):
            assert ssh[name]["status"] == "ok", ssh[name]
        assert pinned.read_text() == before  # never replaced automatically
    finally:
        n2.stop_sshd()
        shutil.copy2(saved, key)
        shutil.copy2(saved.with_suffix(".pub"), key.with_suffix(".pub"))
        n2.start_sshd()


def known_keys_from(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        host, *key = line.split()
        out[host] = " ".join(key[:2])
    return out
