"""The shared-files proof as one command per node (issue 21): the writer's and the readers'
scripts run for real in local shells on a temporary folder, started apart."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from omwizard.facts.storage import (
    SHARED_HOLD,
    SHARED_LOOKS,
    shared_hold_command,
    shared_names,
    shared_read_command,
    shared_write_command,
)

TOKEN = "0123abcd"


def sh(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_reader_started_first_sees_the_file_under_a_name_it_had_not_looked_up(tmp_path: Path):
    probe = str(tmp_path / f".omwizard-shared-{TOKEN}")
    reader = sh(shared_read_command(probe))
    time.sleep(0.35)  # the writer starts late: the reader's first looks find nothing
    began = time.monotonic()
    writer = sh(shared_write_command("root", TOKEN, probe) + "; " + shared_hold_command(probe))
    out, _ = reader.communicate(timeout=10)
    assert out == TOKEN  # exactly the token, as the check compares it
    writer.communicate(timeout=10)
    assert time.monotonic() - began >= SHARED_HOLD - 0.1  # kept while the readers looked
    assert not list(tmp_path.iterdir())  # and removed


def test_a_reader_that_never_sees_it_ends_after_its_looks_with_cats_error(tmp_path: Path):
    probe = str(tmp_path / "nothing")
    began = time.monotonic()
    proc = sh(shared_read_command(probe))
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - began
    assert proc.returncode != 0 and out == "" and "No such file" in err
    assert SHARED_LOOKS[-1] - 0.1 <= took < SHARED_LOOKS[-1] + 1.5


def test_a_failed_write_is_not_held(tmp_path: Path):
    probe = str(tmp_path / "missing-folder" / "p")
    write = subprocess.run(["sh", "-c", shared_write_command("root", TOKEN, probe)],
                           capture_output=True, text=True)
    assert write.returncode != 0
    began = time.monotonic()
    subprocess.run(["sh", "-c", shared_hold_command(probe)], check=True)
    assert time.monotonic() - began < 1


def test_names_and_the_users_write():
    names = shared_names("/d/p")
    assert len(names) == len(SHARED_LOOKS) and len(set(names)) == len(names)
    cmd = shared_write_command("nobody", TOKEN, "/d/p")
    assert cmd.startswith("runuser -u nobody -- sh -c ")
    assert all(n in cmd for n in names) and "umask 022" in cmd
