"""Runs steps over nodes: check, apply, rollback. Sections in order, nodes concurrently.

The engine is the one thing both faces drive. It knows nothing of terminals or screens: it
reports progress as events (omwizard.engine.events) and returns results in the contract's shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from omwizard.engine.catalog import SECTIONS, steps_for
from omwizard.engine.events import ChangeMade, EventBus, StepFinished, StepStarted
from omwizard.engine.redact import Redactor, redactor_for
from omwizard.engine.state import StateStore
from omwizard.engine.step import (
    CHANGED,
    FAILED,
    NEEDS_CHANGE,
    OK,
    ROLLED_BACK,
    WOULD_CHANGE,
    Finding,
    Result,
    Step,
    StepContext,
    unified_diff,
)
from omwizard.plan.model import Node, Plan
from omwizard.remote.results import RemoteError, sha256

if TYPE_CHECKING:
    from omwizard.remote.ssh import RemotePool

NODES_AT_ONCE = 10


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
        self.shared: dict[str, Any] = {}
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

    async def _check(self, step: Step, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        for node in nodes:
            self.bus.emit(StepStarted(step.section, step.name, node.name, "check"))
        if not nodes:
            return {}
        unread: dict[str, Finding] = {}
        if step.facts or step.files:
            got = await asyncio.gather(*(self._bounded(self._gather(ctx, step, n)) for n in nodes))
            unread = {n.name: f for n, f in zip(nodes, got, strict=True) if f is not None}
            nodes = [n for n in nodes if n.name not in unread]
        try:
            if step.serial:
                found: dict[str, Finding] = {}
                for node in nodes:
                    found[node.name] = await ctx.guard(node, step.check(ctx, node))
                return found | unread
            return (await self._bounded(step.check_all(ctx, nodes)) if nodes else {}) | unread
        except RemoteError as exc:
            return {n.name: Finding.failed(exc.message, exc.remedy) for n in nodes} | unread

    async def _gather(self, ctx: StepContext, step: Step, node: Node) -> Finding | None:
        """The step's declared facts and files for one node, with those of every later step
        of this run on the node, in one round trip (per sudo mode): the later steps find them
        cached, and a fact a change can alter is read again (with everything after it) only
        after a change. A node that cannot be read fails this step as its check would; when
        only the look ahead failed, the step reads its own and the later steps theirs."""
        own_paths = [p for f in step.files for p in f.paths(self.plan, node)]
        facts, paths = self._ahead(step, ctx, node)
        try:
            await ctx.gather(node, facts, paths)
            return None
        except Exception:  # noqa: BLE001 - a later step's read fails in that step, said there
            pass
        try:
            await ctx.gather(node, step.facts, own_paths)
        except RemoteError as exc:
            return Finding.failed(exc.message, exc.remedy)
        return None

    def _ahead(self, step: Step, ctx: StepContext, node: Node) -> tuple[list[Any], list[str]]:
        """The facts and file paths of this step and of the run's later steps on this node."""
        steps = self.steps()
        later = steps[steps.index(step) + 1:] if step in steps else []
        facts: dict[str, Any] = {f.name: f for f in step.facts}
        paths = [p for f in step.files for p in f.paths(self.plan, node)]
        for other in later:
            if not (other.facts or other.files) or other.applies(ctx, node) is not None:
                continue
            facts.update((f.name, f) for f in other.facts if f.name not in facts)
            paths += [p for f in other.files for p in f.paths(self.plan, node)]
        return list(facts.values()), list(dict.fromkeys(paths))

    def _split(self, step: Step, ctx: StepContext) -> tuple[list[Node], list[Result]]:
        runnable, skipped = [], []
        for node in self.nodes:
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
        results: list[Result] = []
        for step in self.steps():
            results += await self.check_step(step)
        return results

    # -- apply ------------------------------------------------------------------------------

    async def apply_step(self, step: Step) -> list[Result]:
        ctx = self.context().bind(step)
        nodes, results = self._split(step, ctx)
        found = await self._check(step, ctx, nodes)
        todo = [n for n in nodes if found[n.name].status == NEEDS_CHANGE and step.has_apply]
        results += [self._result(step, n, found[n.name]) for n in nodes if n not in todo]
        if todo:
            if self.dry_run:
                results += await self._dry(step, ctx, todo, found)
            else:
                results += await self._apply(step, ctx, todo, found)
        self._note_unreached(step, results)
        return [self.finish(r) for r in self._ordered(results)]

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
                await step.apply(ctx, node, found[node.name])
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
        self._touch("apply")
        results = await self.recover_interrupted()
        for step in self.steps():
            self._touch("apply", section=step.section, step=step.name)
            results += await self.apply_step(step)
        return results

    async def recover_interrupted(self) -> list[Result]:
        """Changes whose start was journaled but not their end are checked first (CONTRACT)."""
        if self.state is None or self.dry_run:
            return []
        out: list[Result] = []
        for record in self._records(phases=("begin",)):
            node = self.plan.node(record["node"])
            step = self._step(record["section"], record["step"])
            try:
                if record["kind"] == "file":
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
            data = await remote.read_file(target)
            current = None if data is None else sha256(data)
            backup = record.get("backup")
            original = await remote.read_file(backup) if backup else None
            if current != record.get("after_hash") and not self.force:
                before = None if original is None else original.decode(errors="replace")
                now = None if data is None else data.decode(errors="replace")
                raise _Conflict(
                    f"{target} was changed after omwizard wrote it; not restored",
                    unified_diff(target, before, now),
                )
            change = {"kind": "file", "target": target, "undo": record.get("undo", "")}
            if self.dry_run:
                return f"would {record.get('undo')}", change
            if record.get("before_hash") is None:
                await remote.run(["rm", "-f", "--", target], sudo=True)
            else:
                if original is None or sha256(original) != record["before_hash"]:
                    raise RemoteError(
                        node.name,
                        f"the backup {backup} of {target} is missing or altered",
                        "restore the file by hand; the journal keeps its hash",
                    )
                await remote.write_file(target, original)
            assert self.state is not None
            self.state.journal_end(record["id"], "undone")
            return record.get("undo", ""), change
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

    # -- helpers ----------------------------------------------------------------------------

    def _ordered(self, results: list[Result]) -> list[Result]:
        index = {n.name: i for i, n in enumerate(self.plan.nodes)}
        return sorted(results, key=lambda r: index.get(r.node, 999))

    def _touch(self, command: str, **meta: Any) -> None:
        if self.state is not None and not self.dry_run:
            self.state.touch(command=command, **meta)


class _Conflict(Exception):
    def __init__(self, message: str, diff: str) -> None:
        super().__init__(message)
        self.diff = diff

