"""A batch that reads the node back after its changes (remote.batch `reads`, issue 21), run
by the local shell in tmp_path: the reads come after every change whatever their outcome,
behind their own marker, so neither a change's output nor a read's passes for the other's;
they take no stdin, write no progress, end within their bound, and files come back
byte-exact."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from omwizard.engine.step import FILES_PART, file_dump_script, parse_file_dump
from omwizard.remote import batch as remote_batch
from omwizard.remote.batch import (
    CommandItem,
    FileItem,
    batch_script,
    parse_batch,
    parse_progress,
    split_reads,
)
from omwizard.remote.parts import part_results, parts_script
from omwizard.remote.results import RunResult
from omwizard.remote.writes import ABSENT

TOKEN = "0123456789abcdef0123456789abcdef"


def sh(script: str, stdin: bytes) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, check=False,
                          timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode(errors="surrogateescape"),
                                       proc.stderr.decode())


def q(path: Path) -> str:
    return shlex.quote(str(path))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reads_of(parts: dict[str, str], out: subprocess.CompletedProcess[str]
             ) -> dict[str, RunResult]:
    said = split_reads(out.stdout, TOKEN)[1]
    assert said is not None, out.stdout
    return part_results(parts, RunResult("reads", out.returncode, said, out.stderr))


def test_the_reads_see_the_node_after_the_changes(tmp_path: Path) -> None:
    flag, conf = tmp_path / "flag", tmp_path / "a.conf"
    new = b"written\n"
    items = [CommandItem("r1", f"echo on > {q(flag)}"),
             FileItem("r2", str(conf), new, expect=ABSENT, after=digest(new))]
    parts = {"flag": f"cat {q(flag)}", "both": f"ls {q(tmp_path)}",
             FILES_PART: file_dump_script([str(conf)])}
    script, stdin = batch_script(items, str(tmp_path / "p"), reads=parts_script(parts),
                                 token=TOKEN)
    out = sh(script, stdin)
    ready, outcomes = parse_batch(out.stdout, 2, TOKEN)
    assert ready and [o.status for o in outcomes] == [0, 0]
    got = reads_of(parts, out)
    assert (got["flag"].exit_status, got["flag"].stdout) == (0, "on\n")
    assert "a.conf" in got["both"].stdout and "flag" in got["both"].stdout
    assert parse_file_dump(got[FILES_PART].stdout, [str(conf)]) == {str(conf): "written\n"}
    # the reads leave the progress file as the changes left it
    assert parse_progress((tmp_path / "p").read_text()) == {"r1": (0, False), "r2": (0, False)}


def test_the_reads_run_after_a_failure_and_see_what_it_left(tmp_path: Path) -> None:
    made, never = tmp_path / "made", tmp_path / "never"
    items = [CommandItem("r1", f"touch {q(made)}"),
             CommandItem("r2", "echo boom >&2; exit 3"),
             CommandItem("r3", f"touch {q(never)}", input=b"unread input\n")]
    parts = {"look": f"ls {q(tmp_path)}", "stdin": "cat; echo end"}
    script, stdin = batch_script(items, str(tmp_path / "p"), reads=parts_script(parts),
                                 token=TOKEN)
    out = sh(script, stdin)
    _ready, outcomes = parse_batch(out.stdout, 3, TOKEN)
    assert [o.status for o in outcomes] == [0, 3, None]
    assert not outcomes[2].started and not never.exists()
    got = reads_of(parts, out)
    assert "made" in got["look"].stdout and "never" not in got["look"].stdout
    # the input the batch did not use is not the reads' stdin (they read /dev/null)
    assert got["stdin"].stdout == "end\n"


def test_no_output_passes_for_the_others_markers(tmp_path: Path) -> None:
    # a change prints what looks like the reads' marker (a wrong token) and a parts marker;
    # a read prints what looks like the batch's end marker
    fake_reads = "printf '\\n\\036OMWB reads %s\\n\\n\\036OMW 0 look\\nforged\\n' " + "f" * 32
    items = [CommandItem("r1", fake_reads), CommandItem("r2", "true")]
    parts = {"look": "echo real", "forge": "printf '\\n\\036OMWB end 0 7\\nx\\n'"}
    script, stdin = batch_script(items, str(tmp_path / "p"), reads=parts_script(parts),
                                 token=TOKEN)
    out = sh(script, stdin)
    _ready, outcomes = parse_batch(out.stdout, 2, TOKEN)
    assert [o.status for o in outcomes] == [0, 0]  # not 7: the read's marker is not theirs
    got = reads_of(parts, out)
    assert got["look"].stdout == "real\n"  # not "forged": the change's print is not a read


def test_reads_not_reached_are_none_and_a_script_without_reads_has_none() -> None:
    cut = "\n\036OMWB ready\n\n\036OMWB start 0\nok\n\036OMWB end 0 0\n"
    assert split_reads(cut, TOKEN) == (cut, None)
    assert split_reads(cut + f"\n\036OMWB reads {TOKEN}\n", TOKEN) == (cut, "")
    assert split_reads(cut, "")[1] is None


def test_a_read_that_hangs_ends_within_its_bound_and_keeps_the_outcomes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_batch, "READS_TIMEOUT", 1)
    flag = tmp_path / "flag"
    items = [CommandItem("r1", f"touch {q(flag)}")]
    parts = {"quick": "echo quick", "hangs": "sleep 30", "after": "echo after"}
    script, stdin = batch_script(items, str(tmp_path / "p"), reads=parts_script(parts),
                                 token=TOKEN)
    start = time.monotonic()
    out = sh(script, stdin)
    assert time.monotonic() - start < 20  # the bound, not the read, ended it
    _ready, outcomes = parse_batch(out.stdout, 1, TOKEN)
    assert outcomes[0].ok and flag.exists()
    got = reads_of(parts, out)
    assert (got["quick"].exit_status, got["quick"].stdout) == (0, "quick\n")
    assert got["hangs"].exit_status is None and got["after"].exit_status is None


def test_files_come_back_byte_exact(tmp_path: Path) -> None:
    data = bytes(range(256)) + b"\n\036OMWB end 0 1\n\r\n no newline"
    binary = tmp_path / "bin.conf"
    items = [FileItem("r1", str(binary), data, expect=ABSENT, after=digest(data))]
    parts = {FILES_PART: file_dump_script([str(binary), str(tmp_path / "absent")])}
    script, stdin = batch_script(items, str(tmp_path / "p"), reads=parts_script(parts),
                                 token=TOKEN)
    out = sh(script, stdin)
    got = parse_file_dump(reads_of(parts, out)[FILES_PART].stdout,
                          [str(binary), str(tmp_path / "absent")])
    text = got[str(binary)]
    assert text is not None and text.encode("utf-8", errors="surrogateescape") == data
    assert got[str(tmp_path / "absent")] is None


@pytest.mark.parametrize("bad", ["", "a b", "$(id)"])
def test_reads_need_a_word_for_a_token(bad: str) -> None:
    with pytest.raises(ValueError):
        batch_script([CommandItem("r1", "true")], "/tmp/p", reads="echo x", token=bad)
