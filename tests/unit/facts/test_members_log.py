"""verify's reads after issue 21: the members read as a declared fact (only the lines
read_log reads, with the logs' sizes) and the restart's wait for the start, both run for real
with /bin/sh on temporary logs in the lab's log format."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from omwizard.facts import verify as vf
from omwizard.facts.verify import RestartState
from omwizard.sections._rejoin import log_sizes
from omwizard.sections.verify import restart_argv, started_wait
from tests.unit.facts.test_verify import EXPECTED, START, STARTED, P, block

STANDALONE_RUN = START + f"{P}{vf.STANDALONE}\n" + STARTED
NOISE = "2026-11-25 08:02:40 INFO org.apache.wicket - ]\nsome line with Member in it\n  }x\n"


def sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True)


def same_facts(a: vf.LogFacts, b: vf.LogFacts) -> bool:
    """Equal but for line numbers (the filtered text has fewer lines)."""
    def key(f: vf.LogFacts) -> tuple:
        blk = f.block
        return (f.started_line is None, f.state, f.standalone, f.blocks,
                (blk.size, blk.version, blk.members, blk.this) if blk else None)
    return key(a) == key(b)


LOGS = [
    START + block(2, 2, ["198.18.0.11", "198.18.0.12"]) + NOISE + STARTED
    + block(3, 3, list(EXPECTED.values())),
    START + block(3, 3, list(EXPECTED.values())) + STARTED + NOISE
    + f"{P}[198.18.0.11]:5701 is SHUTTING_DOWN\n{P}[198.18.0.11]:5701 is SHUTDOWN\n",
    START + block(3, 3, list(EXPECTED.values())) + STARTED + STANDALONE_RUN + NOISE,
    NOISE,
]


def test_the_fact_reads_what_the_whole_tail_says(tmp_path: Path) -> None:
    home = tmp_path / "om"
    (home / "logs").mkdir(parents=True)
    log = home / "logs" / "openmeetings.log"
    for text in LOGS:
        log.write_text(text)
        got = sh(vf.members_log_command(str(home)))
        assert got.returncode == 0
        tail = vf.MEMBERS_LOG.parse(got.stdout)
        assert same_facts(vf.read_log(tail.text), vf.read_log(text))
        assert len(tail.text) < len(text) or text == NOISE
        # the sizes are what the rejoin wait compares with: the same line as log_sizes'
        assert tail.sizes == sh(log_sizes(str(home), str(log))).stdout


def test_the_fact_with_no_log_prints_sizes_only_and_succeeds(tmp_path: Path) -> None:
    got = sh(vf.members_log_command(str(tmp_path)))
    assert got.returncode == 0 and vf.parse_log_tail(got.stdout).text == ""
    facts = vf.read_log("")
    assert not vf.judge_members(facts, "n1", EXPECTED, "x.log").ok


def test_the_wait_for_the_start_looks_after_the_offset_only(tmp_path: Path) -> None:
    log = tmp_path / "openmeetings.log"
    old = START + STARTED
    log.write_text(old)
    began = time.monotonic()
    got = sh(started_wait(str(log), len(old), seconds=1))  # the old start does not count
    assert got.returncode == 1 and "no start in" in got.stdout
    assert time.monotonic() - began < 5
    log.write_text(old + START + block(3, 3, list(EXPECTED.values())) + STARTED)
    got = sh(started_wait(str(log), len(old), seconds=5))
    assert got.returncode == 0 and "is STARTED" in got.stdout and "Members {size" in got.stdout


def test_the_wait_reads_a_replaced_log_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "openmeetings.log"
    log.write_text(START + STARTED)  # shorter than the offset: rotated, read from 0
    got = sh(started_wait(str(log), 10_000, seconds=3))
    assert got.returncode == 0 and "is STARTED" in got.stdout


def fake_om(tmp: Path, startup: str) -> str:
    """An om_home whose bin/startup.sh runs `startup` (shutdown.sh does nothing)."""
    home = tmp / "om"
    (home / "bin").mkdir(parents=True)
    (home / "logs").mkdir()
    for name, body in (("shutdown.sh", "true"), ("startup.sh", startup)):
        script = home / "bin" / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return str(home)


def test_a_failed_start_script_ends_the_restart_at_once(tmp_path: Path) -> None:
    home = fake_om(tmp_path, "echo 'no stand-in' >&2; exit 1")
    seen = RestartState(f"{home}/logs/openmeetings.log", 0, systemd=False)
    began = time.monotonic()
    got = subprocess.run(restart_argv(home, seen, seconds=30), capture_output=True, text=True)
    assert got.returncode == 1 and "no stand-in" in got.stderr
    assert time.monotonic() - began < 5  # not the wait's 30 s


def test_the_restart_ends_when_the_new_start_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "om" / "logs" / "openmeetings.log"
    home = fake_om(tmp_path, f"(sleep 1; printf '%s' {shlex.quote(START + STARTED)} >> {log}) &")
    log.write_text(START + STARTED)  # the previous run's start: not this one
    seen = RestartState(str(log), 0, systemd=False)  # the size is read by the command itself
    got = subprocess.run(restart_argv(home, seen, seconds=10), capture_output=True, text=True)
    assert got.returncode == 0 and "is STARTED" in got.stdout
    assert "systemctl restart openmeetings && {" in restart_argv(
        home, RestartState(str(log), 0, systemd=True))[2]


def test_the_restart_command_is_the_same_text_at_any_log_size(tmp_path: Path) -> None:
    """The journal names a change by its command: a resumed or repeated run restarting the
    node must name it the same, whatever the log's size when its check read it."""
    log = str(tmp_path / "openmeetings.log")
    assert restart_argv("/opt/om", RestartState(log, 10, systemd=False)) == restart_argv(
        "/opt/om", RestartState(log, 99_999, systemd=False))


def test_the_wait_prints_what_read_log_needs_of_this_start(tmp_path: Path) -> None:
    """The restart's own output (verify.restart, wait_member's `said`): this start's lifecycle
    and members lines, read as the whole log's lines after the offset read, noise left out,
    so a node back at once needs no read of its own."""
    log = tmp_path / "openmeetings.log"
    old = START + block(2, 2, ["198.18.0.11", "198.18.0.12"]) + STARTED
    new = START + NOISE + block(3, 3, list(EXPECTED.values())) + NOISE + STARTED
    log.write_text(old + new)
    got = sh(started_wait(str(log), len(old), seconds=3))
    assert got.returncode == 0
    assert same_facts(vf.read_log(got.stdout), vf.read_log(new))
    assert vf.read_log(got.stdout).block is not None
    assert {a for a, _ in vf.read_log(got.stdout).block.members} == set(EXPECTED.values())
    assert "some line with Member" not in got.stdout  # the noise is not printed
