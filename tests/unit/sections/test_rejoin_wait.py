"""The members wait's shell parts (sections/_rejoin.py), run by the local shell: a read
returns as soon as the log grew since the previous read, else after its bound."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from omwizard.sections._rejoin import log_growth_wait, log_sizes


def sh(script: str) -> str:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          check=True).stdout


def home_with_log(tmp_path: Path) -> tuple[str, Path]:
    log = tmp_path / "logs" / "openmeetings.log"
    log.parent.mkdir()
    log.write_text("started\n")
    return str(tmp_path), log


def test_growth_since_the_previous_read_ends_the_wait_at_once(tmp_path: Path) -> None:
    home, log = home_with_log(tmp_path)
    before = sh(log_sizes(home, str(log)))
    assert before.split() == ["8", "8"]  # the log found twice: as the home's and as named
    with log.open("a") as f:
        f.write("Members {size:2}\n")  # between two reads: not missed
    start = time.monotonic()
    sh(log_growth_wait(home, str(log), before, seconds=3))
    assert time.monotonic() - start < 1.0


def test_growth_during_the_wait_ends_it(tmp_path: Path) -> None:
    home, log = home_with_log(tmp_path)
    before = sh(log_sizes(home, str(log)))

    def grow() -> None:
        time.sleep(0.4)
        with log.open("a") as f:
            f.write("more\n")

    threading.Thread(target=grow).start()
    start = time.monotonic()
    sh(log_growth_wait(home, str(log), before, seconds=5))
    assert 0.3 < time.monotonic() - start < 2.5


def test_no_growth_waits_out_the_bound(tmp_path: Path) -> None:
    home, log = home_with_log(tmp_path)
    before = sh(log_sizes(home, str(log)))
    start = time.monotonic()
    sh(log_growth_wait(home, str(log), before, seconds=0.5))
    assert time.monotonic() - start >= 0.5


def test_a_previous_read_that_is_not_sizes_is_not_put_in_the_script(tmp_path: Path) -> None:
    home, log = home_with_log(tmp_path)
    script = log_growth_wait(home, str(log), "1; rm -rf /", seconds=0.2)
    assert "rm -rf" not in script
    sh(script)
