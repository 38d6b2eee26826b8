"""The SSH layer against a real OpenSSH sshd on loopback (sudo paths are proven on the lab)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from omwizard.plan.model import Node, SSHConfig
from omwizard.remote.ssh import (
    CommandTimeout,
    HostKeyError,
    RemoteError,
    RemotePool,
    pin_host_key,
)

pytestmark = pytest.mark.lab


def make_node(sshd, known_hosts: Path, host_keys: str = "strict", **kw) -> Node:  # noqa: ANN001
    ssh = SSHConfig(
        user="root",
        port=sshd.port,
        identity=str(sshd.client_key),
        known_hosts=str(known_hosts),
        host_keys=host_keys,
        connect_timeout=5,
        **kw,
    )
    return Node(name="n1", host="127.0.0.1", address="127.0.0.1", ssh=ssh)


@pytest.fixture
def known(sshd, tmp_path: Path) -> Path:  # noqa: ANN001
    path = tmp_path / "known_hosts"
    path.write_text(sshd.pinned_line())
    return path


async def test_run_reuses_one_connection_and_streams_lines(sshd, known) -> None:  # noqa: ANN001
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    lines: list[str] = []
    result = await remote.run(
        "for i in 1 2 3; do echo line$i; done; echo err >&2", on_line=lines.append
    )
    assert result.ok and result.stdout.split() == ["line1", "line2", "line3"]
    assert "err" in lines and "line2" in lines
    results = await asyncio.gather(*(remote.run(["echo", f"x {i}"]) for i in range(12)))
    assert [r.stdout.strip() for r in results] == [f"x {i}" for i in range(12)]
    assert remote.connects == 1
    await pool.close()


async def test_argv_is_quoted(sshd, known, tmp_path: Path) -> None:  # noqa: ANN001
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    marker = tmp_path / "pwned"
    result = await remote.run(["echo", f"$(touch {marker}); `touch {marker}`"])
    assert result.stdout.strip() == f"$(touch {marker}); `touch {marker}`"
    assert not marker.exists()
    await pool.close()


async def test_exit_status_and_timeout(sshd, known) -> None:  # noqa: ANN001
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    assert (await remote.run("exit 7")).exit_status == 7
    with pytest.raises(CommandTimeout) as info:
        await remote.run("sleep 30", timeout=0.5)
    assert "did not finish" in info.value.message
    # the connection stays usable after a timeout
    assert (await remote.run("echo alive")).stdout.strip() == "alive"
    await pool.close()


async def test_atomic_write_keeps_mode_and_owner_and_backs_up(sshd, known, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "conf" / "file.xml"
    target.parent.mkdir()
    target.write_text("old\n")
    os.chmod(target, 0o640)
    os.chown(target, 65534, 65534)
    backup = tmp_path / "backups" / "file.xml.bak"
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    await remote.write_file(str(target), b"new & <content>\n", backup=str(backup))
    assert target.read_text() == "new & <content>\n"
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (65534, 65534)
    assert backup.read_text() == "old\n"
    # no temp file left beside the target
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.xml"]
    # a second write keeps the first backup (no second backup)
    await remote.write_file(str(target), b"newer\n", backup=str(backup))
    assert backup.read_text() == "old\n"
    assert await remote.read_file(str(target)) == b"newer\n"
    assert await remote.read_file(str(tmp_path / "missing")) is None
    await pool.close()


async def test_failed_write_leaves_the_file_as_it_was(sshd, known, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "ro" / "file"
    target.parent.mkdir()
    target.write_text("keep\n")
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    with pytest.raises(RemoteError) as info:
        await remote.write_file(str(target) + "/not-a-dir/x", b"data")
    assert "cannot write" in info.value.message
    assert target.read_text() == "keep\n"
    await pool.close()


async def test_strict_refuses_unknown_key_with_fingerprint(sshd, tmp_path: Path) -> None:  # noqa: ANN001
    pool = RemotePool()
    remote = pool.get(make_node(sshd, tmp_path / "empty_known_hosts"))
    with pytest.raises(HostKeyError) as info:
        await remote.run("true")
    assert info.value.fingerprint.startswith("SHA256:")
    assert "not in" in info.value.message
    assert not (tmp_path / "empty_known_hosts").exists()
    await pool.close()


async def test_accept_new_pins_then_refuses_a_changed_key(sshd, tmp_path: Path) -> None:  # noqa: ANN001
    kh = tmp_path / "kh"
    seen: list[str] = []

    def confirm(node, host, port, fingerprint):  # noqa: ANN001, ANN202
        seen.append(fingerprint)
        return node.ssh.host_keys == "accept-new"

    pool = RemotePool(confirm_host_key=confirm)
    remote = pool.get(make_node(sshd, kh, host_keys="accept-new"))
    assert (await remote.run("echo hi")).stdout.strip() == "hi"
    assert len(seen) == 1
    assert kh.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    await pool.close()

    old_fp = seen[0]
    sshd.new_host_key()
    pool = RemotePool(confirm_host_key=confirm)
    remote = pool.get(make_node(sshd, kh, host_keys="accept-new"))
    with pytest.raises(HostKeyError) as info:
        await remote.run("true")
    assert "CHANGED" in info.value.message
    assert info.value.known_fingerprint == old_fp
    assert info.value.fingerprint != old_fp
    assert len(seen) == 1  # a changed key is never offered for acceptance
    await pool.close()


async def test_dropped_connection_is_reported(sshd, tmp_path: Path) -> None:  # noqa: ANN001
    kh = tmp_path / "kh"
    kh.write_text(sshd.pinned_line())
    pool = RemotePool()
    remote = pool.get(make_node(sshd, kh))
    assert (await remote.run("true")).ok
    running = asyncio.create_task(remote.run("sleep 5", timeout=10))
    await asyncio.sleep(0.5)
    sshd.drop_connections()
    result = await running
    # the session died with its connection: the effect is unknown, never "success"
    assert result.exit_status is None
    assert "connection lost" in result.stderr
    sshd.stop()
    try:
        with pytest.raises(RemoteError) as info:
            await RemotePool().get(make_node(sshd, kh)).run("true")
        assert "cannot connect" in info.value.message
    finally:
        sshd.start()
    # the pool reconnects once the node is back
    assert (await remote.run("echo back")).stdout.strip() == "back"
    await pool.close()


async def test_local_forward_reaches_a_port_through_the_node(sshd, known) -> None:  # noqa: ANN001
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    listener, port = await remote.forward_local("127.0.0.1", sshd.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    banner = await asyncio.wait_for(reader.readline(), 5)
    assert banner.startswith(b"SSH-2.0-")
    writer.close()
    listener.close()
    await pool.close()


def test_pin_host_key_appends_under_lock(tmp_path: Path) -> None:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    kh = tmp_path / "sub" / "kh"
    pin_host_key(kh, "10.1.1.1", 2222, key)
    text = kh.read_text()
    assert text.startswith("[10.1.1.1]:2222 ssh-ed25519 ")
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
