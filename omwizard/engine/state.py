"""Session state: one private directory per cluster, written so that a crash never corrupts it.

Layout of the directory (mode 0700, every file 0600)::

    plan.yaml       the plan as last saved (YAML text; secrets only as ${VAR} references)
    journal.json    one record per change, written before the change and updated after it
    results.json    each step's last result, keyed "section/step/node"
    answers.json    the operator's answers to the manual verification checks
    meta.json       last activity, current section: what the welcome screen lists
    lock            flock'ed by the wizard working on the cluster; holds its pid and host

Every write goes to a temp file in the same directory, is flushed and fsynced, renamed over
the old file with ``os.replace`` and the directory is fsynced: a reader sees the old file or
the new one, never half of one. A file that cannot be read back (bad JSON, wrong shape, no
version) is an error naming the file and how to move it aside; it is never silently reset,
because the journal is what rollback needs.

The lock is ``fcntl.flock`` on the ``lock`` file, held while the store lives after
:meth:`StateStore.lock`; the kernel drops it when the process dies, so a stale lock file from a
crashed wizard never blocks the next one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import shlex
import socket
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from omwizard.plan.model import Secret

STATE_VERSION = 1

JOURNAL = "journal.json"
RESULTS = "results.json"
ANSWERS = "answers.json"
META = "meta.json"
PLAN = "plan.yaml"
LOCK = "lock"

END_PHASES = ("done", "failed", "aborted", "undone")
_REQUIRED_RECORD_KEYS = ("section", "step", "node", "kind", "target", "undo")
# phase -> phases it may move to; "undone" is final
_TRANSITIONS = {
    "begin": {"done", "failed", "aborted", "undone"},
    "done": {"undone"},
    "failed": {"undone"},
    "aborted": {"undone"},
    "undone": set(),
}


class StateError(Exception):
    """Session state cannot be used: names the file and what to do about it."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class StateLocked(StateError):
    """Another omwizard holds the cluster's lock."""

    def __init__(self, cluster: str, pid: int, host: str, path: Path) -> None:
        who = f"pid {pid if pid else '?'} on host {host or '?'}"
        super().__init__(
            f"another omwizard ({who}) is working on cluster {cluster}; "
            "wait for it or stop it", path)
        self.pid = pid
        self.host = host
        self.cluster = cluster


def now_iso() -> str:
    """Current UTC time as ISO 8601 (what every timestamp in the state uses)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def state_base() -> Path:
    """``$XDG_STATE_HOME/omwizard`` (``~/.local/state/omwizard`` when unset or relative)."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "omwizard"


def default_state_dir(cluster: str) -> Path:
    """The state directory of a cluster (cluster names are validated by the plan loader)."""
    return state_base() / cluster


def _json_default(obj: object) -> object:
    """JSON fallback: Paths become text; a Secret is refused so it can never reach the disk."""
    if isinstance(obj, Secret):
        raise TypeError("a Secret cannot be written into session state; store its ref instead")
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_aside(path: Path) -> str:
    q = shlex.quote(str(path))
    return f"move it aside to start over: mv {q} {shlex.quote(str(path) + '.bad')}"


class StateStore:
    """The session state of one cluster; see the module docstring for the layout."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock_fd: int | None = None

    # ----------------------------------------------------------------- plumbing

    @property
    def cluster(self) -> str:
        return self.directory.name

    def _ensure_dir(self) -> None:
        """Create the directory 0700 (and tighten it if it exists with a wider mode)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = self.directory.stat()
        if st.st_mode & 0o777 != 0o700 and st.st_uid == os.getuid():
            os.chmod(self.directory, 0o700)

    def _write(self, name: str, data: bytes) -> None:
        """Atomic replace: temp file in the same dir, fsync, rename, fsync the directory."""
        self._ensure_dir()
        target = self.directory / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.directory)

    def _write_json(self, name: str, key: str, payload: object) -> None:
        doc = {"version": STATE_VERSION, key: payload}
        # serialise first: a TypeError (e.g. a Secret) leaves the old file untouched
        text = json.dumps(doc, default=_json_default, indent=1, ensure_ascii=False)
        self._write(name, (text + "\n").encode("utf-8"))

    def _read_json(self, name: str, key: str, kind: type) -> Any:
        """The payload under ``key``; the empty ``kind`` when the file does not exist yet."""
        path = self.directory / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return kind()
        except OSError as exc:
            raise StateError(f"{path}: cannot be read ({exc.strerror}); "
                             "check its owner and mode (0600, yours)", path) from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{path}: is corrupt or truncated ({exc}); {_move_aside(path)}",
                             path) from None
        if not isinstance(doc, dict):
            raise StateError(f"{path}: is not a state file (top level is "
                             f"{type(doc).__name__}, not an object); {_move_aside(path)}", path)
        version = doc.get("version")
        if version is None:
            raise StateError(f"{path}: has no version field; {_move_aside(path)}", path)
        if version != STATE_VERSION or isinstance(version, bool):
            raise StateError(f"{path}: state version {version!r} is not supported (this "
                             f"omwizard writes version {STATE_VERSION}); {_move_aside(path)}",
                             path)
        payload = doc.get(key)
        if not isinstance(payload, kind):
            raise StateError(f"{path}: '{key}' is missing or not a {kind.__name__}; "
                             f"{_move_aside(path)}", path)
        return payload

    # ----------------------------------------------------------------- lock

    def lock(self) -> None:
        """Take the cluster's lock for this store's lifetime, or raise StateLocked.

        The holder's pid and host are written into the lock file for the next one's message.
        Leftover temp files of a crashed writer are removed: only the lock holder writes.
        """
        if self._lock_fd is not None:
            return
        self._ensure_dir()
        path = self.directory / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateLocked(self.cluster, holder[0], holder[1], path) from None
            raise StateError(f"{path}: cannot be locked ({exc.strerror})", path) from None
        os.fchmod(fd, 0o600)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._lock_fd = fd
        for leftover in self.directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def unlock(self) -> None:
        """Release the lock (the holder info is cleared first, so it never names us stale)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def __enter__(self) -> StateStore:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    # ----------------------------------------------------------------- plan

    def save_plan(self, text: str) -> None:
        """Store the plan text (from ``dump_plan``: secrets only as ${VAR} references)."""
        self._write(PLAN, text.encode("utf-8"))

    def load_plan_text(self) -> str | None:
        path = self.directory / PLAN
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{path}: cannot be read ({exc}); {_move_aside(path)}",
                             path) from None

    # ----------------------------------------------------------------- journal

    def journal(self) -> list[dict[str, Any]]:
        """Every change record, oldest first."""
        records = self._read_json(JOURNAL, "records", list)
        path = self.directory / JOURNAL
        for rec in records:
            if not isinstance(rec, dict) or "id" not in rec or "phase" not in rec:
                raise StateError(f"{path}: holds a record without id or phase; "
                                 f"{_move_aside(path)}", path)
        return records

    def journal_begin(self, record: dict[str, Any]) -> str:
        """Write a change record *before* the change is made; returns its id.

        ``record`` needs section, step, node, kind ("file" | "command"), target and undo (the
        human words); machine fields (backup, before_hash, after_hash, undo_argv...) are kept.
        An ``id`` may be given (e.g. when the backup's file name must carry it); it must be
        new. Otherwise a uuid4 hex is made.
        """
        missing = [k for k in _REQUIRED_RECORD_KEYS if k not in record]
        if missing:
            raise ValueError(f"journal record lacks {', '.join(missing)}")
        if record["kind"] not in ("file", "command"):
            raise ValueError(f"journal record kind must be file or command, not {record['kind']!r}")
        records = self.journal()
        rec_id = record.get("id") or uuid.uuid4().hex
        if not isinstance(rec_id, str) or any(r["id"] == rec_id for r in records):
            raise ValueError(f"journal record id {rec_id!r} is not a new text id")
        rec = dict(record)
        rec.update(
            id=rec_id,
            seq=max((r.get("seq", 0) for r in records), default=0) + 1,
            phase="begin",
            ts_begin=now_iso(),
            ts_end=None,
        )
        records.append(rec)
        self._write_json(JOURNAL, "records", records)
        return str(rec["id"])

    def journal_end(self, rec_id: str, phase: str, **fields: Any) -> None:
        """Record how a change ended (done | failed | aborted), or that it was undone."""
        if phase not in END_PHASES:
            raise ValueError(f"phase must be one of {', '.join(END_PHASES)}, not {phase!r}")
        records = self.journal()
        for rec in records:
            if rec["id"] == rec_id:
                break
        else:
            raise KeyError(f"no journal record {rec_id!r}")
        if phase not in _TRANSITIONS.get(rec["phase"], set()):
            raise ValueError(f"journal record {rec_id} is {rec['phase']!r}; it cannot become "
                             f"{phase!r}")
        reserved = {"id", "seq", "phase", "ts_begin"} & fields.keys()
        if reserved:
            raise ValueError(f"journal_end cannot change {', '.join(sorted(reserved))}")
        rec.update(fields)
        rec["phase"] = phase
        stamp = now_iso()
        if phase == "undone":
            rec["ts_undone"] = stamp
        else:
            rec["ts_end"] = stamp
        self._write_json(JOURNAL, "records", records)

    def open_records(self) -> list[dict[str, Any]]:
        """Changes whose start was journaled but whose end was not (check them first)."""
        return [r for r in self.journal() if r["phase"] == "begin"]

    # ----------------------------------------------------------------- results, answers, meta

    def set_result(self, key: str, result: dict[str, Any]) -> None:
        """Store a step's last result under "section/step/node" (stamped with ``ts``)."""
        results = self.results()
        results[key] = {**result, "ts": result.get("ts") or now_iso()}
        self._write_json(RESULTS, "results", results)

    def results(self) -> dict[str, dict[str, Any]]:
        return self._read_json(RESULTS, "results", dict)

    def set_answer(self, check_id: str, answer: dict[str, Any]) -> None:
        answers = self.answers()
        answers[check_id] = {**answer, "ts": answer.get("ts") or now_iso()}
        self._write_json(ANSWERS, "answers", answers)

    def answers(self) -> dict[str, dict[str, Any]]:
        return self._read_json(ANSWERS, "answers", dict)

    def touch(self, **meta: Any) -> None:
        """Merge ``meta`` (e.g. section="network") and stamp last_activity."""
        current = self.meta()
        current.update(meta)
        current["cluster"] = self.cluster
        current["last_activity"] = now_iso()
        self._write_json(META, "meta", current)

    def meta(self) -> dict[str, Any]:
        return self._read_json(META, "meta", dict)


def _read_holder(fd: int) -> tuple[int, str]:
    """(pid, host) written by the lock holder; (0, "") if it has not written them yet."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        pid = info.get("pid")
        host = info.get("host")
        return (pid if isinstance(pid, int) else 0, host if isinstance(host, str) else "")
    except (OSError, ValueError, AttributeError):
        return 0, ""


def list_sessions(base: Path | None = None) -> list[dict[str, Any]]:
    """Every cluster directory under ``base``: name, path, last activity, results by status.

    A session whose files cannot be read is listed with an ``error`` instead of hiding it, so
    the welcome screen can show what is wrong. Newest activity first.
    """
    base = state_base() if base is None else Path(base)
    sessions: list[dict[str, Any]] = []
    if not base.is_dir():
        return sessions
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        store = StateStore(d)
        item: dict[str, Any] = {"name": d.name, "path": d, "last_activity": None,
                                "section": None, "counts": {}, "has_plan": (d / PLAN).exists()}
        try:
            meta = store.meta()
            item["last_activity"] = meta.get("last_activity")
            item["section"] = meta.get("section")
            counts = Counter(str(r.get("status", "unknown")) for r in store.results().values()
                             if isinstance(r, dict))
            item["counts"] = dict(counts)
        except StateError as exc:
            item["error"] = str(exc)
        sessions.append(item)
    sessions.sort(key=lambda s: s["last_activity"] or "", reverse=True)
    return sessions
