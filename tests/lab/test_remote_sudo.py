"""remote.py's sudo paths against real OpenSSH and real sudo on a lab node.

A NOPASSWD account must never be sent a password (it would become the command's stdin);
a password account gets it on stdin only, never in argv; a wrong one is refused clearly.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from omwizard.plan.model import Node, SSHConfig
from omwizard.remote.ssh import RemoteError, RemotePool

pytestmark = pytest.mark.lab

PASSWORD = "Sudo pw $(touch /tmp/pwned) ;'\""


def node_for(lab, name: str, user: str) -> Node:  # noqa: ANN001
    lab_node = lab.node(name)
    ssh = SSHConfig(
        user=user,
        identity=str(lab.identity),
        known_hosts=str(lab.known_hosts),
        connect_timeout=5,
    )
    return Node(name=name, host=lab_node.address, address=lab_node.address, ssh=ssh)


def watch_cmdlines(stop: threading.Event, seen: list[str]) -> None:
    """Every process argument list on the machine (the lab shares one pid namespace)."""
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    seen.append((proc / "cmdline").read_bytes().decode(errors="replace"))
                except OSError:
                    pass


async def test_nopasswd_sudo_never_sends_a_password(fresh_lab) -> None:  # noqa: ANN001
    fresh_lab.node("n1").add_user("omwnp", nopasswd=True)
    asked: list[str] = []
    pool = RemotePool(ask_password=lambda node, prompt: asked.append(prompt) or "unused")
    remote = pool.get(node_for(fresh_lab, "n1", "omwnp"))
    assert (await remote.run("id -u", sudo=False)).stdout.strip() != "0"
    result = await remote.run("id -u; cat", sudo=True)
    assert result.stdout.split() == ["0"]  # cat read nothing: no password reached stdin
    assert await remote.sudo_mode() == "nopasswd"
    assert asked == []
    await pool.close()


async def test_password_sudo_uses_stdin_only(fresh_lab) -> None:  # noqa: ANN001
    fresh_lab.node("n2").add_user("omwpw", password=PASSWORD)
    pool = RemotePool(ask_password=lambda node, prompt: PASSWORD)
    remote = pool.get(node_for(fresh_lab, "n2", "omwpw"))
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_cmdlines, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        result = await remote.run("id -u", sudo=True)
        assert result.stdout.strip() == "0"
        echoed = await remote.run("cat", sudo=True, input="payload\n")
        assert echoed.stdout == "payload\n"  # the password was consumed by sudo, not cat
        target = "/opt/om/omw-sudo-test"  # the node's own /opt, root-owned
        await remote.write_file(target, b"written through sudo\n")
        assert fresh_lab.node("n2").run(["cat", target]).stdout == "written through sudo\n"
    finally:
        stop.set()
        watcher.join(5)
        await pool.close()
    assert await asyncio.to_thread(lambda: not any(PASSWORD in line for line in seen))
    assert not Path("/tmp/pwned").exists()
    assert fresh_lab.node("n2").run(["test", "-e", "/tmp/pwned"]).returncode == 1


async def test_wrong_sudo_password_is_refused_clearly(fresh_lab) -> None:  # noqa: ANN001
    fresh_lab.node("n3").add_user("omwbad", password="the-right-one")
    pool = RemotePool(ask_password=lambda node, prompt: "not-the-right-one")
    remote = pool.get(node_for(fresh_lab, "n3", "omwbad"))
    with pytest.raises(RemoteError) as info:
        await remote.run("true", sudo=True)
    assert "sudo refused the password for omwbad" in info.value.message
    assert info.value.remedy
    await pool.close()
