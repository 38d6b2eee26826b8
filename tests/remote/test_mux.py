"""One channel per node (remote.mux) against a real OpenSSH sshd on loopback: the node's
processes are this machine's, so the tests look at them in /proc."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omwizard.plan.model import Node, SSHConfig
from omwizard.remote.ssh import CommandTimeout, Remote, RemotePool
from tests.remote.conftest import Sshd, started_sshd

pytestmark = pytest.mark.lab

MARK = "OMW-MUX-1"  # in the program's argv


def make_node(server: Sshd, known_hosts: Path) -> Node:
    ssh = SSHConfig(user="root", port=server.port, identity=str(server.client_key),
                    known_hosts=str(known_hosts), connect_timeout=5)
    return Node(name="n1", host="127.0.0.1", address="127.0.0.1", ssh=ssh)


def known_for(server: Sshd, tmp_path: Path) -> Path:
    path = tmp_path / f"known_hosts_{server.port}"
    path.write_text(server.pinned_line())
    return path


@pytest.fixture
def known(sshd: Sshd, tmp_path: Path) -> Path:
    return known_for(sshd, tmp_path)


def client_port(remote: Remote) -> int:
    assert remote._conn is not None
    return int(remote._conn.get_extra_info("sockname")[1])


def session_processes(port: int) -> dict[int, tuple[int, str, str, int]]:
    """pid -> (ppid, state, cmdline, threads) of every process that came through the SSH
    connection from local `port` (sshd put it in SSH_CONNECTION; children inherit it)."""
    found: dict[int, tuple[int, str, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            if not any(v.startswith(b"SSH_CONNECTION=127.0.0.1 %d " % port) for v in env):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            threads = len(list((entry / "task").iterdir()))
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), fields[0], cmdline, threads)
    return found


def eventually(probe: Callable[[], bool], seconds: float = 15) -> bool:
    """A bounded wait for something the node does on its own (never a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return probe()


def running(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    pids.append(int(entry.name))
            except (OSError, UnicodeDecodeError):
                pass
    return pids


async def test_many_commands_at_once_share_one_channel(sshd: Sshd, known: Path,
                                                       tmp_path: Path) -> None:
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    meet = tmp_path / "meet"
    meet.mkdir()
    count = 24

    def one(i: int) -> str:  # each waits until all have started: they run at once
        return (f"touch {meet}/{i}; n=0; while [ $(ls {meet} | wc -l) -lt {count} ]; do "
                f"sleep 0.05; n=$((n+1)); [ $n -gt 400 ] && exit 9; done; echo {i}; "
                f"echo e{i} >&2; exit {i % 5}")

    assert (await remote.run("echo up")).stdout == "up\n"  # the program runs
    results = await asyncio.gather(*(remote.run(one(i), timeout=60) for i in range(count)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(count)]
    assert [r.stderr for r in results] == [f"e{i}\n" for i in range(count)]
    assert [r.exit_status for r in results] == [i % 5 for i in range(count)]
    assert remote.channels == 1 and remote.connects == 1
    killed = await remote.run("echo before; kill -9 $$")
    assert (killed.exit_status, killed.stdout) == (255, "before\n")  # a signal death, as today

    # every command reaped, every thread of the program ended; one program on the node
    port = client_port(remote)
    procs = session_processes(port)
    programs = [pid for pid, (_, _, cmd, _) in procs.items() if MARK in cmd]
    assert len(programs) == 1, procs
    program = programs[0]
    assert eventually(lambda: session_processes(port)[program][3] == 1)
    assert [p for p, (ppid, *_) in session_processes(port).items() if ppid == program] == []
    await pool.close()
    assert eventually(lambda: not session_processes(port))  # no program left once closed


async def test_binary_stdin_and_stdout_of_megabytes_are_byte_exact(
        sshd: Sshd, known: Path, tmp_path: Path) -> None:
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    data = os.urandom(6 * 1024 * 1024 + 7) + b"\r\n\x00\xff"
    echoed = await remote._run("cat", input=data, binary=True, timeout=60)
    assert echoed.status == 0 and echoed.stdout == data  # in and out at the same time
    target = tmp_path / "blob"
    await remote.write_file(str(target), data)
    assert target.read_bytes() == data
    local = tmp_path / "local"
    local.write_bytes(data[::-1])
    assert await remote.read_file(str(local)) == data[::-1]
    changed = await remote.run_changes(f"cat > {tmp_path}/changed; wc -c < {tmp_path}/changed",
                                       data, timeout=60)
    assert changed.stdout.strip() == str(len(data))
    assert (tmp_path / "changed").read_bytes() == data
    assert remote.channels == 1
    await pool.close()


async def test_a_streamed_commands_lines_arrive_before_it_ends(sshd: Sshd, known: Path,
                                                               tmp_path: Path) -> None:
    """The command ends only once this side saw its first line (it waits for a file the
    line sink creates), so on_line is called while it runs."""
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    go = tmp_path / "go"
    lines: list[str] = []

    def sink(line: str) -> None:
        lines.append(line)
        if line == "listening on lo":
            go.touch()

    result = await remote.run(
        f"echo warn >&2; printf 'listening on lo\\n'; n=0; while [ ! -e {go} ]; do sleep 0.05; "
        f"n=$((n+1)); [ $n -gt 400 ] && exit 9; done; printf 'got\\nno newline'",
        on_line=sink, timeout=60)
    assert result.ok
    assert result.stdout == "listening on lo\ngot\nno newline"
    assert sorted(lines) == ["got", "listening on lo", "no newline", "warn"]
    assert lines.index("listening on lo") < lines.index("got")
    await pool.close()


async def test_a_timeout_kills_the_commands_process_group(sshd: Sshd, known: Path) -> None:
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    assert (await remote.run("true")).ok
    with pytest.raises(CommandTimeout) as info:
        await remote.run("sleep 987.25 & sleep 987.5; wait", timeout=1)
    assert "did not finish within 1s" in info.value.message
    assert eventually(lambda: not running("sleep 987.25") and not running("sleep 987.5"))
    assert (await remote.run("echo alive")).stdout == "alive\n"
    assert remote.channels == 1
    await pool.close()


async def test_a_commands_own_failure_and_a_bad_frame_end_it_clearly(
        sshd: Sshd, known: Path) -> None:
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    huge = await remote.run("true #" + "x" * 200_000)  # over the node's argument limit
    assert huge.exit_status == 127 and "cannot run" in huge.stderr
    assert "Argument list too long" in huge.stderr
    pending = asyncio.create_task(remote.run("sleep 0.5; echo late", timeout=20))
    await asyncio.sleep(0.2)
    assert remote._mux is not None
    remote._mux._write(b"\xfe" * 9)  # not a frame the program knows
    result = await pending
    assert result.exit_status is None
    assert "refused a frame" in result.stderr and "connection lost" in result.stderr
    assert (await remote.run("echo next")).stdout == "next\n"  # a new program
    assert remote.channels == 2 and remote.connects == 1
    await pool.close()


async def test_a_dropped_connection_leaves_running_commands_to_finish(
        sshd: Sshd, tmp_path: Path) -> None:
    known = known_for(sshd, tmp_path)
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    assert (await remote.run("true")).ok
    port = client_port(remote)
    done = tmp_path / "done"
    running_task = asyncio.create_task(
        remote.run(f"sleep 1.5; echo ok > {done}; echo said", timeout=30))
    fed = tmp_path / "fed"
    reading = asyncio.create_task(remote.run(f"sleep 1.5; cat > {fed}", input="x" * 100,
                                             timeout=30))
    await asyncio.sleep(0.5)
    sshd.drop_connections()
    for result in await asyncio.gather(running_task, reading):
        assert result.exit_status is None  # unknown, never success
        assert "connection lost" in result.stderr
    # the command was not killed: it writes its file (a batch writes its progress file)
    assert eventually(lambda: done.exists() and done.read_text() == "ok\n")
    assert eventually(lambda: fed.exists() and fed.read_text() == "x" * 100)
    # then the program ends: no process of that connection is left, none a zombie
    assert eventually(lambda: not session_processes(port))
    assert (await remote.run("echo back")).stdout == "back\n"
    assert remote.connects == 2 and remote.channels == 2
    await pool.close()


async def test_the_off_switch_runs_each_command_on_its_own_channel(
        sshd: Sshd, known: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMW_MUX", "0")
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    results = await asyncio.gather(remote.run("echo a"), remote.run("cat", input="b"),
                                   remote.run("exit 3"))
    assert [(r.exit_status, r.stdout) for r in results] == [(0, "a\n"), (0, "b"), (3, "")]
    assert remote.channels == 3
    assert not any(MARK in cmd for _, _, cmd, _ in session_processes(client_port(remote)).values())
    await pool.close()


# -- a node without python3 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd_without_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A second sshd whose sessions get a PATH with no python3 (SetEnv; HOME too, so no
    login script puts one back), as on a minimal node; shell builtins still work."""
    server = started_sshd(tmp_path_factory, "sshd-nopy", "SetEnv PATH={dir}/bin HOME={dir}\n")
    (server.dir / "bin").mkdir()
    os.symlink(shutil.which("sleep") or "/bin/sleep", server.dir / "bin" / "sleep")
    try:
        yield server
    finally:
        server.stop()


async def test_a_node_without_python3_runs_commands_on_channels_as_before(
        sshd_without_python: Sshd, tmp_path: Path) -> None:
    server = sshd_without_python
    pool = RemotePool()
    remote = pool.get(make_node(server, known_for(server, tmp_path)))
    once = tmp_path / "once"
    # the first command started the program, which could not start: it ran again, once
    # (the others came while it tried, each with stdin: each ran once, on a channel)
    first, second, *others = await asyncio.gather(
        remote.run(f"read x; echo $x >> {once}; echo first", input="in\n"),
        remote.run("echo second; exit 4"),
        *(remote.run(f"read x; echo $x; echo {i} >> {once}", input=f"i{i}\n")
          for i in range(8)))
    assert (first.exit_status, first.stdout) == (0, "first\n")
    assert (second.exit_status, second.stdout) == (4, "second\n")
    assert [(r.exit_status, r.stdout) for r in others] == [(0, f"i{i}\n") for i in range(8)]
    assert sorted(once.read_text().split()) == sorted(["in", *map(str, range(8))])
    assert remote.channels == 11  # the program's try, then one channel per command
    # decided once per connection: no further try
    assert (await remote.run("command -v python3 || echo none")).stdout == "none\n"
    assert remote.channels == 12
    with pytest.raises(CommandTimeout):  # the old path's timeout still holds here
        await remote.run("sleep 30", timeout=0.5)
    await pool.close()


async def test_commands_sent_while_the_program_starts_take_channels_of_their_own(
        sshd: Sshd, known: Path) -> None:
    """A check's first burst (its gather, clock, ports, multicast probes): the first command
    starts the program, the others do not wait for it (a frame would cost a 3rd round trip)
    but run at once on their own channels; the next command is a frame."""
    pool = RemotePool()
    remote = pool.get(make_node(sshd, known))
    burst = await asyncio.gather(*(remote.run(f"echo {i}") for i in range(5)))
    assert [r.stdout for r in burst] == [f"{i}\n" for i in range(5)]
    assert remote.channels == 5  # the program's (with the first command in it) + 4 of their own
    later = await asyncio.gather(*(remote.run(f"echo {i}") for i in range(5)))
    assert [r.stdout for r in later] == [f"{i}\n" for i in range(5)]
    assert remote.channels == 5 and remote.connects == 1
    await pool.close()
