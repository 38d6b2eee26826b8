"""The step protocol: a read-only check, a change only where the check asks for it, a journal.

Following pyinfra's split of facts from operations, a step's check reads facts (commands and
files) and hands them to pure decision functions; apply only goes through `StepContext`, which
is the single path for changes: every change is journaled before and after it is made, every
file edit is backed up on the node and written atomically, and in dry-run nothing is executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import difflib
import os
import shlex
import signal
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from omwizard.engine.events import CommandRun, EventBus, OutputLine
from omwizard.engine.node_guard import NodeGuard
from omwizard.engine.redact import Redactor
from omwizard.engine.schedule import EVERYTHING, Resource
from omwizard.facts.base import Fact, Files, StepData
from omwizard.remote.parts import part_results, parts_script
from omwizard.remote.results import RemoteError, RunResult, quote_argv, sha256
from omwizard.remote.writes import ABSENT

if TYPE_CHECKING:
    from omwizard.engine.state import StateStore
    from omwizard.plan.model import Node, Plan
    from omwizard.remote.ssh import RemotePool

OK = "ok"
NEEDS_CHANGE = "needs-change"
WOULD_CHANGE = "would-change"
CHANGED = "changed"
ROLLED_BACK = "rolled-back"
FAILED = "failed"
SKIPPED = "skipped"
STATUSES = (OK, NEEDS_CHANGE, WOULD_CHANGE, CHANGED, ROLLED_BACK, FAILED, SKIPPED)
# one symbol per status, shared by the CLI and the TUI grid
STATUS_SYMBOLS = {
    OK: "✓",
    CHANGED: "✎",
    ROLLED_BACK: "↶",
    WOULD_CHANGE: "~",
    NEEDS_CHANGE: "!",
    FAILED: "✗",
    SKIPPED: "-",
}

BACKUP_DIR = "/var/backups/omwizard"
CHECKING = "_checking"  # shared: step id -> done when its check in this run is over
FOUND = "_found"  # shared: step id -> {node: Finding} of its check in this run
# shared: ("fact", name) / ("file", path) -> what the steps declaring that read read
# (Step.reads, everything for one that declares none): a change forgets only the cached reads
# its declared writes can alter (StepContext._alters); set by the engine (read_by)
READ_BY = "_read_by"
NOT_OM = "not an OpenMeetings node (role om)"

D = TypeVar("D", bound=StepData)
T = TypeVar("T")


@dataclass
class Finding:
    """What a check saw on one node: a status, the evidence it judged, and the remedy.

    detail, remedy and evidence are for people only; whatever code reads later (the apply,
    another step, the export, a screen) goes in `data`, a typed StepData.
    """

    status: str
    detail: str
    evidence: list[str] = field(default_factory=list)
    remedy: str = ""
    diff: str = ""
    data: StepData | None = None

    @classmethod
    def ok(cls, detail: str, *evidence: str, data: StepData | None = None) -> Finding:
        return cls(OK, detail, list(evidence), data=data)

    @classmethod
    def needs(
        cls, detail: str, remedy: str, *evidence: str, data: StepData | None = None
    ) -> Finding:
        return cls(NEEDS_CHANGE, detail, list(evidence), remedy, data=data)

    @classmethod
    def failed(
        cls, detail: str, remedy: str, *evidence: str, data: StepData | None = None
    ) -> Finding:
        return cls(FAILED, detail, list(evidence), remedy, data=data)

    def typed(self, kind: type[D]) -> D:
        """The data as the type the caller's apply expects (a check and its apply agree)."""
        if not isinstance(self.data, kind):
            raise TypeError(f"finding data is {type(self.data).__name__}, not {kind.__name__}")
        return self.data

    @classmethod
    def skipped(cls, detail: str) -> Finding:
        return cls(SKIPPED, detail)


@dataclass
class Change:
    """One change made (or, in dry-run, that would be made) on a node."""

    kind: str  # file | command
    target: str
    undo: str
    record_id: str | None = None
    diff: str = ""
    # what a command printed (stdout), for the step that ran it: never journaled or reported
    output: str = field(default="", repr=False, compare=False)

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "undo": self.undo}


@dataclass
class Result:
    """One step on one node: the unit of every report (CLI, JSON, TUI grid, export)."""

    section: str
    step: str
    node: str
    status: str
    detail: str
    changes: list[dict[str, str]] = field(default_factory=list)
    remedy: str = ""
    evidence: list[str] = field(default_factory=list)
    diff: str = ""
    at: float = field(default_factory=time.time)
    data: StepData | None = None

    @property
    def key(self) -> str:
        return f"{self.section}/{self.step}/{self.node}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "section": self.section,
            "step": self.step,
            "node": self.node,
            "status": self.status,
            "detail": self.detail,
            "changes": self.changes,
        }
        if self.remedy:
            out["remedy"] = self.remedy
        if self.evidence:
            out["evidence"] = self.evidence
        if self.diff:
            out["diff"] = self.diff
        if self.data is not None:
            out["data"] = self.data.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """A result as saved in the state (as_json plus "at"), typed data rebuilt."""
        return cls(
            section=data["section"],
            step=data["step"],
            node=data["node"],
            status=data["status"],
            detail=data.get("detail", ""),
            changes=list(data.get("changes", [])),
            remedy=data.get("remedy", ""),
            evidence=list(data.get("evidence", [])),
            diff=data.get("diff", ""),
            at=float(data.get("at", 0)),
            data=StepData.from_json(data.get("data")),
        )


Skip = Callable[["Plan", "Node"], "str | None"]


def only_om(plan: Plan, node: Node) -> str | None:
    return None if node.is_om else NOT_OM


class Step:
    """Base class: a subclass declares where it runs and implements check (and apply).

    A section module lists its steps with their words, in the page's order:
    `STEPS = [DataDirStep("data-dir", "OM data dir", DOC_DATA_DIR), ...]` (name, title, doc);
    each module's base sets `section`. Where a step runs is declared, not coded: `only_om`
    (role om; `om_reason` says why in the step's own words), then each rule of `skip_when`
    in order (a rule returns the skip reason or None). `facts`: what the engine gathers for
    each node before the check, all of a node's in one round trip; the check reads them with
    `await ctx.fact(node, FACT)`. `has_apply` follows from the class defining apply.
    """

    section: ClassVar[str] = ""
    name: str = ""
    title: str = ""
    doc: str = ""  # the documentation's words for this step, shown beside it in the TUI
    serial: ClassVar[bool] = False  # nodes one at a time (restarts), instead of concurrently
    cluster_wide: ClassVar[bool] = False  # check_all sees all nodes together (ping, ports)
    has_apply: ClassVar[bool] = False  # set from whether the class defines apply
    only_om: ClassVar[bool] = False
    om_reason: ClassVar[str] = NOT_OM
    skip_when: ClassVar[tuple[Skip, ...]] = ()
    facts: ClassVar[tuple[Fact[Any], ...]] = ()
    files: ClassVar[tuple[Files, ...]] = ()  # files the check reads, gathered with the facts
    # ids ("section.step") of steps whose check must be over before this one's starts when
    # a check runs its steps at once (Engine.check): this check reads what theirs left in
    # ctx.shared, or the two must not overlap (the same listening ports). Steps not in the
    # run are not waited for.
    after: tuple[str, ...] = ()
    # what on a node the check reads and the apply can change (engine/schedule.py): an apply
    # runs a step as soon as no earlier step is still to change what it reads, or to read or
    # change what it changes. None: everything (it waits for, and holds back, every change).
    reads: ClassVar[frozenset[Resource] | None] = None
    writes: ClassVar[frozenset[Resource] | None] = None

    def __init__(self, name: str = "", title: str = "", doc: str = "") -> None:
        """A section lists its steps with their words: STEPS = [XStep("x", "Title", DOC)]."""
        self.name = name or self.name
        self.title = title or self.title
        self.doc = doc or self.doc

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "has_apply" not in cls.__dict__:  # a step changes things when it has an apply
            cls.has_apply = cls.apply is not Step.apply

    @property
    def id(self) -> str:
        return f"{self.section}.{self.name}"

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        """None when the step runs on this node, else the reason it is skipped."""
        if self.only_om and not node.is_om:
            return self.om_reason
        for rule in self.skip_when:
            reason = rule(ctx.plan, node)
            if reason is not None:
                return reason
        return None

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        """A cluster-wide step checks one node as a cluster of the nodes given: check_all."""
        if not self.cluster_wide:
            raise NotImplementedError(f"{self.id} has no check")
        return (await self.check_all(ctx, [node]))[node.name]

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        """Per-node checks run concurrently by default; cluster-wide steps override this."""
        if self.cluster_wide:
            raise NotImplementedError(f"{self.id} is cluster-wide: it must define check_all")
        findings = await asyncio.gather(*(ctx.guard(node, self.check(ctx, node)) for node in nodes))
        return {node.name: finding for node, finding in zip(nodes, findings, strict=True)}

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        raise NotImplementedError(f"{self.id} changes nothing; its check reports what to do")

    def order(self, ctx: StepContext, nodes: list[Node], found: dict[str, Finding]
              ) -> list[Node]:
        """The order a serial step applies its nodes in (default: the plan's)."""
        return nodes

    async def undo(self, ctx: StepContext, node: Node, data: StepData) -> str | None:
        """Undo a change journaled naming this step (change_command's undo_step) with typed,
        secret-free undo_data: for an undo that needs what no journal may keep (a password,
        taken from the plan at rollback time). Returns what was done, or None when it cannot
        be done now (the record's undo words then say what is left)."""
        return None


# -- test-only fault hook ---------------------------------------------------------------------
# OMW_FAULT="after-begin:N" SIGKILLs this process right after the Nth journal_begin of the run;
# "after-write:N" right after the Nth change reached a node (file written or command run) but
# before its journal_end; "after-undo:N" (engine/runner.py) right after the Nth undo of a
# rollback reached its node, before the journal says undone. Only the crash-and-resume tests
# set it; unset, it does nothing.
_FAULT_COUNTS: dict[str, int] = {}


def _fault_point(point: str) -> None:
    spec = os.environ.get("OMW_FAULT")
    if not spec:
        return
    kind, _, n = spec.partition(":")
    if kind != point:
        return
    _FAULT_COUNTS[point] = _FAULT_COUNTS.get(point, 0) + 1
    if str(_FAULT_COUNTS[point]) == n:
        os.kill(os.getpid(), signal.SIGKILL)


def unified_diff(path: str, before: str | None, after: str | None) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        (after or "").splitlines(keepends=True),
        fromfile=f"{path} (now)" if before is not None else "/dev/null",
        tofile=f"{path} (planned)" if after is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def backup_path(cluster: str, path: str, record_id: str) -> str:
    flat = path.strip("/").replace("/", "%")
    return f"{BACKUP_DIR}/{cluster}/{record_id[:12]}-{flat}"


class StepContext:
    """What a step sees of the world: the plan, the nodes' commands and files, the journal."""

    def __init__(
        self,
        plan: Plan,
        pool: RemotePool,
        state: StateStore | None,
        bus: EventBus,
        *,
        dry_run: bool = False,
        redact: Redactor | None = None,
        step: Step | None = None,
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.plan = plan
        self.pool = pool
        self.state = state
        self.bus = bus
        self.dry_run = dry_run
        self.redact = redact or Redactor()
        self.step = step
        self.shared = shared if shared is not None else {}
        self.changes: dict[str, list[Change]] = {}

    def bind(self, step: Step) -> StepContext:
        """The same run's context for one step: shared caches, its own list of changes."""
        bound = copy.copy(self)
        bound.step = step
        bound.changes = {}
        return bound

    @property
    def step_id(self) -> str:
        return self.step.id if self.step else ""

    def node(self, name: str) -> Node:
        return self.plan.node(name)

    async def checked(self, step_id: str) -> None:
        """Wait until that step's check in this run is over, for a check that reads what
        it left in `shared` only at the end (Engine.check runs the steps at once; a step
        that must wait from its start declares `after`). Returns at once when the step is
        not being checked in a run of steps at once (one after another: it ran before)."""
        over = self.shared.get(CHECKING, {}).get(step_id)
        if over is not None and not over.done():
            await asyncio.wait([over])

    async def found_in_run(self, step_id: str, nodes: list[Node]) -> dict[str, Finding] | None:
        """What that step's check found on these nodes in this run of steps at once (copies,
        once it is over); None when it is not in such a run or did not check them all. A
        check changes nothing, so a step that re-runs another's proof takes these."""
        if step_id not in self.shared.get(CHECKING, {}):
            return None
        await self.checked(step_id)
        seen = self.shared.get(FOUND, {}).get(step_id, {})
        if any(n.name not in seen for n in nodes):
            return None
        return {n.name: copy.deepcopy(seen[n.name]) for n in nodes}

    async def guard(self, node: Node, work: Any) -> Finding:
        """A RemoteError becomes a failed finding for that node; other nodes go on."""
        try:
            return await work
        except RemoteError as exc:
            return Finding.failed(exc.message, exc.remedy)

    # -- reading ----------------------------------------------------------------------------

    async def run(
        self,
        node: Node,
        argv: list[str] | str,
        *,
        sudo: bool = True,
        input: str | None = None,
        timeout: float = 60,
        stream: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> RunResult:
        """A command whose output is evidence; read-only unless called from change_command.

        stream: every output line goes to the event bus as it comes (the live log);
        on_line: the caller sees every line too (tcpdump's "listening on"); implies stream.
        """
        remote = self.pool.get(node)
        sink = None
        if stream or on_line is not None:

            def sink(line: str) -> None:
                self.bus.emit(OutputLine(node.name, self.redact(line), self.step_id))
                if on_line is not None:
                    on_line(line)

        self.bus.emit(CommandRun(node.name, quote_argv(argv), self.step_id))
        return await remote.run(argv, sudo=sudo, input=input, timeout=timeout, on_line=sink)

    def _file_cache(self, node: Node) -> dict[str, str | None]:
        return self.shared.setdefault("_files", {}).setdefault(node.name, {})

    def node_guard(self, node: Node) -> NodeGuard:
        """The node's guard for this run (engine/node_guard.py): reads that fill the caches
        share it, a change has it alone."""
        guards: dict[str, NodeGuard] = self.shared.setdefault("_guards", {})
        return guards.setdefault(node.name, NodeGuard(node.name))

    def forget_files(self, node: Node) -> None:
        """After a change the wizard cannot see into (a command), read files afresh (those
        it can alter: _alters)."""
        files = self._file_cache(node)
        for path in [p for p in files if self._alters("file", p)]:
            del files[path]
        self._forget_facts(node)

    def _alters(self, kind: str, key: str) -> bool:
        """Whether this step's change can alter a read of that kind ("fact" name, "file"
        path): its declared `writes` meet what the steps that declare the read read
        (READ_BY, the run's catalogue: engine/schedule.py); a read no step declares, or a
        step that declares no writes, can alter anything. So a change leaves the cached
        reads of what it does not touch, which steps running beside it go on using."""
        writes = None if self.step is None else self.step.writes
        if writes is None:
            return True
        read_by = self.shared.get(READ_BY, {}).get((kind, key))
        return read_by is None or bool(read_by & writes)

    # -- facts ------------------------------------------------------------------------------

    def _fact_cache(self, node: Node) -> dict[str, _Known]:
        return self.shared.setdefault("_facts", {}).setdefault(node.name, {})

    def _forget_facts(self, node: Node) -> None:
        """A change was made on the node: every fact it can alter is read again."""
        cache = self._fact_cache(node)
        for name in [n for n, known in cache.items()
                     if not known.stable and self._alters("fact", n)]:
            del cache[name]

    async def run_parts(
        self, node: Node, parts: dict[str, str], *, sudo: bool = True, timeout: float = 60
    ) -> dict[str, RunResult]:
        """Several read-only shell parts as ONE command (remote.parts); {part: its RunResult}."""
        whole = await self.run(node, parts_script(parts), sudo=sudo, timeout=timeout)
        return part_results(parts, whole)

    def stale_after_change(self, node: Node, facts: Iterable[Fact[Any]],
                           paths: Iterable[str], *, as_login: bool) -> Refresh | None:
        """What of these declared reads a change on the node makes stale, for its batch to
        read back after its changes (engine/batch.py), or None: every fact a change can
        alter (and any not known), and every file (one the batch writes is read back too:
        the proof that it is as written, not the copy the wizard meant to write).

        Only what the step's change can alter (_alters): the rest stays cached as it was.
        A fact declared sudo=False goes only when the batch runs as the login user itself
        (as_login: the node's sudo mode is "none"). Else the batch runs as root, whose view
        is not the login user's (HOME, `id`, PATH, a user's D-Bus), and running it as that
        user from root (`sudo -u`) would still not be the login's environment: such a fact
        is left to the re-check's own command, as it is read without a batch."""
        cache = self._fact_cache(node)
        chosen = tuple({f.name: f for f in facts if (f.sudo or as_login)
                        and not (f.stable and f.name in cache)
                        and self._alters("fact", f.name)}.values())
        files = tuple(p for p in dict.fromkeys(paths) if self._alters("file", p))
        return Refresh(chosen, files) if chosen or files else None

    def take_refresh(self, node: Node, refresh: Refresh, result: RunResult) -> None:
        """Fill the fact and file caches from what a batch read after its changes (its
        reads' output, `result`), as a gather would have: each fact whose part ended (its
        parser's value, its command and output as evidence), the files when their dump
        ended well. A part cut short (the node dropped, the reads timed out) or a parser
        that refuses the output leaves its fact unknown: the next gather reads it itself."""
        if result.exit_status is None:
            return
        parts = refresh.parts(self.plan, node)
        got = part_results(parts, result)
        dump = got.pop(FILES_PART, None)
        if dump is not None and dump.ok:
            self._file_cache(node).update(parse_file_dump(dump.stdout, list(refresh.paths)))
        cache = self._fact_cache(node)
        for fact in refresh.facts:
            part = got.get(fact.name)
            if part is None or part.exit_status is None:
                continue
            try:
                value = fact.parse(part.stdout)
            except Exception:  # noqa: BLE001 - said by the gather that reads it again
                continue
            cache[fact.name] = _Known(value, part, fact.stable)

    async def gather(
        self, node: Node, facts: Iterable[Fact[Any]], paths: Iterable[str] = ()
    ) -> None:
        """The facts (and files) not yet known for this node, in one round trip per sudo
        mode, both modes at once.

        One fact runs as its own command (its evidence is the command itself); several go
        through run_parts, each part parsed by its fact's parser. Files go as one more part
        of the sudo round trip (read_texts' script), into the file cache. A fact or file that
        a concurrent read (another step's, or the run's gather) is reading already is waited
        for, not read twice; when that read failed, this one reads it itself.
        """
        async with self.node_guard(node).reading():
            await self._gather(node, list(facts), list(dict.fromkeys(paths)))

    async def _gather(self, node: Node, facts: list[Fact[Any]], paths: list[str]) -> None:
        cache = self._fact_cache(node)
        files = self._file_cache(node)

        def missing() -> tuple[dict[str, Fact[Any]], list[str]]:
            return ({f.name: f for f in facts if f.name not in cache},
                    [p for p in paths if p not in files])

        wanted, unread = await self._await_pending(
            node, missing, lambda w, u: [("fact", n) for n in w] + [("file", p) for p in u])
        groups = [
            (sudo, [f for f in wanted.values() if f.sudo is sudo], unread if sudo else [])
            for sudo in (True, False)
        ]
        keys = [("fact", n) for n in wanted] + [("file", p) for p in unread]
        with self._reading(node, keys):
            got = await asyncio.gather(*(self._gather_group(node, sudo, group, unread)
                                         for sudo, group, unread in groups if group or unread),
                                       return_exceptions=True)
        for outcome in got:
            if isinstance(outcome, BaseException):
                raise outcome

    def _pending(self, node: Node) -> dict[tuple[str, str], asyncio.Future[None]]:
        """The reads in flight on a node: ("fact", name) / ("file", path) -> done when over."""
        pending: dict[tuple[str, str], asyncio.Future[None]] = (
            self.shared.setdefault("_pending", {}).setdefault(node.name, {}))
        return pending

    async def _await_pending(self, node: Node, missing: Callable[[], Any],
                             keys_of: Callable[..., list[tuple[str, str]]]) -> Any:
        """What is still missing once the reads in flight for it are over (no await between
        this answer and the caller marking its own reads as in flight)."""
        pending = self._pending(node)
        while True:
            left = missing()
            busy = [pending[k] for k in keys_of(*left) if k in pending]
            if not busy:
                return left
            await asyncio.wait(busy)

    @contextlib.contextmanager
    def _reading(self, node: Node, keys: list[tuple[str, str]]) -> Iterator[None]:
        """Mark these reads in flight on the node until the block ends (however it ends)."""
        pending = self._pending(node)
        loop = asyncio.get_running_loop()
        mine = {k: loop.create_future() for k in keys if k not in pending}
        pending.update(mine)
        try:
            yield
        finally:
            for key, future in mine.items():
                if pending.get(key) is future:
                    del pending[key]
                future.set_result(None)

    async def _gather_group(
        self, node: Node, sudo: bool, group: list[Fact[Any]], paths: list[str]
    ) -> None:
        """One round trip: these facts (and files) of one sudo mode."""
        cache = self._fact_cache(node)
        if len(group) == 1 and not paths:
            fact = group[0]
            results = {fact.name: await self.run(node, fact.command(self.plan, node),
                                                 sudo=sudo)}
        else:
            parts = {f.name: f.command(self.plan, node) for f in group}
            if paths:
                parts[FILES_PART] = file_dump_script(paths)
            results = await self.run_parts(node, parts, sudo=sudo)
            dump = results.pop(FILES_PART, None)
            if dump is not None and dump.ok:  # else read_texts reads them, and says why not
                self._file_cache(node).update(parse_file_dump(dump.stdout, paths))
        for fact in group:
            result = results[fact.name]
            if result.exit_status is None:
                raise RemoteError(
                    node.name,
                    f"reading {fact.name} was cut short: {result.output[-200:]}",
                    "check the connection to the node and check again",
                )
            cache[fact.name] = _Known(fact.parse(result.stdout), result, fact.stable)

    async def fact(self, node: Node, fact: Fact[T]) -> T:
        """The fact's parsed value for this node; gathered once per run (cached)."""
        known = self._fact_cache(node).get(fact.name)
        if known is None:
            async with self.node_guard(node).reading():  # no change drops it between the two
                await self.gather(node, [fact])
                known = self._fact_cache(node)[fact.name]
        value: T = known.value
        return value

    async def fact_evidence(self, node: Node, fact: Fact[Any]) -> str:
        """The command and output the fact was read from, for a finding's evidence."""
        known = self._fact_cache(node).get(fact.name)
        if known is None:
            async with self.node_guard(node).reading():
                await self.gather(node, [fact])
                known = self._fact_cache(node)[fact.name]
        return known.result.evidence()

    async def read_text(self, node: Node, path: str) -> str | None:
        """The file's text or None; read once per engine run (later reads come from memory).

        Several steps read the same files (persistence.xml, the unit, hazelcast.xml); one
        round trip per file per run is enough, because every change made through this
        context updates or drops the cached copy.
        """
        return (await self.read_texts(node, [path]))[path]

    async def read_texts(self, node: Node, paths: list[str]) -> dict[str, str | None]:
        """Several files in one round trip (base64 between markers), cached like read_text;
        a file another read is fetching already is waited for, not read twice."""
        async with self.node_guard(node).reading():
            return await self._read_texts(node, paths)

    async def _read_texts(self, node: Node, paths: list[str]) -> dict[str, str | None]:
        cache = self._file_cache(node)
        wanted: list[str] = await self._await_pending(
            node, lambda: [p for p in dict.fromkeys(paths) if p not in cache],
            lambda *w: [("file", p) for p in w])
        if wanted:
            with self._reading(node, [("file", p) for p in wanted]):
                result = await self.run(node, file_dump_script(wanted))
                if not result.ok:
                    raise RemoteError(
                        node.name,
                        f"cannot read {', '.join(wanted)}: "
                        f"{result.output or result.exit_status}",
                        "check that the files are readable by the SSH user (or through sudo)",
                    )
                cache.update(parse_file_dump(result.stdout, wanted))
        return {p: cache[p] for p in paths}

    # -- changing ---------------------------------------------------------------------------

    def _note(self, node: Node, change: Change) -> Change:
        self.changes.setdefault(node.name, []).append(change)
        return change

    def _record(self, node: Node, **fields: Any) -> str:
        assert self.step is not None
        record = {
            "section": self.step.section,
            "step": self.step.name,
            "node": node.name,
            **fields,
        }
        if self.state is None:
            return uuid.uuid4().hex
        rec_id = self.state.journal_begin(record)
        _fault_point("after-begin")
        return rec_id

    def _end(self, record_id: str, phase: str, **fields: Any) -> None:
        if self.state is not None:
            self.state.journal_end(record_id, phase, **fields)

    async def edit_file(
        self,
        node: Node,
        path: str,
        transform: Callable[[str | None], str | None],
        *,
        mode: str = "0644",
    ) -> Change | None:
        """Read, transform (pure), diff, back up, write atomically; journaled; None if no-op.

        A file the run has read already (gathered with a step's declared files, or written
        by an earlier edit) is transformed from that copy, without a read of its own; the
        write is then a compare-and-swap in the same round trip (remote.writes): when the
        file is no longer what was read, nothing is written, the record ends aborted, and
        the edit starts again from a fresh read.
        """
        remote = self.pool.get(node)
        cache = self._file_cache(node)
        fresh = path not in cache
        if fresh:
            raw = await remote.read_file(path)
            before = None if raw is None else raw.decode("utf-8", errors="surrogateescape")
        else:
            before = cache[path]
            raw = None if before is None else before.encode("utf-8", errors="surrogateescape")
        after = transform(before)
        if after == before or after is None:
            return None
        diff = self.redact(unified_diff(path, before, after))
        new = after.encode("utf-8", errors="surrogateescape")
        undo = f"restore {path} from its backup" if before is not None else f"remove {path}"
        if self.dry_run:
            return self._note(node, Change("file", path, undo, diff=diff))
        rec_id = uuid.uuid4().hex
        backup = backup_path(self.plan.cluster.name, path, rec_id) if raw is not None else None
        rec_id = self._record(
            node,
            id=rec_id,
            kind="file",
            target=path,
            undo=undo,
            backup=backup,
            before_hash=None if raw is None else sha256(raw),
            after_hash=sha256(new),
        )
        async with self.node_guard(node).changing():
            try:
                written = await remote.write_file(
                    path, new, backup=backup, mode=mode,
                    expect=ABSENT if raw is None else sha256(raw))
            except RemoteError as exc:
                # The write is atomic: the file is as it was; the journal says so.
                self._end(rec_id, "failed", error=exc.message)
                raise
            if written:
                self._file_cache(node)[path] = after
                self._forget_facts(node)
        if not written:
            # Not as read: nothing was backed up or written. Once more from a fresh read.
            self._end(rec_id, "aborted", note="the file changed since it was read")
            cache.pop(path, None)
            if fresh:
                raise RemoteError(
                    node.name, f"{path} changes while omwizard writes it; nothing was written",
                    "find what else edits the file, then run apply again")
            return await self.edit_file(node, path, transform, mode=mode)
        _fault_point("after-write")
        self._end(rec_id, "done")
        return self._note(node, Change("file", path, undo, rec_id, diff))

    async def change_command(
        self,
        node: Node,
        argv: list[str],
        undo_argv: list[str] | None,
        *,
        ok_text: tuple[str, ...] = (),
        undo_ok_text: tuple[str, ...] = (),
        timeout: float = 120,
        stream: bool = False,
        remedy: str = "",
        input: str | None = None,
        undo_text: str = "",
        undo_step: str = "",
        undo_data: StepData | None = None,
    ) -> Change:
        """Run a changing command, journaled with the command that undoes it.

        ok_text: outputs that mean "already so" (route add's "File exists"): not an error.
        input: the command's stdin (SQL carrying a password): never journaled nor shown.
        undo_text: what to say when there is no undo_argv (why nothing is undone).
        undo_step, undo_data: rollback calls that step's `undo` (same section) with the data
        instead of running undo_argv; the data is journaled, so it must hold no secret.
        """
        command = quote_argv(argv)
        undo = quote_argv(undo_argv) if undo_argv else (undo_text or "nothing to undo")
        if self.dry_run:
            return self._note(node, Change("command", command, undo))
        # Reach the node (and sudo) before journaling: a refused login or sudo password must
        # not leave a record open as if the command might have run.
        remote = self.pool.get(node)
        await remote.connect()
        await remote.sudo_mode()
        rec_id = self._record(
            node,
            kind="command",
            target=command,
            undo=undo,
            argv=list(argv),
            undo_argv=list(undo_argv) if undo_argv else None,
            undo_ok_text=list(undo_ok_text),
            **({"undo_step": undo_step, "undo_data": undo_data.to_json()}
               if undo_step and undo_data is not None else {}),
        )
        async with self.node_guard(node).changing():
            result = await self.run(node, argv, timeout=timeout, stream=stream, input=input)
            self.forget_files(node)
        _fault_point("after-write")
        already = not result.ok and any(t in result.output for t in ok_text)
        if result.exit_status is None:
            # Leave the record open: the next apply checks again before anything else.
            raise RemoteError(
                node.name,
                f"connection lost while running `{command}`; its effect is unknown",
                "re-run apply: the step is checked again before anything is redone",
            )
        if not result.ok and not already:
            self._end(rec_id, "failed", error=self.redact(result.output)[-500:])
            raise RemoteError(
                node.name,
                f"`{command}` failed (exit {result.exit_status}): "
                f"{self.redact(result.output)[-400:]}",
                remedy or "read the output above; fix the cause and run apply again",
            )
        if already:
            # Nothing was changed by us: keep the record, but nothing to undo.
            self._end(rec_id, "aborted", note="already in place")
            return Change("command", command, "nothing (it was already in place)")
        self._end(rec_id, "done")
        return self._note(node, Change("command", command, undo, rec_id, output=result.stdout))


@dataclass(frozen=True)
class _Known:
    """A gathered fact: its value, the command it came from, whether changes can alter it."""

    value: Any
    result: RunResult
    stable: bool


FILES_PART = "_files"  # the part of a gather round trip that dumps declared files


@dataclass(frozen=True)
class Refresh:
    """Declared facts and files a batch reads back after its changes, in its own script
    (engine/batch.py), so the step's re-check and the next steps' checks find them cached
    instead of reading them in a round trip of their own (StepContext.stale_after_change,
    take_refresh). The same parts as a gather's: each fact's command, the files' dump."""

    facts: tuple[Fact[Any], ...]
    paths: tuple[str, ...]

    def parts(self, plan: Plan, node: Node) -> dict[str, str]:
        parts = {f.name: f.command(plan, node) for f in self.facts}
        if self.paths:
            parts[FILES_PART] = file_dump_script(list(self.paths))
        return parts

    def script(self, plan: Plan, node: Node) -> str:
        """One read-only shell script of every part (remote.parts' markers)."""
        return parts_script(self.parts(plan, node))


def file_dump_script(paths: list[str]) -> str:
    """Each file as `==OMW PATH` and its base64 on one line; `==OMW-ABSENT PATH` if none."""
    return (
        "for p in " + " ".join(shlex.quote(p) for p in paths) + "; do "
        'if [ -f "$p" ]; then printf "==OMW %s\\n" "$p"; base64 -w0 -- "$p" || exit 1; '
        'printf "\\n"; else printf "==OMW-ABSENT %s\\n" "$p"; fi; done'
    )


def parse_file_dump(output: str, paths: list[str]) -> dict[str, str | None]:
    """Files from read_texts' marker/base64 output; a path not in the output is absent."""
    import base64

    found: dict[str, str | None] = dict.fromkeys(paths)
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("==OMW ") and i + 1 < len(lines):
            raw = base64.b64decode(lines[i + 1].strip() or b"")
            found[line[6:]] = raw.decode("utf-8", errors="surrogateescape")
    return found


def read_by(steps: Iterable[Step], plan: Plan) -> dict[tuple[str, str], frozenset[Resource]]:
    """READ_BY for these steps (the whole catalogue: a fact one step declares may be read by
    another as it goes): each declared fact and file path (on any node of the plan) with
    the union of what its declaring steps read."""
    out: dict[tuple[str, str], frozenset[Resource]] = {}
    for step in steps:
        reads = EVERYTHING if step.reads is None else step.reads
        keys = [("fact", f.name) for f in step.facts] + [
            ("file", p) for f in step.files for node in plan.nodes for p in f.paths(plan, node)]
        for key in keys:
            out[key] = out.get(key, frozenset()) | reads
    return out
