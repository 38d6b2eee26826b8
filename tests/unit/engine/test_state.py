"""Session state: atomic writes, modes, lock across processes, journal, corrupt files."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omwizard.engine import state as state_mod
from omwizard.engine.state import (
    StateError,
    StateLocked,
    StateStore,
    default_state_dir,
    list_sessions,
)
from omwizard.plan.model import Secret

REPO = Path(__file__).resolve().parents[3]


def record(**extra: object) -> dict[str, object]:
    rec: dict[str, object] = {"section": "network", "step": "multicast-route", "node": "om1",
                              "kind": "command", "target": "ip route add 224.0.0.0/4 dev eth0",
                              "undo": "ip route del 224.0.0.0/4 dev eth0",
                              "undo_argv": ["ip", "route", "del", "224.0.0.0/4", "dev", "eth0"]}
    rec.update(extra)
    return rec


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state" / "prod")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------ location


def test_default_dir_uses_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir("prod") == tmp_path / "xdg" / "omwizard" / "prod"


@pytest.mark.parametrize("value", [None, "", "relative/dir"])
def test_default_dir_falls_back_to_local_state(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, value: str | None) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", value)
    assert default_state_dir("prod") == tmp_path / ".local" / "state" / "omwizard" / "prod"


# ------------------------------------------------------------------ files and modes


def test_files_are_0600_and_directory_0700(store: StateStore) -> None:
    old = os.umask(0)
    try:
        store.lock()
        store.save_plan("omwizard: 1\n")
        store.set_result("network/multicast-route/om1", {"status": "ok"})
        store.set_answer("verify.two-users", {"passed": True})
        store.touch(section="network")
        store.journal_begin(record())
    finally:
        os.umask(old)
    assert mode(store.directory) == 0o700
    names = sorted(p.name for p in store.directory.iterdir())
    assert names == ["answers.json", "journal.json", "lock", "meta.json", "plan.yaml",
                     "results.json"]
    for p in store.directory.iterdir():
        assert mode(p) == 0o600, p


def test_existing_wide_directory_is_tightened(tmp_path: Path) -> None:
    d = tmp_path / "prod"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    StateStore(d).save_plan("x")
    assert mode(d) == 0o700


def test_reading_an_empty_store_gives_empty_values(store: StateStore) -> None:
    assert store.load_plan_text() is None
    assert store.journal() == [] and store.results() == {} and store.answers() == {}
    assert store.meta() == {}
    assert not store.directory.exists()  # reading creates nothing


def test_plan_results_answers_meta_round_trip(store: StateStore) -> None:
    store.save_plan("omwizard: 1\ncluster: {name: prod}\n")
    store.set_result("network/multicast-route/om1", {"status": "ok", "detail": "d"})
    store.set_result("network/multicast-route/om1", {"status": "changed", "detail": "e"})
    store.set_result("storage/export/om1", {"status": "failed"})
    store.set_answer("verify.same-room", {"passed": False, "note": "no video"})
    store.touch(section="network")
    store.touch(node="om1")
    assert store.load_plan_text() == "omwizard: 1\ncluster: {name: prod}\n"
    results = store.results()
    assert results["network/multicast-route/om1"]["status"] == "changed"
    assert results["network/multicast-route/om1"]["detail"] == "e"
    assert "ts" in results["storage/export/om1"]
    assert store.answers()["verify.same-room"]["note"] == "no video"
    meta = store.meta()
    assert meta["section"] == "network" and meta["node"] == "om1" and meta["cluster"] == "prod"
    assert meta["last_activity"].endswith("Z")


# ------------------------------------------------------------------ atomicity


def test_crash_before_rename_keeps_the_old_file(store: StateStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store.set_result("a/b/om1", {"status": "ok"})
    before = (store.directory / "results.json").read_bytes()
    written: list[bytes] = []

    def crash(src: str, dst: str) -> None:
        written.append(Path(src).read_bytes())  # the temp file was fully written and synced
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(state_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.set_result("a/b/om2", {"status": "failed"})
    monkeypatch.undo()
    assert written and b"om2" in written[0]
    assert (store.directory / "results.json").read_bytes() == before
    assert set(store.results()) == {"a/b/om1"}
    assert sorted(p.name for p in store.directory.iterdir()) == ["results.json"]


def test_leftover_temp_from_a_killed_writer_is_ignored_and_cleaned(store: StateStore) -> None:
    store.save_plan("old")
    leftover = store.directory / ".plan.yaml.abc123.tmp"
    leftover.write_text("half")
    assert store.load_plan_text() == "old"
    store.lock()
    assert not leftover.exists()
    store.unlock()


def test_no_temp_litter_after_many_writes(store: StateStore) -> None:
    for i in range(20):
        store.set_result(f"s/step/n{i}", {"status": "ok"})
    assert sorted(p.name for p in store.directory.iterdir()) == ["results.json"]
    assert len(store.results()) == 20


def test_write_goes_through_fsync_and_replace(store: StateStore,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def replace(a: str, b: str) -> None:
        calls.append("replace")
        real_replace(a, b)

    monkeypatch.setattr(state_mod.os, "fsync", fsync)
    monkeypatch.setattr(state_mod.os, "replace", replace)
    store.save_plan("x")
    assert calls == ["fsync", "replace", "fsync"]  # file, rename, directory


def test_a_secret_cannot_be_stored(store: StateStore) -> None:
    store.set_result("a/b/c", {"status": "ok"})
    with pytest.raises(TypeError, match="Secret"):
        store.set_result("a/b/c", {"status": "ok", "pw": Secret("${X}", "value")})
    with pytest.raises(TypeError, match="Secret"):
        store.journal_begin(record(password=Secret(None, "value")))
    assert store.results()["a/b/c"]["status"] == "ok"
    assert store.journal() == []


def test_paths_are_stored_as_text(store: StateStore) -> None:
    store.set_result("a/b/c", {"status": "ok", "file": Path("/etc/fstab")})
    assert store.results()["a/b/c"]["file"] == "/etc/fstab"


# ------------------------------------------------------------------ corrupt files


@pytest.mark.parametrize("name,content,words", [
    ("journal.json", b'{"version": 1, "records": [', "corrupt or truncated"),
    ("journal.json", b"", "corrupt or truncated"),
    ("journal.json", b"[]", "top level is list"),
    ("journal.json", b'{"records": []}', "no version"),
    ("journal.json", b'{"version": 9, "records": []}', "version 9"),
    ("journal.json", b'{"version": 1, "records": {}}', "not a list"),
    ("journal.json", b'{"version": 1, "records": [{"x": 1}]}', "without id or phase"),
    ("results.json", b'{"version": 1, "results": []}', "not a dict"),
    ("results.json", b"\xff\xfe", "corrupt"),
    ("answers.json", b'{"version": 1}', "missing"),
    ("meta.json", b'"meta"', "top level is str"),
])
def test_corrupt_state_file_names_file_and_fix(store: StateStore, name: str, content: bytes,
                                               words: str) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / name
    path.write_bytes(content)
    reader = {"journal.json": store.journal, "results.json": store.results,
              "answers.json": store.answers, "meta.json": store.meta}[name]
    with pytest.raises(StateError) as info:
        reader()
    msg = str(info.value)
    assert str(path) in msg and words in msg
    assert f"mv {path} {path}.bad" in msg
    assert info.value.path == path
    assert path.read_bytes() == content  # never silently reset


def test_corrupt_journal_blocks_new_records(store: StateStore) -> None:
    store.journal_begin(record())
    path = store.directory / "journal.json"
    path.write_bytes(path.read_bytes()[:-10])
    truncated = path.read_bytes()
    with pytest.raises(StateError):
        store.journal_begin(record())
    assert path.read_bytes() == truncated


# ------------------------------------------------------------------ journal


def test_journal_begin_is_written_before_end(store: StateStore) -> None:
    rid = store.journal_begin(record(backup="/etc/fstab.omwizard.bak", before_hash="aa"))
    (rec,) = StateStore(store.directory).journal()  # read back from disk by another store
    assert rec["id"] == rid and len(rid) == 32 and rec["phase"] == "begin"
    assert rec["seq"] == 1 and rec["ts_begin"].endswith("Z") and rec["ts_end"] is None
    assert rec["backup"] == "/etc/fstab.omwizard.bak"
    assert rec["undo_argv"] == ["ip", "route", "del", "224.0.0.0/4", "dev", "eth0"]
    store.journal_end(rid, "done", after_hash="bb")
    (rec,) = StateStore(store.directory).journal()
    assert rec["phase"] == "done" and rec["after_hash"] == "bb" and rec["ts_end"].endswith("Z")
    assert rec["before_hash"] == "aa"
    store.journal_end(rid, "undone")
    (rec,) = store.journal()
    assert rec["phase"] == "undone" and "ts_undone" in rec


def test_journal_order_seq_and_open_records(store: StateStore) -> None:
    a = store.journal_begin(record(node="om1"))
    b = store.journal_begin(record(node="om2"))
    c = store.journal_begin(record(node="om3", kind="file", target="/etc/fstab"))
    store.journal_end(a, "done")
    store.journal_end(c, "failed", error="disk full")
    recs = store.journal()
    assert [r["id"] for r in recs] == [a, b, c]
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert [r["phase"] for r in recs] == ["done", "begin", "failed"]
    assert [r["id"] for r in store.open_records()] == [b]
    assert len({a, b, c}) == 3


@pytest.mark.parametrize("first,second", [("done", "done"), ("done", "failed"),
                                          ("undone", "undone"), ("undone", "done")])
def test_journal_refuses_impossible_transitions(store: StateStore, first: str,
                                                second: str) -> None:
    rid = store.journal_begin(record())
    store.journal_end(rid, first)
    with pytest.raises(ValueError):
        store.journal_end(rid, second)
    assert store.journal()[0]["phase"] == first


def test_journal_begin_keeps_a_given_id_once(store: StateStore) -> None:
    assert store.journal_begin(record(id="abc123")) == "abc123"
    with pytest.raises(ValueError, match="new"):
        store.journal_begin(record(id="abc123"))
    assert [r["id"] for r in store.journal()] == ["abc123"]


def test_journal_rejects_bad_input(store: StateStore) -> None:
    with pytest.raises(ValueError, match="lacks undo"):
        store.journal_begin({k: v for k, v in record().items() if k != "undo"})
    with pytest.raises(ValueError, match="kind"):
        store.journal_begin(record(kind="package"))
    rid = store.journal_begin(record())
    with pytest.raises(ValueError, match="phase"):
        store.journal_end(rid, "begin")
    with pytest.raises(ValueError, match="seq"):
        store.journal_end(rid, "done", seq=7)
    with pytest.raises(KeyError):
        store.journal_end("0" * 32, "done")


# ------------------------------------------------------------------ lock

HOLDER = textwrap.dedent("""
    import sys, time
    from omwizard.engine.state import StateStore
    s = StateStore(sys.argv[1])
    s.lock()
    print("locked", flush=True)
    sys.stdin.read()          # hold until told (stdin closed) or killed
    s.unlock()
    print("released", flush=True)
""")


def start_holder(directory: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_wizard_is_refused_with_pid_and_host(store: StateStore) -> None:
    proc = start_holder(store.directory)
    try:
        with pytest.raises(StateLocked) as info:
            store.lock()
        err = info.value
        host = socket.gethostname()
        assert err.pid == proc.pid and err.host == host
        assert str(err) == (f"another omwizard (pid {proc.pid} on host {host}) is working on "
                            "cluster prod; wait for it or stop it")
        assert not store.locked
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        assert proc.stdout.read().strip() == "released"
        proc.stdout.close()
        proc.wait()
    store.lock()  # released cleanly: now ours
    assert store.locked
    info_text = json.loads((store.directory / "lock").read_text())
    assert info_text["pid"] == os.getpid()
    store.unlock()


def test_lock_of_a_killed_wizard_is_not_stale(store: StateStore) -> None:
    proc = start_holder(store.directory)
    with pytest.raises(StateLocked):
        store.lock()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stdin:
        proc.stdin.close()
    if proc.stdout:
        proc.stdout.close()
    # the lock file still names the dead process, but the kernel dropped its flock
    assert str(proc.pid) in (store.directory / "lock").read_text()
    store.lock()
    assert store.locked
    store.unlock()


def test_second_store_in_same_process_is_refused_too(store: StateStore) -> None:
    with store:
        other = StateStore(store.directory)
        with pytest.raises(StateLocked) as info:
            other.lock()
        assert info.value.pid == os.getpid()
        store.lock()  # re-locking our own store is a no-op
    other.lock()
    other.unlock()
    assert (store.directory / "lock").read_text() == ""


# ------------------------------------------------------------------ sessions


def test_list_sessions(tmp_path: Path) -> None:
    base = tmp_path / "omwizard"
    prod = StateStore(base / "prod")
    prod.save_plan("omwizard: 1\n")
    prod.set_result("a/b/om1", {"status": "ok"})
    prod.set_result("a/b/om2", {"status": "ok"})
    prod.set_result("a/c/om1", {"status": "failed"})
    prod.touch(section="network", last_activity="ignored")
    test = StateStore(base / "test")
    test.touch(section="preflight")
    broken = base / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{")
    sessions = {s["name"]: s for s in list_sessions(base)}
    assert set(sessions) == {"prod", "test", "broken"}
    assert sessions["prod"]["counts"] == {"ok": 2, "failed": 1}
    assert sessions["prod"]["section"] == "network" and sessions["prod"]["has_plan"]
    assert sessions["prod"]["last_activity"].endswith("Z")
    assert sessions["test"]["counts"] == {} and not sessions["test"]["has_plan"]
    assert "mv " in sessions["broken"]["error"]
    assert list_sessions(tmp_path / "missing") == []


def test_list_sessions_default_base(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    StateStore(default_state_dir("prod")).touch()
    assert [s["name"] for s in list_sessions()] == ["prod"]
