"""Keys and the ssh config against a real sshd on loopback: an alias from the plan's
ssh.config, a missing key file and a passphrase-protected key said with their fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from omwizard.plan.model import Node, SSHConfig
from omwizard.remote.ssh import RemoteError, RemotePool

pytestmark = pytest.mark.lab


def node(sshd, tmp: Path, host: str = "127.0.0.1", **kw) -> Node:  # noqa: ANN001
    known = tmp / "known_hosts"
    known.write_text(sshd.pinned_line())
    ssh = SSHConfig(**{"user": "root", "port": sshd.port, "identity": str(sshd.client_key),
                       "known_hosts": str(known), "connect_timeout": 5, **kw})
    return Node(name="n1", host=host, address="127.0.0.1", ssh=ssh)


async def _run(n: Node) -> str:
    pool = RemotePool()
    try:
        return (await pool.get(n).run("echo hi")).stdout.strip()
    finally:
        await pool.close()


async def test_an_alias_from_the_plans_ssh_config(sshd, tmp_path: Path) -> None:  # noqa: ANN001
    config = tmp_path / "ssh_config"
    config.write_text(f"Host loop-alias\n    HostName 127.0.0.1\n    Port {sshd.port}\n"
                      f"    IdentityFile {sshd.client_key}\n")
    n = node(sshd, tmp_path, host="loop-alias", config=str(config), identity=None, port=22)
    assert await _run(n) == "hi"  # HostName, Port and IdentityFile came from the config


async def test_a_missing_key_file_is_named(sshd, tmp_path: Path) -> None:  # noqa: ANN001
    n = node(sshd, tmp_path, identity=str(tmp_path / "no_such_key"))
    with pytest.raises(RemoteError) as err:
        await _run(n)
    assert "no_such_key" in err.value.message and "ssh.identity" in err.value.remedy


async def test_a_locked_key_without_an_agent_says_ssh_add(
    sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-pass", "-f", str(key)],
                   check=True)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(RemoteError) as err:
        await _run(node(sshd, tmp_path, identity=str(key)))
    assert "passphrase" in err.value.message and "ssh-add" in err.value.remedy
