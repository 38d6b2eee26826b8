"""A batch of journaled changes in one script (remote.batch), run by the local shell in
tmp_path: each change's outcome between markers and in the progress file, stdin split
exactly, the first failure ends the batch, a file not as read is refused."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from pathlib import Path

import pytest

from omwizard.remote.batch import (
    CommandItem,
    FileItem,
    batch_script,
    parse_batch,
    parse_progress,
)
from omwizard.remote.writes import ABSENT, WRITE_REFUSED


def sh(script: str, stdin: bytes) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, check=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def q(path: Path) -> str:
    return shlex.quote(str(path))


def test_every_change_runs_in_order_with_its_own_stdin(tmp_path: Path) -> None:
    conf, got1, got2 = tmp_path / "a.conf", tmp_path / "in1", tmp_path / "in2"
    conf.write_bytes(b"old\n")
    secret1, secret2 = b"CREATE USER x IDENTIFIED BY 'pw1';\n", b"binary \x00\xff tail"
    new = b"new content\n" * 500
    items = [
        CommandItem("r1", f"cat > {q(got1)}", input=secret1),
        FileItem("r2", str(conf), new, expect=digest(b"old\n"), after=digest(new),
                 backup=str(tmp_path / "bk" / "r2-a.conf")),
        CommandItem("r3", f"cat > {q(got2)}", input=secret2),
        CommandItem("r4", "echo made it; echo to stderr >&2"),
    ]
    script, stdin = batch_script(items, str(tmp_path / "progress" / "batch-r1"))
    assert b"pw1" not in script.encode() and "pw1" not in script
    out = sh(script, stdin)
    assert out.returncode == 0, out.stderr
    ready, outcomes = parse_batch(out.stdout, len(items))
    assert ready
    assert [o.status for o in outcomes] == [0, 0, 0, 0]
    assert got1.read_bytes() == secret1 and got2.read_bytes() == secret2
    assert conf.read_bytes() == new
    assert (tmp_path / "bk" / "r2-a.conf").read_bytes() == b"old\n"
    assert "made it" in outcomes[3].output and "to stderr" in outcomes[3].output
    progress = parse_progress((tmp_path / "progress" / "batch-r1").read_text())
    assert progress == {"r1": (0, False), "r2": (0, False), "r3": (0, False), "r4": (0, False)}


def test_the_first_failure_ends_the_batch(tmp_path: Path) -> None:
    marker = tmp_path / "should-not-exist"
    items = [
        CommandItem("r1", "true"),
        CommandItem("r2", "echo boom >&2; exit 3"),
        CommandItem("r3", f"touch {q(marker)}"),
    ]
    script, stdin = batch_script(items, str(tmp_path / "p"))
    out = sh(script, stdin)
    _ready, outcomes = parse_batch(out.stdout, 3)
    assert [o.status for o in outcomes] == [0, 3, None]
    assert [o.started for o in outcomes] == [True, True, False]
    assert "boom" in outcomes[1].output
    assert not marker.exists()
    assert parse_progress((tmp_path / "p").read_text()) == {"r1": (0, False), "r2": (3, False)}


def test_already_so_is_not_a_failure(tmp_path: Path) -> None:
    after = tmp_path / "after"
    items = [
        CommandItem("r1", "echo 'RTNETLINK answers: File exists' >&2; exit 2",
                    ok_text=("File exists",)),
        CommandItem("r2", f"touch {q(after)}"),
    ]
    script, stdin = batch_script(items, str(tmp_path / "p"))
    _ready, outcomes = parse_batch(sh(script, stdin).stdout, 2)
    assert (outcomes[0].status, outcomes[0].already) == (2, True)
    assert outcomes[1].ok and after.exists()
    assert parse_progress((tmp_path / "p").read_text())["r1"] == (2, True)


def test_a_file_not_as_read_is_refused_and_nothing_after_it_runs(tmp_path: Path) -> None:
    conf, later = tmp_path / "b.conf", tmp_path / "later"
    conf.write_bytes(b"changed by hand\n")
    items = [
        FileItem("r1", str(conf), b"ours\n", expect=digest(b"as read\n"), after=digest(b"ours\n")),
        CommandItem("r2", f"touch {q(later)}"),
    ]
    script, stdin = batch_script(items, str(tmp_path / "p"))
    _ready, outcomes = parse_batch(sh(script, stdin).stdout, 2)
    assert outcomes[0].refused and outcomes[0].status == WRITE_REFUSED
    assert not outcomes[1].started and not later.exists()
    assert conf.read_bytes() == b"changed by hand\n"


def test_a_new_file_and_a_failed_write_leave_no_temp_file(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    items = [
        FileItem("r1", str(tmp_path / "new.conf"), b"x\n", expect=ABSENT, after=digest(b"x\n"),
                 mode="0600"),
        FileItem("r2", str(folder / "missing-dir" / "f"), b"y\n", expect=ABSENT,
                 after=digest(b"y\n")),
    ]
    script, stdin = batch_script(items, str(tmp_path / "p"))
    _ready, outcomes = parse_batch(sh(script, stdin).stdout, 2)
    assert outcomes[0].ok and (tmp_path / "new.conf").stat().st_mode & 0o777 == 0o600
    assert outcomes[1].ran and not outcomes[1].ok
    assert not [p for p in tmp_path.rglob(".omwizard.*")]


def test_content_that_does_not_match_its_hash_is_not_installed(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    items = [FileItem("r1", str(conf), b"abc\n", expect=ABSENT, after=digest(b"other\n"))]
    script, stdin = batch_script(items, str(tmp_path / "p"))
    _ready, outcomes = parse_batch(sh(script, stdin).stdout, 1)
    assert outcomes[0].ran and not outcomes[0].ok
    assert "did not arrive whole" in outcomes[0].output
    assert not conf.exists()


def test_a_cut_output_leaves_the_rest_undecided() -> None:
    text = "\n\036OMWB ready\n\n\036OMWB start 0\nok\n\036OMWB end 0 0\n\n\036OMWB start 1\npart"
    ready, outcomes = parse_batch(text, 3)
    assert ready
    assert [(o.started, o.status) for o in outcomes] == [(True, 0), (True, None), (False, None)]


def test_progress_lines_cut_by_a_crash_stay_undecided() -> None:
    text = "r1 start\nr1 0\nr2 start\nr2 1\nr3 start\nr3"
    assert parse_progress(text) == {"r1": (0, False), "r2": (1, False), "r3": (None, False)}


@pytest.mark.parametrize("bad", ["", "a b", "x;rm", "$(id)"])
def test_record_ids_must_be_words(bad: str) -> None:
    with pytest.raises(ValueError):
        batch_script([CommandItem(bad, "true")], "/tmp/p")
