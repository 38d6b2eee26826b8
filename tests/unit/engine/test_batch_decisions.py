"""How a batched change left `begin` by a kill is decided on resume (engine.batch.decide):
from the progress file its batch kept on the node, else as a single change is."""

from __future__ import annotations

from omwizard.engine.batch import decide, decide_records, progress_path
from omwizard.remote.writes import WRITE_REFUSED

CMD = {"id": "r2", "kind": "command", "progress": "/var/lib/omwizard/lab/batch-r1"}
FILE = {"id": "r3", "kind": "file", "progress": "/var/lib/omwizard/lab/batch-r1"}


def test_a_change_its_node_saw_end_is_ended_as_it_ended() -> None:
    assert decide(CMD, {"r2": (0, False)}) == ("done", "found done on resume")
    assert decide(CMD, {"r2": (2, True)}) == ("aborted", "already in place")
    phase, note = decide(CMD, {"r2": (1, False)}) or ("", "")
    assert phase == "failed" and "exit 1" in note


def test_a_change_that_never_started_did_not_run() -> None:
    assert decide(CMD, {"r1": (0, False)}) == ("aborted", "not run: its batch stopped before it")
    assert decide(CMD, {}) is not None


def test_a_change_in_flight_or_without_its_file_is_left_to_the_check() -> None:
    assert decide(CMD, {"r2": (None, False)}) is None
    assert decide(CMD, None) is None


def test_a_refused_write_is_aborted_not_failed() -> None:
    assert decide(FILE, {"r3": (WRITE_REFUSED, False)})[0] == "aborted"  # type: ignore[index]
    assert decide(CMD, {"r2": (WRITE_REFUSED, False)})[0] == "failed"  # type: ignore[index]


def test_records_are_decided_from_the_file_they_name() -> None:
    texts = {CMD["progress"]: "r1 start\nr1 0\nr2 start\nr2 0\nr3 start\n", "/gone": None}
    other = {"id": "r9", "kind": "command", "progress": "/gone"}
    got = decide_records([CMD, FILE, other], texts)
    assert got == {"r2": ("done", "found done on resume"), "r3": None, "r9": None}


def test_progress_files_are_named_by_cluster_and_first_record() -> None:
    assert progress_path("lab", "abc") == "/var/lib/omwizard/lab/batch-abc"
