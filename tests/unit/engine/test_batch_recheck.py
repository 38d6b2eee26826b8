"""A changing step's re-check costs no round trip of its own (issue 21, engine/batch.py step
4), with this machine's shell as the node: the batch reads back, after its changes, what they
made stale of the re-check's and the later steps' declared facts and files; the re-check and
the next step's check find them cached. Whatever the changes' outcome the reads are the
node's real state; a change made live after the batch, reads that did not come back, a fact
to read as the login user under sudo, or an apply that cannot be planned leave the re-check
to read for itself, as before."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest

from omwizard.engine import batch
from omwizard.engine.events import EventBus, StepStarted
from omwizard.engine.runner import Engine
from omwizard.engine.state import StateStore
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts.base import Fact, Files
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RunResult
from tests.unit.engine.test_apply_batch import ShellPool, ShellRemote, local_dirs
from tests.unit.engine.test_step_data import make_plan

__all__ = ["local_dirs"]  # its autouse fixture: backups and progress files under tmp_path


def q(path: Path) -> str:
    return shlex.quote(str(path))


def flag_fact(root: Path, name: str, *, sudo: bool = True) -> Fact[str]:
    """A fact: the flag file's word on the node (or `none`)."""
    return Fact(f"test_{name.replace('-', '_')}",
                lambda _p, n: f"cat {q(root / n.name / name)} 2>/dev/null || echo none",
                str.strip, sudo=sudo)


def make_step(root: Path, name: str, want: str, *, changes: int = 1, fail: bool = False,
              also: tuple[Fact[str], ...] = (), conf: bool = False,
              read_after: bool = False) -> Step:
    """A step whose check reads only its declared fact (the flag is `want`) and, with conf,
    a declared file; its apply edits the file (conf) and sets the flag in `changes`
    commands (with fail, the last one sets it to `half` and fails)."""
    fact = flag_fact(root, name)
    path = root / "om1" / f"{name}.conf"
    declared = Files(f"test_{name.replace('-', '_')}_conf", lambda _p, _n: [str(path)])

    class FlagStep(Step):
        section = "preflight"
        facts = (fact, *also)
        files = (declared,) if conf else ()

        async def check(self, ctx: StepContext, node: Node) -> Finding:
            seen = await ctx.fact(node, fact)
            text = await ctx.read_text(node, str(path)) if conf else want
            if seen == want and text == want:
                return Finding.ok(f"{name} is {want}")
            return Finding.needs(f"{name} is {seen}", "set it")

        async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
            folder = root / node.name
            if conf:
                await ctx.edit_file(node, str(path), lambda _t: want)
            for i in range(changes):
                last = i == changes - 1
                if last and read_after:
                    await ctx.run(node, ["ls", str(folder)])
                word = "half" if last and fail else want
                command = f"mkdir -p {q(folder)} && echo {word} > {q(folder / name)}" + (
                    "; exit 4" if last and fail else "")
                await ctx.change_command(node, ["sh", "-c", command], None)

    return FlagStep(name)


def run(tmp_path: Path, steps: list[Step], *, sudo: str = "none",
        hook=None) -> tuple[list, ShellRemote]:
    """Apply these steps on om1; the node's commands with a `# step phase` line at each
    step's start (check, apply, and the re-check's second `check`)."""
    plan: Plan = make_plan(tmp_path / "om")
    bus = EventBus()
    pool = ShellPool()
    remote = pool.get(plan.node("om1"))
    remote.sudo = sudo
    if hook is not None:
        remote.run_changes = hook(remote)  # type: ignore[method-assign]
    bus.subscribe(lambda e: remote.commands.append(f"# {e.step} {e.phase}")
                  if isinstance(e, StepStarted) else None)
    engine = Engine(plan, pool=pool, state=StateStore(tmp_path / "state"),  # type: ignore[arg-type]
                    bus=bus, nodes=["om1"])
    engine.steps = lambda section=None: list(steps)  # type: ignore[method-assign]
    return asyncio.run(engine.apply()), remote


def under(commands: list[str], marker: str, nth: int = 1) -> list[str]:
    """The commands sent under the nth `# step phase` line, up to the next such line."""
    starts = [i for i, c in enumerate(commands) if c == marker]
    rest = commands[starts[nth - 1] + 1:]
    ends = [i for i, c in enumerate(rest) if c.startswith("# ")]
    return rest[:ends[0]] if ends else rest


def statuses(results: list) -> dict[str, str]:
    return {r.step: r.status for r in results}


def test_the_recheck_and_the_next_check_read_nothing_themselves(tmp_path: Path) -> None:
    root = tmp_path / "nodes"
    one = make_step(root, "one", "on")
    two = make_step(root, "two", "on", changes=2, conf=True)
    results, remote = run(tmp_path, [one, two])
    assert statuses(results) == {"one": "changed", "two": "changed"}
    log = remote.commands
    assert len(under(log, "# one check")) == 1  # the run's one gather, for both steps
    (applied,) = under(log, "# one apply")  # the change and the reads: one script
    assert "OMWB ready" in applied and "OMWB reads" in applied
    assert under(log, "# one check", 2) == []  # the re-check: no command of its own
    assert under(log, "# two check") == []  # the next check: from one's batch
    (edited,) = under(log, "# two apply")  # the edit (from the cached copy), two commands
    assert under(log, "# two check", 2) == []
    assert (root / "om1" / "two.conf").read_text() == "on"
    assert remote.batches == 2


def test_a_change_that_failed_is_rechecked_from_the_nodes_real_state(tmp_path: Path) -> None:
    root = tmp_path / "nodes"
    first = make_step(root, "first", "on", changes=2, fail=True)  # leaves it `half`
    watch = flag_fact(root, "first")

    class Watcher(Step):
        """The next step reads the same fact: what the failed batch left, from its reads."""

        section = "preflight"
        facts = (watch,)

        async def check(self, ctx: StepContext, node: Node) -> Finding:
            return Finding.ok(await ctx.fact(node, watch))

    results, remote = run(tmp_path, [first, Watcher("watch")])
    assert statuses(results)["first"] == "failed"
    seen = next(r for r in results if r.step == "watch")
    assert seen.detail == "half"  # the node as the failure left it, after the batch
    assert under(remote.commands, "# watch check") == []  # from the failed batch's reads


def test_a_change_that_ran_but_did_not_hold_is_rechecked_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "nodes"
    step = make_step(root, "held", "on")

    def undoing(remote: ShellRemote):
        real = ShellRemote.run_changes

        async def run_changes(script: str, data: bytes, *, timeout: float) -> RunResult:
            # someone else sets it back in the same moment: the batch's reads see that
            script = script.replace(" && echo on > ", " && echo off > ", 1)
            return await real(remote, script, data, timeout=timeout)

        return run_changes

    results, remote = run(tmp_path, [step], hook=undoing)
    (result,) = results
    assert result.status == "failed" and "still not right" in result.detail
    assert "held is off" in result.detail  # judged from the reads, after the change
    assert under(remote.commands, "# held check", 2) == []


def test_a_change_made_live_after_the_batch_leaves_the_recheck_to_read(tmp_path: Path
                                                                        ) -> None:
    root = tmp_path / "nodes"
    conf = root / "om1" / "edited.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("theirs")
    step = make_step(root, "edited", "on", conf=True)

    def edited_first(remote: ShellRemote):
        real = ShellRemote.run_changes

        async def run_changes(script: str, data: bytes, *, timeout: float) -> RunResult:
            conf.write_text("theirs, edited after the check")  # the write is refused
            return await real(remote, script, data, timeout=timeout)

        return run_changes

    results, remote = run(tmp_path, [step], hook=edited_first)
    assert results[0].status == "changed"
    assert conf.read_text() == "on"  # written again, live, from a fresh read
    assert len(under(remote.commands, "# edited check", 2)) == 1  # its own, as before


def test_reads_that_did_not_come_back_leave_the_recheck_to_read(tmp_path: Path) -> None:
    step = make_step(tmp_path / "nodes", "dropped", "on")

    def dropped(remote: ShellRemote):
        real = ShellRemote.run_changes

        async def run_changes(script: str, data: bytes, *, timeout: float) -> RunResult:
            whole = await real(remote, script, data, timeout=timeout)
            cut = whole.stdout[:whole.stdout.index("\n\036OMWB reads ")]
            return RunResult(whole.command, None, cut, "connection lost")

        return run_changes

    results, remote = run(tmp_path, [step], hook=dropped)
    assert results[0].status == "changed"
    assert len(under(remote.commands, "# dropped check", 2)) == 1


@pytest.mark.parametrize("sudo", ["none", "nopasswd"])
def test_a_login_user_fact_is_read_back_only_when_the_batch_runs_as_that_user(
        tmp_path: Path, sudo: str) -> None:
    root = tmp_path / "nodes"
    mine = flag_fact(root, "mine", sudo=False)
    step = make_step(root, "rooted", "on", also=(mine,))
    results, remote = run(tmp_path, [step], sudo=sudo)
    assert results[0].status == "changed"
    again = under(remote.commands, "# rooted check", 2)
    if sudo == "none":  # the batch runs as the login user: everything came back
        assert again == []
    else:  # as root: the login user's fact is read by the re-check, alone
        assert len(again) == 1 and "mine" in again[0] and "rooted" not in again[0]


def test_an_apply_that_cannot_be_planned_rechecks_as_before(tmp_path: Path) -> None:
    step = make_step(tmp_path / "nodes", "unplanned", "on", changes=2, read_after=True)
    results, remote = run(tmp_path, [step])
    assert results[0].status == "changed"
    assert remote.batches == 0
    assert len(under(remote.commands, "# unplanned check", 2)) == 1


def test_one_change_with_nothing_to_read_back_goes_alone(tmp_path: Path) -> None:
    class Bare(Step):
        section = "preflight"

        async def check(self, ctx: StepContext, node: Node) -> Finding:
            done = (tmp_path / "bare").exists()
            return Finding.ok("there") if done else Finding.needs("missing", "make it")

        async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
            await ctx.change_command(node, ["touch", str(tmp_path / "bare")], None)

    results, remote = run(tmp_path, [Bare("bare")])
    assert results[0].status == "changed"
    assert remote.batches == 0  # one round trip either way: no progress file for it
    assert batch.BATCH_CHANGES  # (not because batching is off)
