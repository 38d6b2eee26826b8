"""Runs steps over nodes: check, apply, rollback. Sections in order, nodes concurrently.

The engine is the one thing both faces drive. It knows nothing of terminals or screens: it
reports progress as events (omwizard.engine.events) and returns results in the contract's shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from omwizard.engine.batch import apply_node, decide_records
from omwizard.engine.catalog import SECTIONS, steps_for
from omwizard.engine.events import ChangeMade, EventBus, StepFinished, StepStarted
from omwizard.engine.redact import Redactor, redactor_for
from omwizard.engine.schedule import waits
from omwizard.engine.state import StateStore
from omwizard.engine.step import (
    CHANGED,
    CHECKING,
    FAILED,
    FOUND,
    NEEDS_CHANGE,
    OK,
    READ_BY,
    ROLLED_BACK,
    WOULD_CHANGE,
    Finding,
    Result,
    Step,
    StepContext,
    _fault_point,
    read_by,
    unified_diff,
)
from omwizard.facts.base import StepData
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, sha256
from omwizard.remote.writes import ABSENT

if TYPE_CHECKING:
    from omwizard.remote.ssh import RemotePool

NODES_AT_ONCE = 10


class _Checked(NamedTuple):
    """A step's check on some nodes, not yet reported: the nodes it ran on, what it found
    there, the others' results (skipped, or not checked: unreached), and every node's
    result once made (in a check, or where a node's connect failed: to note it unreached)."""

    ran: list[Node]
    found: dict[str, Finding]
    skipped: list[Result]
    made: list[Result]


_NONE = _Checked([], {}, [], [])


def summarize(results: Iterable[Result]) -> dict[str, int]:
    summary = {"ok": 0, "changed": 0, "needs_change": 0, "failed": 0, "skipped": 0}
    extra = {"would_change": 0, "rolled_back": 0}
    for result in results:
        key = result.status.replace("-", "_")
        if key in summary:
            summary[key] += 1
        elif key in extra:
            extra[key] += 1
    summary.update({k: v for k, v in extra.items() if v})
    return summary


class Engine:
    """check / apply / rollback over the selected sections and nodes of one plan."""

    def __init__(
        self,
        plan: Plan,
        *,
        pool: RemotePool,
        state: StateStore | None = None,
        bus: EventBus | None = None,
        sections: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
        dry_run: bool = False,
        force: bool = False,
        redact: Redactor | None = None,
        steps: Iterable[str] | None = None,
    ) -> None:
        self.plan = plan
        # step names within the selected sections (the TUI's per-step roll back); None = all
        self.only_steps = set(steps) if steps is not None else None
        self.pool = pool
        self.state = state
        self.bus = bus or EventBus()
        self.sections = [s for s in SECTIONS if sections is None or s in set(sections)]
        wanted = set(nodes) if nodes else None
        self.nodes = [n for n in plan.nodes if wanted is None or n.name in wanted]
        self.dry_run = dry_run
        self.force = force
        self.redact = redact or redactor_for(plan)
        self._gate = asyncio.Semaphore(NODES_AT_ONCE)
        self.shared: dict[str, Any] = {
            READ_BY: read_by([s for section in SECTIONS for s in steps_for(section)], plan)}
        # node -> "section.step" whose result carries the node's connection error: the
        # node's later steps refer to it instead of repeating it (once per node, not per step)
        self.unreached: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def context(self) -> StepContext:
        return StepContext(
            self.plan,
            self.pool,
            self.state,
            self.bus,
            dry_run=self.dry_run,
            redact=self.redact,
            shared=self.shared,
        )

    def steps(self, section: str | None = None) -> list[Step]:
        sections = [section] if section else self.sections
        return [
            step
            for s in sections
            for step in steps_for(s)
            if self.only_steps is None or step.name in self.only_steps
        ]

    def _result(
        self, step: Step, node: Node, finding: Finding, status: str | None = None
    ) -> Result:
        r = self.redact
        result = Result(
            section=step.section,
            step=step.name,
            node=node.name,
            status=status or finding.status,
            detail=r(finding.detail),
            remedy=r(finding.remedy),
            evidence=[r(e) for e in finding.evidence],
            diff=r(finding.diff),
            data=finding.data,
        )
        return result

    def save(self, result: Result) -> Result:
        """Keep a result as the step's last one (not in a dry run)."""
        if self.state is not None and not self.dry_run:
            self.state.set_result(result.key, {**result.as_json(), "at": result.at})
        return result

    def finish(self, result: Result) -> Result:
        """Save a result and report it: every result, the engine's own or the operator's."""
        self.bus.emit(StepFinished(self.save(result)))
        return result

    async def _bounded(self, coro: Any) -> Any:
        async with self._gate:
            return await coro

    async def _check(self, step: Step, ctx: StepContext, nodes: list[Node], *,
                     at_once: bool = False) -> dict[str, Finding]:
        """The step's check on these nodes. at_once: one of a run's steps checked together
        (check_steps): its declared reads come from the run's gather (or its own, not the
        later steps'), and it takes no slot of the node gate (the steps' checks are many,
        each over all its nodes)."""
        for node in nodes:
            self.bus.emit(StepStarted(step.section, step.name, node.name, "check"))
        if not nodes:
            return {}
        unread: dict[str, Finding] = {}
        if step.facts or step.files:
            if at_once:
                got = await asyncio.gather(*(self._gather_own(ctx, step, n) for n in nodes))
            else:
                got = await asyncio.gather(*(self._bounded(self._gather(ctx, step, n))
                                             for n in nodes))
            unread = {n.name: f for n, f in zip(nodes, got, strict=True) if f is not None}
            nodes = [n for n in nodes if n.name not in unread]
        try:
            if step.serial:
                found: dict[str, Finding] = {}
                for node in nodes:
                    found[node.name] = await ctx.guard(node, step.check(ctx, node))
                return found | unread
            if not nodes:
                return unread
            if at_once:
                return await step.check_all(ctx, nodes) | unread
            return await self._bounded(step.check_all(ctx, nodes)) | unread
        except RemoteError as exc:
            return {n.name: Finding.failed(exc.message, exc.remedy) for n in nodes} | unread

    async def _gather(self, ctx: StepContext, step: Step, node: Node) -> Finding | None:
        """The step's declared facts and files for one node, with those of every later step
        of this run on the node, in one round trip (per sudo mode): the later steps find them
        cached, and a fact a change can alter is read again (with everything after it) only
        after a change. A node that cannot be read fails this step as its check would; when
        only the look ahead failed, the step reads its own and the later steps theirs."""
        facts, paths = self._ahead(step, ctx, node)
        try:
            await ctx.gather(node, facts, paths)
            return None
        except Exception:  # noqa: BLE001 - a later step's read fails in that step, said there
            pass
        return await self._gather_own(ctx, step, node)

    async def _gather_own(self, ctx: StepContext, step: Step, node: Node) -> Finding | None:
        """Only the step's own declared facts and files (those already known or being read
        are not read again); a node that cannot be read fails the step."""
        own_paths = [p for f in step.files for p in f.paths(self.plan, node)]
        try:
            await ctx.gather(node, step.facts, own_paths)
        except RemoteError as exc:
            return Finding.failed(exc.message, exc.remedy)
        return None

    def _ahead(self, step: Step, ctx: StepContext, node: Node, steps: list[Step] | None = None,
               ) -> tuple[list[Any], list[str]]:
        """The facts and file paths of this step and of the run's later steps on this node."""
        steps = self.steps() if steps is None else steps
        later = steps[steps.index(step) + 1:] if step in steps else []
        facts: dict[str, Any] = {f.name: f for f in step.facts}
        paths = [p for f in step.files for p in f.paths(self.plan, node)]
        for other in later:
            if not (other.facts or other.files) or other.applies(ctx, node) is not None:
                continue
            facts.update((f.name, f) for f in other.facts if f.name not in facts)
            paths += [p for f in other.files for p in f.paths(self.plan, node)]
        return list(facts.values()), list(dict.fromkeys(paths))

    def _split(self, step: Step, ctx: StepContext, among: list[Node] | None = None,
               ) -> tuple[list[Node], list[Result]]:
        runnable, skipped = [], []
        for node in self.nodes if among is None else among:
            reason = step.applies(ctx, node)
            where = self.unreached.get(node.name)
            if reason is None and where is not None and self.pool.failure(node) is not None:
                skipped.append(self._result(step, node, Finding.failed(
                    f"not checked: {node.name} ({node.host}:{node.ssh.port}) could not be "
                    f"reached (see {where})",
                    f"fix the connection as {where} says, then run again")))
            elif reason is None:
                runnable.append(node)
            else:
                skipped.append(self._result(step, node, Finding.skipped(reason)))
        return runnable, skipped

    def _note_unreached(self, step: Step, results: list[Result]) -> None:
        for result in results:
            if result.status == FAILED and result.node not in self.unreached:
                node = self.plan.node(result.node)
                if self.pool.failure(node) is not None:
                    self.unreached[result.node] = f"{step.section}.{step.name}"

    # -- check ------------------------------------------------------------------------------

    async def check_step(self, step: Step) -> list[Result]:
        ctx = self.context().bind(step)
        nodes, results = self._split(step, ctx)
        found = await self._check(step, ctx, nodes)
        results += [self._result(step, n, found[n.name]) for n in nodes]
        self._note_unreached(step, results)
        return [self.finish(r) for r in self._ordered(results)]

    async def check(self) -> list[Result]:
        self._touch("check")
        return await self.check_steps(self.steps())

    async def check_steps(self, steps: Iterable[Step]) -> list[Result]:
        """Check these steps of one run at once (issue 21), a check being read-only: every
        node connected first, a node that cannot be reached said once (by the first step
        that runs there, the later ones referring to it, as one step after another would);
        every node's declared facts and files of the whole run read in one round trip per
        sudo mode while every step's check starts; a step waits only for the steps it
        declares in `after`. Results are reported (StepFinished) and returned in step order.
        Only a check puts up CHECKING (ctx.checked, ctx.found_in_run): an apply reads live.
        """
        steps = list(steps)
        if not steps:
            return []
        loop = asyncio.get_running_loop()
        checking: dict[str, asyncio.Future[None]] = {s.id: loop.create_future() for s in steps}

        try:
            return await self._check_together(steps, checking)
        finally:
            if self.shared.get(CHECKING) is checking:  # a later run of this engine waits on none
                self.shared.pop(CHECKING)
                self.shared.pop(FOUND, None)

    async def _check_together(self, steps: list[Step],
                              checking: dict[str, asyncio.Future[None]]) -> list[Result]:
        """check_steps' run: the steps on nodes whose connect failed (no network) checked
        first, one after another; the reads for the whole run started; then every step's
        check at once, each after the steps it runs `after`, with check_steps' futures put
        up as CHECKING; each step's results reported in step order. All left running is
        cancelled."""
        ctx = self.context()
        down, up = await self._reached(ctx, steps)
        bound = [self.context().bind(step) for step in steps]
        said = [await self._check_nodes(step, mine, down) if down else _NONE
                for step, mine in zip(steps, bound, strict=True)]
        reads = self._read_run(ctx, steps, up)
        self.shared[CHECKING] = checking  # only now: the checks above waited on none
        tasks: list[asyncio.Future[_Checked]] = []
        for i, (step, mine) in enumerate(zip(steps, bound, strict=True)):
            deps = [tasks[j] for j in self._after(step, steps[:i])]
            tasks.append(asyncio.ensure_future(
                self._check_nodes(step, mine, up, deps, at_once=True, over=checking[step.id])))
        results: list[Result] = []
        try:
            for early, task in zip(said, tasks, strict=True):
                late = await task
                results += [self.finish(r) for r in self._ordered(early.made + late.made)]
        finally:
            await _cancelled([*tasks, *reads])
        return results

    async def _reached(self, ctx: StepContext, steps: list[Step]
                       ) -> tuple[list[Node], list[Node]]:
        """Every node the steps run on connected at once: (those whose connect failed, the
        others)."""
        await self._reach(ctx, steps)
        down = [n for n in self.nodes if self.pool.failure(n) is not None]
        return down, [n for n in self.nodes if n not in down]

    def _read_run(self, ctx: StepContext, steps: list[Step], up: list[Node]
                  ) -> list[asyncio.Future[None]]:
        """Each reachable node's declared reads of the whole run, started (steps' own reads
        wait for these)."""
        return [asyncio.ensure_future(self._bounded(self._gather_run(ctx, steps, n)))
                for n in up]

    async def _check_nodes(self, step: Step, ctx: StepContext, nodes: list[Node],
                           deps: list[asyncio.Future[_Checked]] | None = None, *,
                           at_once: bool = False,
                           over: asyncio.Future[None] | None = None) -> _Checked:
        """The step's check on some nodes, once the steps it runs `after` are checked, not
        yet reported. Checked one step after another (the nodes whose connect failed, in a
        check or an apply), or at once in a check (`over`: its CHECKING future), its results
        are made and its nodes found unreachable noted as it ends, so a later step refers to
        them."""
        try:
            if deps:
                await asyncio.wait(deps)
            runnable, skipped = self._split(step, ctx, nodes)
            found = await self._check(step, ctx, runnable, at_once=at_once)
            if over is not None:
                self.shared.setdefault(FOUND, {})[step.id] = found
            made = skipped + [self._result(step, n, found[n.name]) for n in runnable]
            self._note_unreached(step, made)
            return _Checked(runnable, found, skipped, made)
        finally:
            if over is not None and not over.done():  # (two steps of one id: the first over)
                over.set_result(None)

    @staticmethod
    def _after(step: Step, earlier: list[Step]) -> list[int]:
        """The places in the run of the steps this one declares in `after` that run before
        it (others are not waited for: not selected, or later in the run, which would wait
        for ever)."""
        return [i for i, s in enumerate(earlier) if s.id in step.after]

    async def _reach(self, ctx: StepContext, steps: list[Step]) -> None:
        """Connect every node a step runs on, all at once (a failure is kept by the pool)."""
        wanted = [n for n in self.nodes if any(s.applies(ctx, n) is None for s in steps)]

        async def one(node: Node) -> None:
            try:
                await self.pool.get(node).connect()
            except RemoteError:
                pass  # said by the first step that runs there

        await asyncio.gather(*(one(n) for n in wanted))

    async def _gather_run(self, ctx: StepContext, steps: list[Step], node: Node) -> None:
        """The node's declared facts and files of the whole run, in one round trip per sudo
        mode, as the first step there that declares any (its commands carry its name). A
        failure is not said here: each step then reads its own and says what failed."""
        first = next((s for s in steps if (s.facts or s.files)
                      and s.applies(ctx, node) is None), None)
        if first is None:
            return
        mine = ctx.bind(first)
        facts, paths = self._ahead(first, mine, node, steps)
        try:
            await mine.gather(node, facts, paths)
        except Exception:  # noqa: BLE001 - each step reads its own again and says why not
            pass

    # -- apply ------------------------------------------------------------------------------

    async def apply_step(self, step: Step) -> list[Result]:
        """One step: check, apply where needed, re-check (the TUI applies step by step)."""
        ctx = self.context().bind(step)
        nodes, results = self._split(step, ctx)
        found = await self._check(step, ctx, nodes)
        return await self._apply_found(step, ctx, nodes, found, results)

    async def _apply_found(self, step: Step, ctx: StepContext, nodes: list[Node],
                           found: dict[str, Finding], results: list[Result]) -> list[Result]:
        """What apply_step does once the step is checked on these nodes (`results`: the
        nodes it skipped): apply on those that need a change, re-check, report."""
        return [self.finish(r) for r in await self._applied(step, ctx, nodes, found, results)]

    async def _applied(self, step: Step, ctx: StepContext, nodes: list[Node],
                       found: dict[str, Finding], results: list[Result]) -> list[Result]:
        """_apply_found's results in node order, not yet reported."""
        todo = [n for n in nodes if found[n.name].status == NEEDS_CHANGE and step.has_apply]
        results += [self._result(step, n, found[n.name]) for n in nodes if n not in todo]
        if todo:
            if self.dry_run:
                results += await self._dry(step, ctx, todo, found)
            else:
                results += await self._apply(step, ctx, todo, found)
        self._note_unreached(step, results)
        return self._ordered(results)

    async def _dry(
        self, step: Step, ctx: StepContext, todo: list[Node], found: dict[str, Finding]
    ) -> list[Result]:
        out = []
        for node in todo:
            finding = found[node.name]
            try:
                await step.apply(ctx, node, finding)
            except RemoteError as exc:
                out.append(self._result(step, node, Finding.failed(exc.message, exc.remedy)))
                continue
            changes = ctx.changes.get(node.name, [])
            result = self._result(step, node, finding, WOULD_CHANGE)
            result.changes = [c.as_json() for c in changes]
            result.diff = "".join(c.diff for c in changes)
            out.append(result)
        return out

    async def _apply(
        self, step: Step, ctx: StepContext, todo: list[Node], found: dict[str, Finding]
    ) -> list[Result]:
        async def one(node: Node) -> tuple[Node, Finding | None]:
            self.bus.emit(StepStarted(step.section, step.name, node.name, "apply"))
            try:
                # what the re-check below and the later steps read: the batch reads back
                # what its changes made stale, so the re-check finds it without a command
                await apply_node(ctx, step, node, found[node.name],
                                 ahead=self._ahead(step, ctx, node))
            except RemoteError as exc:
                return node, Finding.failed(exc.message, exc.remedy)
            return node, None

        if step.serial:
            outcome = [await one(n) for n in step.order(ctx, todo, found)]
        else:
            outcome = await asyncio.gather(*(self._bounded(one(n)) for n in todo))
        for node in todo:
            for change in ctx.changes.get(node.name, []):
                self.bus.emit(ChangeMade(step.section, step.name, node.name, change.as_json()))
        failed = {n.name: f for n, f in outcome if f is not None}
        recheck_nodes = [n for n in todo if n.name not in failed]
        again = await self._check(step, ctx, recheck_nodes)
        out = []
        for node in todo:
            changes = [c.as_json() for c in ctx.changes.get(node.name, [])]
            if node.name in failed:
                result = self._result(step, node, failed[node.name], FAILED)
            elif again[node.name].status == OK:
                result = self._result(step, node, again[node.name], CHANGED)
                if not changes:
                    result.status = OK
            else:
                after = again[node.name]
                after.detail = f"still not right after the change: {after.detail}"
                result = self._result(step, node, after, FAILED)
            result.changes = changes
            result.diff = self.redact("".join(c.diff for c in ctx.changes.get(node.name, [])))
            out.append(result)
        return out

    async def apply(self) -> list[Result]:
        """Changes left open by an interrupted run first; then every step as apply_step
        runs it, each as soon as the steps before it allow (engine/schedule.py), reported in
        step order."""
        self._touch("apply")
        results = await self.recover_interrupted()
        steps = self.steps()
        if steps:
            results += await self._apply_run(steps)
        return results

    async def _apply_run(self, steps: list[Step]) -> list[Result]:
        """The steps of an apply, at once where they may be (issue 21). Each is checked,
        changed where its check asks and re-checked, as apply_step does, but its check starts
        once no earlier step is still to change what it reads, and its change once no
        earlier step is still to read or change what it changes (schedule.waits; `after`
        as a check has it); a node's cached reads and its changes are kept apart by its
        guard (engine/node_guard.py), and no change starts before the run's first reads are
        over. The nodes whose connect failed are checked first, one step after another (they
        fail without the network, said once, as one step after another says it). Each step
        is then reported in step order: the resume point moved to it, its results saved and
        said, so what is reported is what one step after another reports."""
        ctx = self.context()
        down, up = await self._reached(ctx, steps)
        bound = [self.context().bind(step) for step in steps]
        said = [await self._check_nodes(step, mine, down) if down else _NONE
                for step, mine in zip(steps, bound, strict=True)]
        reads = self._read_run(ctx, steps, up)
        plan = waits(steps, reads=lambda s: s.reads, writes=lambda s: s.writes,
                     changes=lambda s: s.has_apply)
        tasks: list[asyncio.Future[list[Result]]] = []
        for i, (step, mine, early) in enumerate(zip(steps, bound, said, strict=True)):
            check = plan[i].check | set(self._after(step, steps[:i]))
            tasks.append(asyncio.ensure_future(self._apply_one(
                step, mine, up, early, [tasks[j] for j in sorted(check)],
                [tasks[j] for j in sorted(plan[i].change - check)], reads)))
        results: list[Result] = []
        try:
            for step, task in zip(steps, tasks, strict=True):
                self._touch("apply", section=step.section, step=step.name)
                results += [self.finish(r) for r in await task]
        finally:
            await _cancelled([*tasks, *reads])
        return results

    async def _apply_one(self, step: Step, ctx: StepContext, up: list[Node], early: _Checked,
                         check_after: list[asyncio.Future[list[Result]]],
                         change_after: list[asyncio.Future[list[Result]]],
                         reads: list[asyncio.Future[None]]) -> list[Result]:
        """One step of _apply_run on the reachable nodes (`early`: its check where the
        connect failed), not yet reported."""
        if check_after:
            await asyncio.wait(check_after)
        runnable, skipped = self._split(step, ctx, up)
        found = early.found | await self._check(step, ctx, runnable, at_once=True)
        ran = early.ran + runnable
        if step.has_apply and any(found[n.name].status == NEEDS_CHANGE for n in ran):
            if change_after:
                await asyncio.wait(change_after)
            await asyncio.gather(*reads)
        return await self._applied(step, ctx, ran, found, early.skipped + skipped)

    async def recover_interrupted(self) -> list[Result]:
        """Changes whose start was journaled but not their end are checked first (CONTRACT)."""
        if self.state is None or self.dry_run:
            return []
        out: list[Result] = []
        records = self._records(phases=("begin",))
        progress = await self._progress(records)
        for record in records:
            node = self.plan.node(record["node"])
            step = self._step(record["section"], record["step"])
            ran = progress.get(record["id"])  # a batched change: what its node kept of it
            try:
                if ran is not None and (record["kind"] == "command" or ran[0] != "done"):
                    # a command's end as the node kept it; a file change its batch never
                    # made (not reached, or refused: not as read): the file is not ours
                    self.state.journal_end(record["id"], ran[0], note=ran[1])
                elif record["kind"] == "file":
                    data = await self.pool.get(node).read_file(record["target"])
                    now = None if data is None else sha256(data)
                    if now == record.get("after_hash"):
                        self.state.journal_end(record["id"], "done", note="found done on resume")
                    elif now == record.get("before_hash"):
                        self.state.journal_end(record["id"], "aborted", note="not made; resumed")
                    else:
                        raise RemoteError(
                            node.name,
                            f"{record['target']} changed by someone else while an apply was "
                            "interrupted",
                            "inspect the file, then run rollback --force or fix it by hand "
                            "(omwizard keeps its backup)",
                        )
                elif step is not None:
                    ctx = self.context().bind(step)
                    finding = await ctx.guard(node, step.check(ctx, node))
                    phase = "done" if finding.status == OK else "aborted"
                    self.state.journal_end(record["id"], phase, note="resolved on resume")
            except RemoteError as exc:  # or the file changed by someone else, said as one
                out.append(Result(record["section"], record["step"], node.name, FAILED,
                                  exc.message, remedy=exc.remedy))
        return [self.finish(r) for r in out]

    async def _progress(self, records: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
        """Batched records left `begin`: record id -> (phase, note) where the progress file
        its batch kept on the node decides it (engine/batch.py); read once per file."""
        texts: dict[str, str | None] = {}
        wanted = {(r["node"], r["progress"]) for r in records if r.get("progress")}
        for name, path in sorted(wanted):
            try:
                raw = await self.pool.get(self.plan.node(name)).read_file(path)
            except RemoteError:
                continue  # unreadable: those records are decided as single changes are
            texts[path] = None if raw is None else raw.decode(errors="replace")
        decided = decide_records([r for r in records if r.get("progress") in texts], texts)
        return {rid: how for rid, how in decided.items() if how is not None}

    # -- rollback ---------------------------------------------------------------------------

    def _records(self, phases: tuple[str, ...]) -> list[dict[str, Any]]:
        if self.state is None:
            return []
        names = {n.name for n in self.nodes}
        return [
            r
            for r in self.state.journal()
            if r.get("phase") in phases
            and r.get("section") in self.sections
            and r.get("node") in names
            and (self.only_steps is None or r.get("step") in self.only_steps)
        ]

    def undo_records(self) -> list[dict[str, Any]]:
        """The journaled changes a rollback of this selection would undo, newest first."""
        return list(reversed(self._records(phases=("done",))))

    def _step(self, section: str, name: str) -> Step | None:
        for step in steps_for(section):
            if step.name == name:
                return step
        return None

    async def rollback(self) -> list[Result]:
        """Undo the journaled changes, newest first; files changed since are not overwritten."""
        self._touch("rollback")
        records = self.undo_records()
        grouped: dict[tuple[str, str, str], Result] = {}
        by_node: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_node.setdefault(record["node"], []).append(record)

        async def node_undo(name: str, recs: list[dict[str, Any]]) -> None:
            node = self.plan.node(name)
            for record in recs:  # newest first within a node
                key = (record["section"], record["step"], name)
                result = grouped.setdefault(
                    key, Result(record["section"], record["step"], name, ROLLED_BACK, "")
                )
                if result.status == FAILED:
                    continue
                self.bus.emit(StepStarted(record["section"], record["step"], name, "rollback"))
                try:
                    detail, change = await self._undo(node, record)
                except RemoteError as exc:
                    result.status = FAILED
                    result.detail = exc.message
                    result.remedy = exc.remedy
                    continue
                except _Conflict as exc:
                    result.status = FAILED
                    result.detail = str(exc)
                    result.remedy = (
                        "someone changed the file after omwizard did; review the diff, then "
                        "run rollback --force to restore the backup anyway, or keep the file"
                    )
                    result.diff = self.redact(exc.diff)
                    continue
                result.detail = "; ".join(x for x in (result.detail, detail) if x)
                result.changes.append(change)

        await asyncio.gather(*(self._bounded(node_undo(n, r)) for n, r in by_node.items()))
        order = {(r["section"], r["step"], r["node"]): i for i, r in enumerate(records)}
        results = sorted(grouped.values(), key=lambda r: order[(r.section, r.step, r.node)])
        if self.dry_run:
            for result in results:
                if result.status == ROLLED_BACK:
                    result.status = WOULD_CHANGE
        return [self.finish(r) for r in results]

    async def _undo(self, node: Node, record: dict[str, Any]) -> tuple[str, dict[str, str]]:
        remote = self.pool.get(node)
        target = record["target"]
        if record["kind"] == "file":
            backup = record.get("backup")
            data, original = await asyncio.gather(  # both reads at once: one round trip
                remote.read_file(target), _read_or_none(remote, backup))
            current = None if data is None else sha256(data)
            # as before the change already: a rollback killed after the restore, or a later
            # change of omwizard's that put it back (rolled back or not): nothing to restore
            restored = current == record.get("before_hash") != record.get("after_hash")
            if current != record.get("after_hash") and not self.force and not restored:
                before = None if original is None else original.decode(errors="replace")
                now = None if data is None else data.decode(errors="replace")
                raise _Conflict(
                    f"{target} was changed after omwizard wrote it; not restored",
                    unified_diff(target, before, now),
                )
            change = {"kind": "file", "target": target, "undo": record.get("undo", "")}
            if self.dry_run:
                return f"would {record.get('undo')}", change
            if restored:
                assert self.state is not None
                self.state.journal_end(record["id"], "undone", note="found as before")
                return record.get("undo", ""), change
            if record.get("before_hash") is None:
                await remote.run(["rm", "-f", "--", target], sudo=True)
            else:
                if original is None or sha256(original) != record["before_hash"]:
                    raise RemoteError(
                        node.name,
                        f"the backup {backup} of {target} is missing or altered",
                        "restore the file by hand; the journal keeps its hash",
                    )
                if not await remote.write_file(target, original,
                                               expect=ABSENT if current is None else current):
                    raise RemoteError(  # compare-and-swap: changed since it was read above
                        node.name, f"{target} changed while omwizard restored it; not restored",
                        "run rollback again (it compares the file afresh)")
            _fault_point("after-undo")
            assert self.state is not None
            self.state.journal_end(record["id"], "undone")
            return record.get("undo", ""), change
        if record.get("undo_step"):
            by_step = await self._undo_by_step(node, record)
            if by_step is not None:
                return by_step
        argv = record.get("undo_argv")
        if not argv:
            # Nothing omwizard can run; the record's words say what is left (e.g. SQL to run
            # by hand as the admin: change_command's undo_text), so the rollback says it too.
            left = record.get("undo", "")
            change = {"kind": "command", "target": "", "undo": left}
            if not self.dry_run and self.state is not None:
                self.state.journal_end(record["id"], "undone", note="nothing to undo")
            return ("" if left.startswith("nothing") else left), change
        change = {"kind": "command", "target": " ".join(argv), "undo": record["target"]}
        if self.dry_run:
            return f"would run {change['target']}", change
        result = await remote.run(argv, sudo=True)
        _fault_point("after-undo")
        accepted = any(t in result.output for t in record.get("undo_ok_text", []))
        if not result.ok and not accepted:
            raise RemoteError(
                node.name,
                f"undo `{change['target']}` failed: {self.redact(result.output)[-300:]}",
                "run it by hand after checking why it failed",
            )
        assert self.state is not None
        self.state.journal_end(record["id"], "undone")
        return change["target"], change

    async def _undo_by_step(self, node: Node, record: dict[str, Any]
                            ) -> tuple[str, dict[str, str]] | None:
        """A record naming the step whose `undo` undoes it (Step.undo, with the record's
        typed undo_data): None when that step cannot now (then its words say what is left)."""
        step = self._step(record["section"], record["undo_step"])
        data = StepData.from_json(record.get("undo_data"))
        if step is None or data is None:
            return None
        change = {"kind": "command", "target": step.id, "undo": record["target"]}
        if self.dry_run:
            return f"would have {step.id} undo it", change
        done = await step.undo(self.context().bind(step), node, data)
        if done is None:
            return None
        _fault_point("after-undo")
        assert self.state is not None
        self.state.journal_end(record["id"], "undone")
        return self.redact(done), change

    # -- helpers ----------------------------------------------------------------------------

    def _ordered(self, results: list[Result]) -> list[Result]:
        index = {n.name: i for i, n in enumerate(self.plan.nodes)}
        return sorted(results, key=lambda r: index.get(r.node, 999))

    def _touch(self, command: str, **meta: Any) -> None:
        if self.state is not None and not self.dry_run:
            self.state.touch(command=command, **meta)


async def _read_or_none(remote: Any, path: str | None) -> bytes | None:
    return await remote.read_file(path) if path else None


class _Conflict(Exception):
    def __init__(self, message: str, diff: str) -> None:
        super().__init__(message)
        self.diff = diff


async def _cancelled(jobs: list[asyncio.Future[Any]]) -> None:
    """Cancel what is still running of these, and let each end."""
    for job in jobs:
        if not job.done():
            job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
