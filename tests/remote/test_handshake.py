"""The fast SSH login (remote.handshake) against a real OpenSSH sshd on loopback: no `none`
probe, no public-key query, the first USERAUTH_REQUEST sent before SERVICE_ACCEPT arrives;
and every other login path as before: a refused key, a later key accepted, agent keys, a
certificate, a jump host, the plain asyncssh way when its internals are not as expected, and
the off switch. The proof of "fast" is the server's own DEBUG3 log and asyncssh's packet log,
never a time."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from omwizard.lab.loopback_sshd import keygen
from omwizard.plan.model import Node, SSHConfig
from omwizard.remote import handshake
from omwizard.remote.ssh import RemoteError, RemotePool
from tests.needs import need_tool
from tests.remote.conftest import Sshd, started_sshd

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with started_sshd(tmp_path_factory, "handshake", "LogLevel DEBUG3\nMaxStartups 100\n"
                      "TrustedUserCAKeys {dir}/user_ca.pub\n") as sshd:
        yield sshd


@pytest.fixture(autouse=True)
def _fast_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMW_FAST_AUTH", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the agent test's own agent
    monkeypatch.setattr(handshake, "_plain_hosts", set())


class ServerLog:
    """The lines sshd logs from now on (it appends every connection's DEBUG3 lines)."""

    def __init__(self, sshd: Sshd) -> None:
        self.path = sshd.dir / "sshd.log"
        self.start = self.path.stat().st_size

    def lines(self) -> list[str]:
        # the server writes each request's lines before it answers it: they are in by now
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace").splitlines()

    def methods(self) -> list[str]:
        """The methods of the USERAUTH_REQUESTs the server got, in order."""
        return [line.rsplit("method ", 1)[1].split()[0] for line in self.lines()
                if "userauth-request for user" in line]

    def said(self, words: str) -> int:
        return sum(words in line for line in self.lines())


def known(sshd: Sshd, tmp: Path) -> Path:
    path = tmp / "known_hosts"
    path.write_text(sshd.pinned_line())
    return path


def node(sshd: Sshd, tmp: Path, **kw: Any) -> Node:
    ssh = SSHConfig(**{"user": "root", "port": sshd.port, "identity": str(sshd.client_key),
                       "known_hosts": str(known(sshd, tmp)), "connect_timeout": 5, **kw})
    return Node(name="n1", host="127.0.0.1", address="127.0.0.1", ssh=ssh)


async def run_on(n: Node) -> tuple[str, asyncssh.SSHClientConnection]:
    pool = RemotePool()
    try:
        remote = pool.get(n)
        out = (await remote.run("echo hi")).stdout.strip()
        assert remote._conn is not None
        return out, remote._conn
    finally:
        await pool.close()


async def connect_with(sshd: Sshd, tmp: Path, **options: Any) -> asyncssh.SSHClientConnection:
    options = {"port": sshd.port, "username": "root", "known_hosts": str(known(sshd, tmp)),
               "config": None, **options}
    return await handshake.connect("127.0.0.1", **options)


def fast(conn: asyncssh.SSHClientConnection) -> bool:
    return isinstance(conn, handshake.FastAuthConnection) and conn.early


async def test_a_login_sends_its_signed_request_behind_the_service_request(
        server: Sshd, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = ServerLog(server)
    asyncssh.set_debug_level(3)
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncssh"):
            out, conn = await run_on(node(server, tmp_path))
    finally:
        asyncssh.set_debug_level(1)
    assert out == "hi"
    assert fast(conn) and isinstance(conn, handshake.FastAuthConnection)
    assert conn.signed_at_once == 1
    # the server: one request, publickey with its signature; no `none`, no query
    assert log.methods() == ["publickey"]
    assert log.said("attempting public key") == 1 and log.said("querying") == 0
    # asyncssh's packet log: the request went out before the service was accepted
    said = [r.getMessage().split("] ", 1)[-1] for r in caplog.records]  # "[conn=0, ...] "
    packets = [m.split(",")[0] for m in said if m.startswith(("Sent MSG_", "Received MSG_"))]
    sent = packets.index("Sent MSG_USERAUTH_REQUEST (50)")
    assert packets.index("Sent MSG_SERVICE_REQUEST (5)") < sent
    assert sent < packets.index("Received MSG_SERVICE_ACCEPT (6)")
    assert packets.count("Sent MSG_USERAUTH_REQUEST (50)") == 1
    assert "Received MSG_USERAUTH_PK_OK (60)" not in packets


async def test_a_refused_key_says_what_it_said_before(server: Sshd, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(RemoteError) as fast_err:
        await run_on(node(server, tmp_path, identity=str(stranger)))
    monkeypatch.setenv("OMW_FAST_AUTH", "0")
    with pytest.raises(RemoteError) as plain_err:
        await run_on(node(server, tmp_path, identity=str(stranger)))
    assert "was refused" in fast_err.value.message and str(stranger) in fast_err.value.message
    assert (fast_err.value.message, fast_err.value.remedy) == (
        plain_err.value.message, plain_err.value.remedy)


async def test_a_later_key_is_accepted_after_a_refused_one(server: Sshd, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    rsa = keygen(tmp_path / "rsa", "rsa")  # an RSA key: signed with the SHA-2 the server asked for
    (server.dir / "authorized_keys").write_text(
        server.client_key.with_suffix(".pub").read_text() + rsa.with_suffix(".pub").read_text())
    log = ServerLog(server)
    try:
        conn = await connect_with(server, tmp_path, client_keys=[str(stranger), str(rsa)])
        try:
            assert (await conn.run("echo hi", check=True)).stdout == "hi\n"
            assert fast(conn) and isinstance(conn, handshake.FastAuthConnection)
            assert conn.signed_at_once == 2
        finally:
            conn.close()
    finally:
        shutil.copy(server.client_key.with_suffix(".pub"), server.dir / "authorized_keys")
    assert log.methods() == ["publickey", "publickey"]
    assert log.said("querying") == 0 and log.said("rsa-sha2-512") + log.said("rsa-sha2-256") > 0


async def test_without_any_key_asyncssh_asks_the_servers_methods_as_before(
        server: Sshd, tmp_path: Path) -> None:
    log = ServerLog(server)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect_with(server, tmp_path, client_keys=[], agent_path=None)
    assert log.methods() == ["none"]  # no key to offer: the `none` probe, then nothing to try


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent of our own (ended by its pid), its socket in SSH_AUTH_SOCK."""
    need_tool("ssh-agent", "openssh-client")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


async def test_agent_keys_sign_at_once_and_a_later_one_is_accepted(
        server: Sshd, tmp_path: Path, agent: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    for key in (stranger, server.client_key):  # the agent offers them in this order
        subprocess.run(["ssh-add", "-q", str(key)], check=True, env=dict(os.environ),
                       stderr=subprocess.DEVNULL)
    log = ServerLog(server)
    out, conn = await run_on(node(server, tmp_path, identity=None))
    assert out == "hi" and fast(conn)
    assert isinstance(conn, handshake.FastAuthConnection) and conn.signed_at_once == 2
    assert log.methods() == ["publickey", "publickey"] and log.said("querying") == 0


async def test_a_certificate_beside_the_key_logs_in(server: Sshd, tmp_path: Path) -> None:
    ca = keygen(tmp_path / "user_ca")
    shutil.copy(ca.with_suffix(".pub"), server.dir / "user_ca.pub")
    key = keygen(tmp_path / "certified")  # not in authorized_keys: only its certificate counts
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "omw-test", "-n", "root",
                    str(key.with_suffix(".pub"))], check=True)
    assert Path(f"{key}-cert.pub").exists()
    log = ServerLog(server)
    out, conn = await run_on(node(server, tmp_path, identity=str(key)))
    assert out == "hi" and fast(conn)
    assert log.said("querying") == 0 and log.said("cert-v01@openssh.com") > 0


async def test_a_jump_host_and_the_node_behind_it_both_log_in_fast(
        server: Sshd, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host bastion\n    HostName 127.0.0.1\n    Port {server.port}\n    User root\n"
        f"    IdentityFile {server.client_key}\n"
        f"Host inner\n    HostName 127.0.0.1\n    Port {server.port}\n"
        f"    IdentityFile {server.client_key}\n    ProxyJump bastion\n")
    n = node(server, tmp_path, config=str(config), identity=None, port=22)
    n = Node(name="n1", host="inner", address="127.0.0.1", ssh=n.ssh)
    log = ServerLog(server)
    pool = RemotePool()
    try:
        remote = pool.get(n)
        assert (await remote.run("echo hi")).stdout.strip() == "hi"
        assert remote._conn is not None and fast(remote._conn)
        jumps = list(pool._jumps._conns.values())
        assert len(jumps) == 1 and fast(jumps[0])
    finally:
        await pool.close()
    assert log.methods() == ["publickey", "publickey"] and log.said("querying") == 0


def test_every_internal_it_relies_on_is_there() -> None:
    assert handshake.fast_auth_support() is None  # this asyncssh (the pinned one) has them


@pytest.mark.parametrize(("owner", "name", "said"), [
    (asyncssh.auth, "_ClientPublicKeyAuth", "asyncssh.auth._ClientPublicKeyAuth"),
    (asyncssh.SSHClientConnection, "try_next_auth", "SSHClientConnection.try_next_auth"),
    (asyncssh.connection, "_connect", "asyncssh.connection._connect"),
])
def test_a_missing_internal_is_named(owner: object, name: str, said: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(owner, name)
    assert handshake.fast_auth_support() == said


def test_packet_handlers_without_service_accept_are_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncssh.SSHClientConnection, "_packet_handlers", {})
    assert handshake.fast_auth_support() == "SSHClientConnection._packet_handlers"


async def test_without_the_internals_it_expects_it_logs_in_the_plain_way(
        server: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A future asyncssh whose _connect takes other parameters: plain asyncssh.connect."""
    original = asyncssh.connection._connect

    async def changed(*args: Any, **kwargs: Any) -> Any:  # another signature, same work
        return await original(*args, **kwargs)

    monkeypatch.setattr(asyncssh.connection, "_connect", changed)
    assert handshake.fast_auth_support() == "the parameters of asyncssh.connection._connect"
    log = ServerLog(server)
    out, conn = await run_on(node(server, tmp_path))
    assert out == "hi" and not isinstance(conn, handshake.FastAuthConnection)
    assert log.methods() == ["none", "publickey", "publickey"]  # asyncssh's own way
    assert log.said("querying") == 1


async def test_the_off_switch_logs_in_the_plain_way(server: Sshd, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMW_FAST_AUTH", "0")
    log = ServerLog(server)
    out, conn = await run_on(node(server, tmp_path))
    assert out == "hi" and not isinstance(conn, handshake.FastAuthConnection)
    assert log.methods() == ["none", "publickey", "publickey"] and log.said("querying") == 1


async def test_a_server_that_broke_the_early_request_is_then_logged_in_plainly(
        server: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry in remote.ssh after a protocol error goes the plain way (and works)."""
    tried: list[str] = []

    async def breaks(host: str, options: dict[str, Any]) -> asyncssh.SSHClientConnection:
        tried.append(host)
        raise asyncssh.ProtocolError("Unexpected userauth request")

    monkeypatch.setattr(handshake, "_connect_fast", breaks)
    out, conn = await run_on(node(server, tmp_path))
    assert out == "hi" and tried == ["127.0.0.1"]
    assert not isinstance(conn, handshake.FastAuthConnection)
    assert handshake._plain_hosts == {("127.0.0.1", server.port)}
