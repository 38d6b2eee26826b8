"""SSH the way operators have it: the cluster reached only through a bastion (ProxyJump), every
node named by its ssh-config alias, User and IdentityFile from the config, ssh-agent keys, and
each hop's host key checked strictly against the plan's known_hosts.

The lab's n3 is the bastion; n1, n2 (OpenMeetings) and db drop SSH from this machine's lab
address (198.18.0.1), so the only way in is through n3, as in a DMZ.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from omwizard.lab import HOST_ADDRESS, services
from omwizard.plan.model import load_plan
from omwizard.remote.ssh import HostKeyError, RemotePool

pytestmark = pytest.mark.lab

PASSWORD = "Bastion-pw-1"
BEHIND = ("n1", "n2", "db")


def omw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omwizard", *args], capture_output=True, text=True,
        env={**os.environ, "OMW_DB_PASSWORD": PASSWORD, **(env or {})},
        stdin=subprocess.DEVNULL, timeout=900, cwd="/",
    )


def ssh_config(lab, *, bastion_key: bool = True) -> str:  # noqa: ANN001
    """The operator's ~/.ssh/config for this cluster: aliases, a bastion, keys."""
    key = f"    IdentityFile {lab.identity}\n"
    lines = ["Host bastion", f"    HostName {lab.nodes['n3'].address}", "    User root",
             key if bastion_key else "    IdentitiesOnly no", ""]
    for name in BEHIND:
        lines += [f"Host om-{name}", f"    HostName {lab.node(name).address}", ""]
    lines += ["Host om-*", "    User root", key.rstrip(), "    ProxyJump bastion", ""]
    return "\n".join(lines)


def write_plan(lab, tmp: Path, config: Path, known_hosts: Path) -> Path:  # noqa: ANN001
    data = lab.plan_dict(cluster={"name": "bastion"})
    data["ssh"] = {"config": str(config), "known_hosts": str(known_hosts),
                   "host_keys": "strict", "sudo": "auto", "connect_timeout": 5}
    nodes = [n for n in data["nodes"] if n["name"] in BEHIND]
    for node in nodes:  # named by alias; address stays the cluster-facing one
        node["host"] = f"om-{node['name']}"
    data["nodes"] = nodes
    path = tmp / "plan.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def bastion_lab(fresh_lab, tmp_path: Path):  # noqa: ANN001
    lab = fresh_lab
    for name in BEHIND:
        lab.node(name).run(f"iptables -I INPUT -s {HOST_ADDRESS} -p tcp --dport 22 -j DROP",
                           check=True)
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config(lab))
    yield lab, config
    for name in BEHIND:  # Lab.reset() flushes them too; the next test may not reset
        lab.node(name).run("iptables -F INPUT", check=False)


def _reachable(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=2) as s:
            s.settimeout(2)
            return s.recv(4).startswith(b"SSH")
    except OSError:
        return False


def test_check_and_apply_go_through_the_bastion(bastion_lab, tmp_path: Path) -> None:  # noqa: ANN001
    lab, config = bastion_lab
    assert _reachable(lab.nodes["n3"].address)
    assert not any(_reachable(lab.node(n).address) for n in BEHIND)  # only via the bastion
    services.ensure_lab_services(lab)
    services.start_mariadb(lab.db)
    for name in ("n1", "n2"):
        services.start_health_responder(lab.nodes[name])
    plan = write_plan(lab, tmp_path, config, lab.known_hosts)
    state = str(tmp_path / "state")

    checked = omw("check", str(plan), "--section", "preflight", "--json", "--state", state)
    assert checked.returncode in (0, 1), checked.stdout[-3000:] + checked.stderr[-3000:]
    rows = json.loads(checked.stdout)["results"]
    assert {r["node"] for r in rows} >= set(BEHIND)
    assert not [r for r in rows if r["status"] in ("failed", "unreachable")], rows

    applied = omw("apply", str(plan), "--yes", "--json", "--state", state)
    assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
    done = json.loads(applied.stdout)["results"]
    members = [r for r in done if (r["section"], r["step"]) == ("verify", "members")
               and r["node"] in ("n1", "n2")]
    assert {r["node"] for r in members} == {"n1", "n2"}
    assert all(r["status"] == "ok" for r in members), members

    again = omw("check", str(plan), "--json", "--state", state)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]


async def _connect_all(plan_path: Path) -> tuple[RemotePool, dict[str, str]]:
    plan = load_plan(plan_path, env={"OMW_DB_PASSWORD": PASSWORD})
    pool = RemotePool()
    out: dict[str, str] = {}
    try:
        results = await asyncio.gather(*(pool.get(n).run("hostname") for n in plan.nodes))
        out = {n.name: r.stdout.strip() for n, r in zip(plan.nodes, results, strict=True)}
        return pool, out
    finally:
        await pool.close()


def test_one_bastion_connection_serves_every_node(bastion_lab, tmp_path: Path) -> None:  # noqa: ANN001
    lab, config = bastion_lab
    plan = write_plan(lab, tmp_path, config, lab.known_hosts)
    pool, names = asyncio.run(_connect_all(plan))
    assert names == {"n1": "n1", "n2": "n2", "db": "db"}  # each the real node behind it
    assert pool.jump_connects == 1


def test_ssh_agent_keys_open_the_bastion(bastion_lab, tmp_path: Path) -> None:  # noqa: ANN001
    lab, _ = bastion_lab
    config = tmp_path / "agent_config"
    config.write_text(ssh_config(lab, bastion_key=False))  # no IdentityFile for the bastion
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True)
    env = dict(line.split(";")[0].split("=", 1) for line in agent.stdout.splitlines()
               if line.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")))
    try:
        subprocess.run(["ssh-add", "-q", str(lab.identity)], env={**os.environ, **env},
                       check=True, capture_output=True)
        plan = write_plan(lab, tmp_path, config, lab.known_hosts)
        ok = omw("check", str(plan), "--section", "preflight", "--json", env=env)
        assert ok.returncode in (0, 1), ok.stdout[-3000:] + ok.stderr[-3000:]
        rows = json.loads(ok.stdout)["results"]
        assert not [r for r in rows if r["status"] in ("failed", "unreachable")], rows
        without = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        refused = subprocess.run(
            [sys.executable, "-m", "omwizard", "check", str(plan), "--section", "preflight"],
            capture_output=True, text=True, env={**without, "OMW_DB_PASSWORD": PASSWORD},
            stdin=subprocess.DEVNULL, timeout=300, cwd="/")
        assert refused.returncode != 0
        assert "jump host bastion" in refused.stdout + refused.stderr
    finally:
        subprocess.run(["kill", env["SSH_AGENT_PID"]], check=False)


def test_unknown_bastion_key_is_refused(bastion_lab, tmp_path: Path) -> None:  # noqa: ANN001
    lab, config = bastion_lab
    bastion = lab.nodes["n3"].address
    known = tmp_path / "known_hosts"
    known.write_text("".join(line + "\n" for line in lab.known_hosts.read_text().splitlines()
                             if not line.startswith(bastion + " ")))
    plan = write_plan(lab, tmp_path, config, known)
    before = known.read_text()
    proc = omw("check", str(plan), "--section", "preflight", "--state", str(tmp_path / "s"))
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert f"host key of {bastion}:22 (jump host bastion" in text, text[-3000:]
    assert known.read_text() == before  # strict: nothing pinned


def test_unknown_key_of_a_node_behind_the_bastion_is_refused(bastion_lab, tmp_path: Path) -> None:  # noqa: ANN001,E501
    lab, config = bastion_lab
    target = lab.nodes["n1"].address
    known = tmp_path / "known_hosts"
    known.write_text("".join(line + "\n" for line in lab.known_hosts.read_text().splitlines()
                             if not line.startswith(target + " ")))
    plan = write_plan(lab, tmp_path, config, known)

    async def go() -> HostKeyError | None:
        p = load_plan(plan, env={"OMW_DB_PASSWORD": PASSWORD})
        pool = RemotePool()
        try:
            await pool.get(p.node("n1")).run("true")
        except HostKeyError as exc:
            return exc
        finally:
            await pool.close()
        return None

    err = asyncio.run(go())
    assert err is not None and f"host key of {target}:22" in err.message
    assert "through jump host bastion" in err.message
