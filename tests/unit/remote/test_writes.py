"""The atomic write script (remote.writes), run by the local shell on files in tmp_path: the
compare-and-swap refuses before any backup or write when the file is not as read."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from omwizard.remote.writes import ABSENT, WRITE_REFUSED, write_guard, write_script


def run(script: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", script], input=data, capture_output=True, check=False)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_file_as_read_is_backed_up_and_replaced(tmp_path: Path) -> None:
    target, backup = tmp_path / "a.conf", tmp_path / "backups" / "rec-a.conf"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    out = run(write_script(str(target), backup=str(backup), expect=digest(b"old\n")), b"new\n")
    assert out.returncode == 0, out.stderr
    assert target.read_bytes() == b"new\n"
    assert backup.read_bytes() == b"old\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".omwizard")] == []


def test_a_file_changed_since_it_was_read_is_left_alone(tmp_path: Path) -> None:
    target, backup = tmp_path / "a.conf", tmp_path / "backups" / "rec-a.conf"
    target.write_bytes(b"edited by hand\n")
    out = run(write_script(str(target), backup=str(backup), expect=digest(b"old\n")), b"new\n")
    assert out.returncode == WRITE_REFUSED
    assert b"is not as read" in out.stderr
    assert target.read_bytes() == b"edited by hand\n"
    assert not backup.exists() and not backup.parent.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".omwizard")] == []


def test_absent_means_the_file_must_not_exist(tmp_path: Path) -> None:
    target = tmp_path / "new.conf"
    out = run(write_script(str(target), mode="0600", expect=ABSENT), b"x\n")
    assert out.returncode == 0, out.stderr
    assert target.read_bytes() == b"x\n" and target.stat().st_mode & 0o777 == 0o600
    again = run(write_script(str(target), expect=ABSENT), b"y\n")
    assert again.returncode == WRITE_REFUSED and target.read_bytes() == b"x\n"


def test_a_file_read_as_absent_that_appeared_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "b.conf"
    target.write_bytes(b"")  # an empty file is not an absent one
    out = run(write_script(str(target), expect=ABSENT), b"z\n")
    assert out.returncode == WRITE_REFUSED and target.read_bytes() == b""


def test_without_expect_the_write_is_unconditional(tmp_path: Path) -> None:
    target = tmp_path / "c.conf"
    target.write_bytes(b"whatever\n")
    out = run(write_script(str(target)), b"new\n")
    assert out.returncode == 0 and target.read_bytes() == b"new\n"


def test_a_path_with_shell_characters_is_quoted(tmp_path: Path) -> None:
    target = tmp_path / "we$ird 'name`.conf"
    target.write_bytes(b"1\n")
    out = run(write_script(str(target), expect=digest(b"2\n")), b"3\n")
    assert out.returncode == WRITE_REFUSED and target.read_bytes() == b"1\n"
    out = run(write_script(str(target), expect=digest(b"1\n")), b"3\n")
    assert out.returncode == 0 and target.read_bytes() == b"3\n"


@pytest.mark.parametrize("bad", ["", "abc", "x" * 64, "ABSENT", "0" * 63 + "; rm -rf /"])
def test_an_expectation_that_is_not_a_hash_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        write_guard("/etc/x", bad)
