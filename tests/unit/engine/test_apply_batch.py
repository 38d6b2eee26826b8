"""A step's changes on a node in one round trip (engine/batch.py), with this machine's shell as
the nodes (the scripts the nodes would run, run by sh): planned, journaled, one batch, each
record ended from its own outcome, the apply's own error handling replayed, a file not as
read written again from a fresh read, and a record a kill left open decided from the
progress file."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import pytest

from omwizard.engine import batch
from omwizard.engine import step as stepmod
from omwizard.engine.runner import Engine
from omwizard.engine.state import StateStore
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError, RunResult
from omwizard.remote.writes import WRITE_REFUSED, write_script
from tests.unit.engine.test_step_data import LocalRemote, make_plan


class ShellRemote(LocalRemote):
    """LocalRemote with the file helpers and batches of remote/ssh.py, run by sh."""

    def __init__(self) -> None:
        super().__init__("none")
        self.batches = 0
        self.between: Any = None  # called before each write (someone else edits the file)

    async def _sh(self, script: str, data: bytes) -> tuple[int | None, bytes, bytes]:
        self.commands.append(script)
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", script, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(data)
        return proc.returncode, out, err

    async def read_file(self, path: str, *, sudo: bool = True) -> bytes | None:
        p = Path(path)
        self.commands.append(f"cat {path}")
        return p.read_bytes() if p.exists() else None

    async def write_file(self, path: str, data: bytes, *, sudo: bool = True,
                         backup: str | None = None, mode: str = "0644",
                         expect: str | None = None) -> bool:
        if self.between is not None:
            self.between()
        rc, _out, err = await self._sh(write_script(path, backup=backup, mode=mode,
                                                    expect=expect), data)
        if expect is not None and rc == WRITE_REFUSED:
            return False
        if rc != 0:
            raise RemoteError("n", f"cannot write {path}: {err.decode().strip()}")
        return True

    async def run_changes(self, script: str, data: bytes, *, timeout: float) -> RunResult:
        self.batches += 1
        rc, out, err = await self._sh(script, data)
        return RunResult("batch", rc, out.decode(errors="replace"), err.decode())


class ShellPool:
    def __init__(self) -> None:
        self.remotes: dict[str, ShellRemote] = {}

    def get(self, node: Node) -> ShellRemote:
        return self.remotes.setdefault(node.name, ShellRemote())

    def failure(self, node: Node) -> None:
        return None


@pytest.fixture(autouse=True)
def local_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stepmod, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setattr(batch, "PROGRESS_DIR", str(tmp_path / "progress"))


class ThreeChanges(Step):
    """A folder, a file in it (transformed from what the check read), a marker command."""

    section = "preflight"
    name = "three"
    files = ()

    def __init__(self, root: Path, fail_third: bool = False, read_between: bool = False,
                 restore: bool = False) -> None:
        self.root = root
        self.fail_third = fail_third
        self.read_between = read_between
        self.restore = restore
        self.runs = 0

    def where(self, node: Node) -> Path:
        return self.root / node.name

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        conf = self.where(node) / "d" / "app.conf"
        await ctx.read_texts(node, [str(conf)])  # the run's copy the edit transforms
        if (self.where(node) / "marker").exists() and conf.exists() and \
                "ours" in conf.read_text():
            return Finding.ok("all there")
        return Finding.needs("missing", "make it")

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        self.runs += 1
        base = self.where(node)
        await ctx.change_command(node, ["mkdir", "-p", str(base / "d")],
                                 ["rmdir", str(base / "d")])
        if self.read_between:
            await ctx.run(node, ["ls", str(base)])
        change = await ctx.edit_file(node, str(base / "d" / "app.conf"),
                                     lambda t: (t or "") + "ours\n")
        try:
            marker = "false" if self.fail_third else f": > {shlex.quote(str(base / 'marker'))}"
            await ctx.change_command(node, ["sh", "-c", marker], ["rm", "-f", str(base / "marker")])
        except RemoteError:
            if self.restore and change is not None:
                await ctx.edit_file(node, str(base / "d" / "app.conf"), lambda _t: "")
            raise


def run_apply(tmp_path: Path, step: Step) -> tuple[Engine, ShellPool, StateStore, list]:
    plan = make_plan(tmp_path / "om")
    state = StateStore(tmp_path / "state")
    pool = ShellPool()
    engine = Engine(plan, pool=pool, state=state, nodes=["om1"])  # type: ignore[arg-type]
    engine.steps = lambda section=None: [step]  # type: ignore[method-assign]
    return engine, pool, state, asyncio.run(engine.apply())


def test_three_changes_go_in_one_batch_each_journaled(tmp_path: Path) -> None:
    step = ThreeChanges(tmp_path / "nodes")
    engine, pool, state, results = run_apply(tmp_path, step)
    assert [(r.key, r.status) for r in results] == [("preflight/three/om1", "changed")]
    assert [c["kind"] for c in results[0].changes] == ["command", "file", "command"]
    remote = pool.remotes["om1"]
    assert remote.batches == 1
    assert not any(c.startswith("cat ") for c in remote.commands)  # the edit read nothing
    journal = state.journal()
    assert [(r["kind"], r["phase"]) for r in journal] == [
        ("command", "done"), ("file", "done"), ("command", "done")]
    assert len({r["progress"] for r in journal}) == 1
    assert (tmp_path / "nodes" / "om1" / "d" / "app.conf").read_text() == "ours\n"
    assert step.runs == 2  # planned, then replayed
    # rollback undoes them newest first, from the same records
    engine.force = False
    asyncio.run(engine.rollback())
    assert not (tmp_path / "nodes" / "om1" / "d").exists()
    assert {r["phase"] for r in state.journal()} == {"undone"}


def test_a_failure_ends_the_batch_and_the_apply_handles_it_as_always(tmp_path: Path) -> None:
    step = ThreeChanges(tmp_path / "nodes", fail_third=True, restore=True)
    _engine, pool, state, results = run_apply(tmp_path, step)
    assert results[0].status == "failed"
    assert "`sh -c false` failed (exit 1)" in results[0].detail
    journal = state.journal()
    assert [(r["kind"], r["phase"]) for r in journal] == [
        ("command", "done"), ("file", "done"), ("command", "failed"), ("file", "done")]
    # the restore ran live, after the batch, from the apply's own except
    assert "progress" not in journal[3]
    assert (tmp_path / "nodes" / "om1" / "d" / "app.conf").read_text() == ""
    assert pool.remotes["om1"].batches == 1


def test_a_read_after_a_change_makes_the_step_go_one_change_at_a_time(tmp_path: Path) -> None:
    step = ThreeChanges(tmp_path / "nodes", read_between=True)
    _engine, pool, state, results = run_apply(tmp_path, step)
    assert results[0].status == "changed"
    assert pool.remotes["om1"].batches == 0
    assert [r["phase"] for r in state.journal()] == ["done", "done", "done"]
    assert not any("progress" in r for r in state.journal())


def test_a_file_changed_since_it_was_read_is_written_again_from_a_fresh_read(
        tmp_path: Path) -> None:
    class OneEdit(ThreeChanges):
        async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
            await ctx.edit_file(node, str(self.where(node) / "d" / "app.conf"),
                                lambda t: (t or "") + "ours\n")
            await ctx.change_command(node, ["sh", "-c", f": > {self.where(node) / 'marker'}"],
                                     None)

    conf = tmp_path / "nodes" / "om1" / "d" / "app.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("theirs\n")
    step = OneEdit(tmp_path / "nodes")
    plan = make_plan(tmp_path / "om")
    state = StateStore(tmp_path / "state")
    pool = ShellPool()
    engine = Engine(plan, pool=pool, state=state, nodes=["om1"])  # type: ignore[arg-type]
    engine.steps = lambda section=None: [step]  # type: ignore[method-assign]
    real_batch = ShellRemote.run_changes

    async def edited_first(self: ShellRemote, script: str, data: bytes, *,
                           timeout: float) -> RunResult:
        conf.write_text("theirs, edited after the check\n")  # between the read and the write
        return await real_batch(self, script, data, timeout=timeout)

    ShellRemote.run_changes = edited_first  # type: ignore[method-assign]
    try:
        results = asyncio.run(engine.apply())
    finally:
        ShellRemote.run_changes = real_batch  # type: ignore[method-assign]
    assert results[0].status == "changed"
    assert conf.read_text() == "theirs, edited after the check\nours\n"
    phases = [(r["kind"], r["phase"], r.get("note", "")) for r in state.journal()]
    assert phases[0] == ("file", "aborted", "the file changed since it was read")
    assert phases[1][:2] == ("command", "aborted")  # not run: the batch stopped there
    assert [p[:2] for p in phases[2:]] == [("file", "done"), ("command", "done")]


def test_records_a_kill_left_open_are_decided_from_the_progress_file(tmp_path: Path) -> None:
    step = ThreeChanges(tmp_path / "nodes")
    engine, _pool, state, _results = run_apply(tmp_path, step)
    done = state.journal()
    progress = Path(done[0]["progress"])
    # as a kill would leave them: begun, the batch ran the first two, the third never started
    ids = [state.journal_begin({k: v for k, v in r.items()
                                if k not in ("id", "seq", "phase", "ts_begin", "ts_end")})
           for r in done]
    progress.write_text(f"{ids[0]} start\n{ids[0]} 0\n{ids[1]} start\n{ids[1]} 0\n")
    assert [r["progress"] for r in state.open_records()] == [str(progress)] * 3
    asyncio.run(engine.recover_interrupted())
    ended = {r["id"]: (r["phase"], r.get("note")) for r in state.journal()}
    assert ended[ids[0]] == ("done", "found done on resume")
    assert ended[ids[2]] == ("aborted", "not run: its batch stopped before it")
    assert ended[ids[1]][0] == "done"  # the file: by its hash (it is as the record wrote it)
