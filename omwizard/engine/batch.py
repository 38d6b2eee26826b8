"""A step's changes on one node in one round trip, with every guarantee of one-at-a-time.

Plan, journal, one script, replay (docs/ARCHITECTURE.md, "Changes batched"):

1. plan: the step's apply runs against a PlanningContext: reads before the first change run
   for real and are recorded; each change is computed (argv, or a file's new content from
   the copy the run read) but not made. A read after a change, a streamed command, or
   anything raised ends planning: the apply then runs one change at a time, as before.
2. journal: every planned change is journaled `begin` (the after-begin fault point counts
   each), then ONE script (remote.batch) makes them in order, stopping at the first failure,
   each outcome between markers and in a progress file on the node. Each record then ends
   from its marker (after the after-write fault point, as a single change does): done,
   failed, aborted ("already so", a file not as read, or not run after a failure); a change
   whose end the engine did not see stays `begin` for recover_interrupted, which reads the
   node's progress file.
3. replay: the apply runs again against a ReplayContext, which gives it the recorded reads
   and each change's outcome in order (a Change, or the very RemoteError the change would
   have raised), so its own error handling (edit_then_run's restore) runs as it always did;
   after a failure, or past the plan, every call is made live.

File writes are compare-and-swap against the content the plan transformed, so a command
earlier in the batch that touched the file makes the write refuse, and the replay edits it
again from a fresh read.

4. read back: the same script, after its changes and whatever their outcome, reads what the
   changes made stale of the declared facts and files the step's re-check and the run's
   later steps need on the node (the runner's look-ahead, StepContext.stale_after_change),
   and once the replay is over they fill the run's caches (take_refresh): the re-check, and
   the next step's check before its apply, find them without a command. So a step's change
   and its re-check cost one round trip, not two. They are the node as it is after the
   batch, so they are taken only when the replay changed nothing live after it (a refused
   write edited again, a step's own restore after a failure): then the re-check reads for
   itself, as it does when the reads did not come back (the node dropped). One change is
   batched too when there is something to read back; an apply that cannot be planned
   (Unbatchable) changes and re-checks as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omwizard.engine.events import CommandRun
from omwizard.engine.step import (
    Change,
    Finding,
    Refresh,
    Step,
    StepContext,
    _fault_point,
    backup_path,
    unified_diff,
)
from omwizard.facts.base import Fact
from omwizard.remote.batch import (
    READS_TIMEOUT,
    BatchItem,
    CommandItem,
    FileItem,
    Outcome,
    batch_script,
    parse_batch,
    parse_progress,
    split_reads,
)
from omwizard.remote.results import (
    CommandTimeout,
    RemoteError,
    RunResult,
    command_timeout_cap,
    quote_argv,
    sha256,
)
from omwizard.remote.writes import ABSENT, WRITE_REFUSED

if TYPE_CHECKING:
    from omwizard.plan.model import Node

BATCH_CHANGES = True  # False: every change its own round trip, as before issue 21
PROGRESS_DIR = "/var/lib/omwizard"
FILE_TIMEOUT = 60.0
SETTLED = "_batch_settled"  # shared: node -> progress files whose records all ended


# change_command's options a plan knows; a new one makes the step run one change at a time
_COMMAND_OPTIONS = {"ok_text", "undo_ok_text", "timeout", "stream", "remedy", "input",
                    "undo_text", "undo_step", "undo_data"}


class Unbatchable(BaseException):  # noqa: N818 - not an error: a signal to plan no further
    """The apply cannot be planned ahead (it reads after a change, streams, or failed):
    it runs one change at a time. A BaseException, so no step's `except` swallows it."""


def progress_path(cluster: str, record: str) -> str:
    return f"{PROGRESS_DIR}/{cluster}/batch-{record}"


def decide(record: dict[str, Any], progress: dict[str, tuple[int | None, bool]] | None
           ) -> tuple[str, str] | None:
    """How a batched command record left `begin` ends, from its batch's progress file:
    (phase, note), or None when only the step's check can tell (it started and did not
    end, or the file is gone)."""
    if progress is None:
        return None
    if record["id"] not in progress:
        return "aborted", "not run: its batch stopped before it"
    status, already = progress[record["id"]]
    if status is None:
        return None
    if status == 0:
        return "done", "found done on resume"
    if already:
        return "aborted", "already in place"
    if record.get("kind") == "file" and status == WRITE_REFUSED:
        return "aborted", "the file changed since it was read (found on resume)"
    return "failed", f"exit {status} (found on resume)"


@dataclass
class Planned:
    """One change the plan computed: its journal fields and what the batch needs."""

    kind: str  # command | file
    fields: dict[str, Any]
    change: Change
    # command
    argv: list[str] = field(default_factory=list)
    input: str | None = None
    ok_text: tuple[str, ...] = ()
    timeout: float = FILE_TIMEOUT
    remedy: str = ""
    undo_text: str = ""
    undo_argv: list[str] | None = None
    undo_ok_text: tuple[str, ...] = ()
    undo_step: str = ""
    undo_data: dict[str, Any] | None = None
    # file
    path: str = ""
    before: str | None = None
    after: str = ""
    mode: str = "0644"


def _shared_copy(shared: dict[str, Any], node: str) -> dict[str, Any]:
    """The run's shared state for planning: the node's caches and every step's own entries
    copied (planning must leave no trace), the in-flight reads shared."""
    out: dict[str, Any] = {}
    for key, value in shared.items():
        if key in ("_files", "_facts"):
            out[key] = {**value, node: dict(value.get(node, {}))}
        elif key.startswith("_"):
            out[key] = value
        else:
            try:
                out[key] = copy.deepcopy(value)
            except Exception as exc:  # noqa: BLE001 - cannot plan without a copy
                raise Unbatchable(f"shared {key} cannot be copied") from exc
    return out


def _read_key(node: Node, argv: list[str] | str, sudo: bool, input: str | None) -> tuple:
    return node.name, quote_argv(argv), sudo, input


class PlanningContext(StepContext):
    """The step's apply against the world as read: reads before a change are real (and
    recorded), changes are computed, not made."""

    def __init__(self, base: StepContext, node: Node) -> None:  # noqa: D107
        self.__dict__.update(base.__dict__)
        self.changes = {}
        self.target = node
        self.shared = _shared_copy(base.shared, node.name)
        self.read_files = dict(base._file_cache(node))  # as the run read them, pre-batch
        self.planned: list[Planned] = []
        self.reads: list[tuple[tuple, RunResult]] = []
        self.edits: list[tuple[str, str | None]] = []  # every edit_file's path and before

    async def run(self, node: Node, argv: list[str] | str, *, sudo: bool = True,
                  input: str | None = None, timeout: float = 60, stream: bool = False,
                  on_line: Callable[[str], None] | None = None) -> RunResult:
        if self.planned or stream or on_line is not None:
            raise Unbatchable("a read after a change, or a streamed one")
        result = await super().run(node, argv, sudo=sudo, input=input, timeout=timeout)
        self.reads.append((_read_key(node, argv, sudo, input), result))
        return result

    async def edit_file(self, node: Node, path: str,
                        transform: Callable[[str | None], str | None], *,
                        mode: str = "0644") -> Change | None:
        if node.name != self.target.name:
            raise Unbatchable("a change on another node")
        cache = self._file_cache(node)
        if path in cache:
            before = cache[path]
        elif path in self.read_files:
            before = self.read_files[path]  # the batch's write checks it still is
        else:
            raw = await self.pool.get(node).read_file(path)  # before any change is made
            before = None if raw is None else raw.decode("utf-8", errors="surrogateescape")
            self.read_files[path] = before
        self.edits.append((path, before))
        after = transform(before)
        if after == before or after is None:
            return None
        undo = f"restore {path} from its backup" if before is not None else f"remove {path}"
        diff = self.redact(unified_diff(path, before, after))
        change = Change("file", path, undo, diff=diff)
        self.planned.append(Planned("file", {}, change, path=path, before=before, after=after,
                                    mode=mode))
        cache[path] = after
        self._forget_facts(node)
        return self._note(node, change)

    async def change_command(self, node: Node, argv: list[str], undo_argv: list[str] | None,
                             **kw: Any) -> Change:
        unknown = set(kw) - _COMMAND_OPTIONS
        if kw.get("stream") or node.name != self.target.name or unknown:
            raise Unbatchable("a streamed command, one on another node, or a new option")
        command = quote_argv(argv)
        undo_text = kw.get("undo_text", "")
        undo = quote_argv(undo_argv) if undo_argv else (undo_text or "nothing to undo")
        change = Change("command", command, undo)
        undo_data = kw.get("undo_data")
        self.planned.append(Planned(
            "command", {}, change, argv=list(argv), input=kw.get("input"),
            ok_text=tuple(kw.get("ok_text", ())), timeout=kw.get("timeout", 120),
            remedy=kw.get("remedy", ""), undo_text=undo_text,
            undo_argv=list(undo_argv) if undo_argv else None,
            undo_ok_text=tuple(kw.get("undo_ok_text", ())),
            undo_step=kw.get("undo_step", "") if undo_data is not None else "",
            undo_data=undo_data.to_json() if undo_data is not None else None))
        self.forget_files(node)
        return self._note(node, change)


class ReplayContext(StepContext):
    """The step's apply again, given the plan's reads and the batch's outcomes in order;
    live past them (the run's own context otherwise: same caches, same list of changes)."""

    def __init__(self, base: StepContext, node: Node, reads: list[tuple[tuple, RunResult]],
                 planned: list[Planned], outcomes: list[Outcome | None],
                 lost: RemoteError | None = None,
                 edits: list[tuple[str, str | None]] | None = None) -> None:  # noqa: D107
        self.__dict__.update(base.__dict__)
        self.target = node
        self.reads = list(reads)
        self.edits = list(edits or [])
        self.planned = list(planned)
        self.outcomes = list(outcomes)
        self.lost = lost  # the batch's own error (a timeout) for a change it did not end
        self.live = not planned
        self.read_files: dict[str, str | None] = {}
        self.changed_live = False  # a change made after the batch: its reads are stale

    async def run(self, node: Node, argv: list[str] | str, *, sudo: bool = True,
                  input: str | None = None, timeout: float = 60, stream: bool = False,
                  on_line: Callable[[str], None] | None = None) -> RunResult:
        key = _read_key(node, argv, sudo, input)
        if self.reads and self.reads[0][0] == key and not stream and on_line is None:
            return self.reads.pop(0)[1]
        self.reads.clear()  # the apply went its own way: everything live from here
        return await super().run(node, argv, sudo=sudo, input=input, timeout=timeout,
                                 stream=stream, on_line=on_line)

    def _next(self, kind: str, what: str) -> tuple[Planned, Outcome | None] | None:
        if self.live or not self.planned:
            self.live = True
            return None
        plan = self.planned[0]
        if plan.kind != kind or (plan.path if kind == "file" else plan.change.target) != what:
            raise RemoteError(
                self.target.name,
                f"the step's changes on a second pass were not those it planned ({what} "
                f"instead of {plan.change.target}); what was made is in the journal",
                "run apply again (a step's apply must not depend on time or chance)")
        self.planned.pop(0)
        return plan, self.outcomes.pop(0)

    async def edit_file(self, node: Node, path: str,
                        transform: Callable[[str | None], str | None], *,
                        mode: str = "0644") -> Change | None:
        cache = self._file_cache(node)
        if self.live or node.name != self.target.name:
            return await self._live_edit(node, path, transform, mode)
        if not self.edits or self.edits[0][0] != path:
            raise RemoteError(node.name, f"the step's second pass edits {path}, which its plan "
                              "did not at this point; what was made is in the journal",
                              "run apply again (a step's apply must not depend on time or "
                              "chance)")
        before = self.edits.pop(0)[1]  # what the plan transformed (the batch checked it)
        after = transform(before)
        if after == before or after is None:
            return None
        step = self._next("file", path)
        if step is None:
            return await self._live_edit(node, path, transform, mode)
        plan, outcome = step
        if after != plan.after:
            raise RemoteError(node.name, f"{path}: the second pass computed other content "
                              "than the plan; the journal holds what was written",
                              "run apply again")
        rec_id = plan.fields["id"]
        if outcome is not None and outcome.refused:
            self.live = True  # not as read: nothing written; again from a fresh read
            cache.pop(path, None)
            return await self._live_edit(node, path, transform, mode)
        if outcome is None or not outcome.ran:
            self.live = True
            if self.lost is not None:
                raise self.lost
            raise RemoteError(node.name, f"connection lost while writing {path}",
                              "re-run: the write is atomic, so the file is either old or new")
        if not outcome.ok:
            self.live = True
            raise RemoteError(
                node.name, f"cannot write {path}: {outcome.output.strip() or outcome.status}",
                "check free space and that the file system is writable; "
                "the file was left as it was")
        cache[path] = after
        self._forget_facts(node)
        return self._note(node, Change("file", path, plan.change.undo, rec_id,
                                       plan.change.diff))

    async def change_command(self, node: Node, argv: list[str], undo_argv: list[str] | None,
                             **kw: Any) -> Change:
        step = None if node.name != self.target.name else self._next("command",
                                                                     quote_argv(argv))
        if step is None:
            self.changed_live = True
            return await super().change_command(node, argv, undo_argv, **kw)
        remedy = kw.get("remedy", "")
        plan, outcome = step
        command = plan.change.target
        self.forget_files(node)
        if outcome is None or not outcome.ran:
            self.live = True
            if self.lost is not None:
                raise self.lost
            raise RemoteError(
                node.name, f"connection lost while running `{command}`; its effect is unknown",
                "re-run apply: the step is checked again before anything is redone")
        if outcome.already:
            return Change("command", command, "nothing (it was already in place)")
        if not outcome.ok:
            self.live = True
            output = self.redact(outcome.output.strip())
            raise RemoteError(
                node.name, f"`{command}` failed (exit {outcome.status}): {output[-400:]}",
                remedy or "read the output above; fix the cause and run apply again")
        return self._note(node, Change("command", command, plan.change.undo,
                                       plan.fields["id"]))

    async def _live_edit(self, node: Node, path: str,
                         transform: Callable[[str | None], str | None], mode: str
                         ) -> Change | None:
        self.changed_live = True
        return await super().edit_file(node, path, transform, mode=mode)

    def leftover(self) -> list[Planned]:
        """Planned changes the second pass did not ask for (it must ask for all of them)."""
        return [] if self.live else self.planned


Ahead = tuple[list[Fact[Any]], list[str]]  # declared facts and file paths, the look-ahead


async def apply_node(ctx: StepContext, step: Step, node: Node, finding: Finding,
                     ahead: Ahead | None = None) -> None:
    """The step's apply on one node: its changes in one round trip where it can be planned
    (none streamed, no read after a change; two or more, or one with something to read
    back), else one at a time as before.

    ahead: the declared facts and files the step's re-check and the run's later steps read
    on this node (Engine._ahead); what the changes make stale of them is read back by the
    batch's own script into the run's caches."""
    if ctx.dry_run or ctx.state is None:
        await step.apply(ctx, node, finding)
        return
    planned: list[Planned] = []
    reads: list[tuple[tuple, RunResult]] = []
    edits: list[tuple[str, str | None]] = []
    try:
        planning = PlanningContext(ctx, node)
        reads = planning.reads
        await step.apply(planning, node, copy.deepcopy(finding))
        planned, edits = planning.planned, planning.edits
    except Unbatchable:
        planned = []
    except Exception:  # noqa: BLE001 - the live apply raises it again, in its own words
        planned = []
    async with ctx.node_guard(node).changing():  # no read fills the caches meanwhile
        await _apply_planned(ctx, step, node, finding, ahead, planned, reads, edits)


async def _apply_planned(ctx: StepContext, step: Step, node: Node, finding: Finding,
                         ahead: Ahead | None, planned: list[Planned],
                         reads: list[tuple[tuple, RunResult]],
                         edits: list[tuple[str, str | None]]) -> None:
    """apply_node once planned: the batch, its replay and read back, or one at a time."""
    refresh = None
    if planned and BATCH_CHANGES and ahead is not None:
        refresh = await _refresh(ctx, node, ahead)
    if not BATCH_CHANGES or len(planned) < (1 if refresh is not None else 2):
        await step.apply(ReplayContext(ctx, node, reads, [], []), node, finding)
        return
    outcomes, lost, read_back = await _run_batch(ctx, node, planned, refresh)
    if all(o is None for o in outcomes):  # nothing ran: one at a time, live
        await step.apply(ReplayContext(ctx, node, reads, [], []), node, finding)
        return
    replay = ReplayContext(ctx, node, reads, planned, outcomes, lost, edits)
    try:
        await step.apply(replay, node, finding)
    finally:  # raised or not: the node is as the reads found it, unless changed since
        if refresh is not None and read_back is not None and not replay.changed_live:
            ctx.take_refresh(node, refresh, read_back)
    if replay.leftover():
        raise RemoteError(
            node.name, "the step's second pass asked for fewer changes than it planned; "
            "what was made is in the journal", "run apply again")


async def _refresh(ctx: StepContext, node: Node, ahead: Ahead) -> Refresh | None:
    """What the batch reads back after its changes (None: nothing): the node reached first,
    as the batch does, for its sudo mode (sudo=False facts only as the login user)."""
    remote = ctx.pool.get(node)
    try:
        await remote.connect()
        mode = await remote.sudo_mode()
    except RemoteError:
        return None  # the batch's own connect says it
    return ctx.stale_after_change(node, ahead[0], ahead[1], as_login=mode == "none")


async def _run_batch(ctx: StepContext, node: Node, planned: list[Planned],
                     refresh: Refresh | None = None,
                     ) -> tuple[list[Outcome | None], RemoteError | None, RunResult | None]:
    """Journal every planned change, run the batch, end each record from its marker.
    [None, ...]: the script did not start (each record ended aborted: nothing ran).
    The third: what the batch read back after its changes (refresh), as the output of the
    reads alone; None when it did not get there."""
    remote = ctx.pool.get(node)
    await remote.connect()  # a refused login must not leave records open
    await remote.sudo_mode()
    cluster = ctx.plan.cluster.name
    items: list[BatchItem] = []
    progress = ""
    for plan in planned:
        if plan.kind == "file":
            rec_id = _new_id()
            raw = None if plan.before is None else plan.before.encode(
                "utf-8", errors="surrogateescape")
            new = plan.after.encode("utf-8", errors="surrogateescape")
            backup = backup_path(cluster, plan.path, rec_id) if raw is not None else None
            progress = progress or progress_path(cluster, rec_id)
            plan.fields = dict(id=rec_id, kind="file", target=plan.path, undo=plan.change.undo,
                               backup=backup, before_hash=None if raw is None else sha256(raw),
                               after_hash=sha256(new), progress=progress)
            items.append(FileItem(rec_id, plan.path, new,
                                  expect=ABSENT if raw is None else sha256(raw),
                                  after=sha256(new), backup=backup, mode=plan.mode))
        else:
            rec_id = _new_id()
            progress = progress or progress_path(cluster, rec_id)
            plan.fields = dict(id=rec_id, kind="command", target=plan.change.target,
                               undo=plan.change.undo, argv=plan.argv, undo_argv=plan.undo_argv,
                               undo_ok_text=list(plan.undo_ok_text), progress=progress,
                               **({"undo_step": plan.undo_step, "undo_data": plan.undo_data}
                                  if plan.undo_step else {}))
            items.append(CommandItem(
                rec_id, plan.change.target,
                None if plan.input is None else plan.input.encode(), plan.ok_text))
    settled: list[str] = ctx.shared.setdefault(SETTLED, {}).setdefault(node.name, [])
    reads = refresh.script(ctx.plan, node) if refresh is not None else ""
    token = _new_id() if reads else ""
    script, data = batch_script(items, progress, tuple(settled), reads, token)
    for plan in planned:
        ctx._record(node, **plan.fields)  # begin, each (the after-begin fault point)
    for plan in planned:
        if plan.kind == "command":
            ctx.bus.emit(CommandRun(node.name, plan.change.target, ctx.step_id))
    lost: RemoteError | None = None
    timeout = sum(p.timeout if p.kind == "command" else FILE_TIMEOUT for p in planned)
    timeout += READS_TIMEOUT + 10 if reads else 0  # the reads end by themselves by then
    try:
        whole = await remote.run_changes(script, data, timeout=timeout)
    except CommandTimeout as exc:
        lost = CommandTimeout(node.name, f"this step's {len(planned)} changes did not finish "
                              f"within {min(timeout, command_timeout_cap() or timeout):g}s; "
                              "their effect is unknown", exc.remedy)
        whole = RunResult(script, None, "", exc.message)
    ready, got = parse_batch(whole.stdout, len(planned), token)
    said = split_reads(whole.stdout, token)[1]
    read_back = (None if said is None or whole.exit_status is None
                 else RunResult(reads, whole.exit_status, said, whole.stderr))
    if ready:
        settled.clear()  # the script removed them
    if whole.exit_status is not None and not ready:
        for plan in planned:
            ctx._end(plan.fields["id"], "aborted", note="not run: its batch did not start")
        return [None] * len(planned), None, None
    outcomes: list[Outcome | None] = []
    stopped = False
    open_left = False
    for plan, outcome in zip(planned, got, strict=True):
        rec_id = plan.fields["id"]
        outcomes.append(outcome)
        if outcome.ran and plan.kind == "file" and outcome.refused:
            ctx._end(rec_id, "aborted", note="the file changed since it was read")
            stopped = True
        elif outcome.ran:
            if outcome.ok or plan.kind == "command":
                _fault_point("after-write")  # it reached the node; its end is not kept yet
            if outcome.ok:
                ctx._end(rec_id, "done")
            elif plan.kind == "command" and outcome.already:
                ctx._end(rec_id, "aborted", note="already in place")
            else:
                ctx._end(rec_id, "failed", error=ctx.redact(outcome.output)[-500:])
                stopped = True
        elif stopped:
            ctx._end(rec_id, "aborted", note="not run: an earlier change of its batch failed")
        else:
            open_left = True  # the connection dropped: recover_interrupted decides
    if not open_left:
        settled.append(progress)
    return outcomes, lost, read_back


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


def decide_records(records: list[dict[str, Any]], texts: dict[str, str | None]
                   ) -> dict[str, tuple[str, str] | None]:
    """record id -> (phase, note) or None, for batched command records left `begin`, from
    the text of each progress file they name (None: the file is gone)."""
    out: dict[str, tuple[str, str] | None] = {}
    for record in records:
        text = texts.get(record.get("progress", ""))
        out[record["id"]] = decide(record, None if text is None else parse_progress(text))
    return out
