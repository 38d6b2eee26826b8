"""Ensure everything works as expected: restart OM, then read what the cluster says of itself.

`restart` is a change like any other: its check asks "is OM running the configuration now on
disk?" (the process started after the last write of hazelcast.xml, persistence.xml, the unit
or setenv.sh), so a second apply does not restart again. `members` reads Hazelcast's own view
from OM's log, `health` asks OM's REST service through an SSH forward (the wizard often cannot
reach a node's web port), and the storage, database and port proofs of the earlier sections
run again now that everything is in place. The documentation's two manual checks are data in
omwizard.engine.export (MANUAL_CHECKS), shown by both faces.
"""

from __future__ import annotations

import asyncio
import shlex
import ssl
from typing import Any
from urllib.parse import urlsplit

from omwizard.engine.catalog import find_step
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import CHECKING, Finding, Step, StepContext
from omwizard.facts import verify as verifyfacts
from omwizard.facts.preflight import OM_INSTALL
from omwizard.facts.verify import (
    LOG_LINES,
    MEMBERS_LOG,
    OM_PROCESS,
    RestartState,
    health_target,
    members_parts,
    parse_probe,
)
from omwizard.om.layout import UNIT, OmLayout
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError
from omwizard.sections._rejoin import order_restarts, refuse_if_halted, wait_member

RESTART_WAIT = 300  # seconds: Tomcat with OpenMeetings takes one to three minutes
STARTED_MARKS = ("is STARTED", verifyfacts.STANDALONE)
SAID_LINES = 200  # at most this many of a start's lines printed (a log replaced: read from 0)
MEMBERS_SETTLE = 10  # seconds the members check waits for a forming cluster to settle
STARTING_SETTLE = 60  # ... and for a running member that has not logged its start yet


async def _log_path(ctx: StepContext, node: Node, facts: dict[str, Any]) -> str:
    """The log the probe found, else where this node's OpenMeetings release logs."""
    if facts.get("log"):
        return str(facts["log"])
    om = await ctx.fact(node, OM_INSTALL)
    return OmLayout(ctx.plan.cluster.om_home).log_file(om.version)


# -- each step's words, shown beside it (STEPS, at the end, gives each step its own) -------

DOC_RESTART = (
    "Set up the cluster: OpenMeetings reads hazelcast.xml and persistence.xml only when it "
    "starts, so each node is restarted (systemctl restart openmeetings, else "
    "bin/shutdown.sh; bin/startup.sh), one at a time, waiting for it to come back. A node "
    "already running the current configuration is not restarted."
)

DOC_MEMBERS = (
    "OpenMeetings' log (logs/openmeetings.log; log/ in 4.0.x) shows the latest Hazelcast "
    "line `Members {size:N, ver:M} [` listing every OM node; \"No join method is enabled! "
    "Starting standalone.\" means this node is alone."
)

DOC_HEALTH = (
    "GET /openmeetings/services/info/health answers "
    "{\"health\":{\"inited\":true,\"installed\":true,\"dbOk\":true}} on every node "
    "(through an SSH port forward to the node's own address); /services/info/version "
    "gives the version."
)


class VerifyStep(Step):
    """The verify section's steps."""

    section = "verify"


class RestartStep(VerifyStep):
    serial = True
    only_om = True
    facts = (OM_INSTALL, OM_PROCESS)
    # it reads every change made before it (whether OM runs the configuration now), and a
    # restart changes only the running OpenMeetings: a proof of something else (the shared
    # folder's probe) need not be over first
    writes = frozenset({R.OM_PROCESS})

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        facts = await ctx.fact(node, OM_PROCESS)
        evidence = await ctx.fact_evidence(node, OM_PROCESS)
        starts = facts["pids"]
        oldest = min(starts.values()) if starts else None
        current, why = verifyfacts.running_current(oldest, facts["mtimes"])
        data = RestartState(await _log_path(ctx, node, facts), int(facts["log_size"]),
                            bool(facts["systemd"] and facts["unit"] is not None), bool(starts))
        if current:
            pids = ", ".join(str(p) for p in starts)
            return Finding.ok(f"{why} (pid {pids})", evidence, data=data)
        return Finding.needs(why, "restart OpenMeetings on this node (omwizard does it, waiting "
                             "for it to come back)", evidence, data=data)

    def order(self, ctx: StepContext, nodes: list[Node], found: dict[str, Finding]
              ) -> list[Node]:
        return order_restarts(ctx, nodes, found)  # new nodes first, then members one by one

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        refuse_if_halted(ctx, node)
        seen = finding.typed(RestartState)
        # The restart and its wait for the start in the log are one command (one round trip
        # over a slow link): the change is done when OpenMeetings has started again, and its
        # output has the start's members lines: a node back at once costs no other read.
        change = await ctx.change_command(
            node, restart_argv(ctx.plan.cluster.om_home, seen), None,
            timeout=180 + RESTART_WAIT + 30, stream=True,
            remedy=f"OpenMeetings did not come back within {RESTART_WAIT} s or its restart "
                   f"failed: read the output above and {seen.log} on {node.name}; fix the "
                   "cause and run apply --section verify again",
        )
        if ctx.dry_run:
            return
        # back in the cluster before the next restart
        await wait_member(ctx, node, seen.log, said=change.output)


def restart_argv(om_home: str, seen: RestartState, seconds: int = RESTART_WAIT) -> list[str]:
    """The restart (systemctl, else bin/shutdown.sh; bin/startup.sh) and, when it succeeded,
    the wait for a start logged after the log's size just before it: one command, the same
    text at every run (the journal names a change by it)."""
    lay = OmLayout(om_home)
    if seen.systemd:
        restart = f"systemctl restart {shlex.quote(UNIT)}"
    else:
        restart = (f"{shlex.quote(lay.bin + '/shutdown.sh')}; "
                   f"{shlex.quote(lay.bin + '/startup.sh')}")
    log = shlex.quote(seen.log)
    return ["sh", "-c", f"off=$(stat -c %s -- {log} 2>/dev/null || echo 0); "
                        f"{restart} && {{ {started_wait(seen.log, '$off', seconds)}; }}"]


def started_wait(log: str, offset: int | str, seconds: int = RESTART_WAIT) -> str:
    """Shell that waits (bounded) until the log shows a start after `offset` (a number, or
    `$off` set by the caller's script; from 0 when the log shrank: rotated or replaced),
    looking every 0.2 s (a start is seen at most 0.2 s after it is logged), printing a
    progress line every 5 s and at the end the lines of this start that read_log reads (its
    lifecycle and members lines: the operator sees whom it joined, and wait_member needs no
    read of its own for a node back at once); exit 1 with the log's last lines when none
    came in time."""
    q = shlex.quote
    said = f"grep -E -- {q(verifyfacts.LOG_LINES_READ)} | tail -n {int(SAID_LINES)}"
    started = " ".join(f"-e {q(m)}" for m in STARTED_MARKS)
    start = offset if offset == "$off" else int(offset)
    return (
        f"log={q(log)}; off={start}; i=0; while :; do "
        "s=$(stat -c %s \"$log\" 2>/dev/null || echo 0); [ \"$s\" -lt \"$off\" ] && off=0; "
        f"l=$(tail -c +$((off + 1)) \"$log\" 2>/dev/null | grep -F {started} | tail -n 1); "
        "if [ -n \"$l\" ]; then "
        f"tail -c +$((off + 1)) \"$log\" | {said}; exit 0; fi; "
        f"i=$((i + 1)); [ $i -ge {int(seconds) * 5} ] && {{ "
        f"echo \"no start in $log after {int(seconds)} s\"; "
        "tail -n 5 \"$log\" 2>/dev/null; exit 1; }; "
        "[ $((i % 25)) -eq 0 ] && echo \"waiting for OpenMeetings to start ($((i / 5)) s)\"; "
        "sleep 0.2; done"
    )


class MembersStep(VerifyStep):
    only_om = True
    # a check's first read: OM's processes and its log's member lines, declared, so a check
    # reads them with the node's other facts; the settle loop's later reads are live, and so
    # is an apply run's (a restart of another node since the gather changes what this one sees)
    facts = (OM_INSTALL, OM_PROCESS, MEMBERS_LOG)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        expected = {n.name: n.address for n in ctx.plan.om_nodes}
        declared = self.id in ctx.shared.get(CHECKING, {})  # a check: nothing changed since
        for attempt in range(STARTING_SETTLE + 1):
            if attempt == 0 and declared:
                facts = await ctx.fact(node, OM_PROCESS)
                evidence = await ctx.fact_evidence(node, OM_PROCESS)
                tail_text = (await ctx.fact(node, MEMBERS_LOG)).text
            else:
                default = await _log_path(ctx, node, {})
                got = await ctx.run_parts(node, members_parts(ctx.plan.cluster.om_home, default))
                facts = parse_probe(got["probe"].stdout)
                evidence = got["probe"].evidence()
                tail_text = got["tail"].stdout
            log = await _log_path(ctx, node, facts)
            verdict = verifyfacts.judge_members(verifyfacts.read_log(tail_text), node.name,
                                                expected, log)
            if not facts["pids"] and verdict.ok:
                verdict = verifyfacts.Verdict(
                    False, f"OpenMeetings is not running on {node.name} (its log still shows "
                    f"the last cluster: {verdict.detail})",
                    f"start OpenMeetings on {node.name} (`omwizard apply --section verify "
                    f"--node {node.name}`)")
            seen = verdict.data
            forming = isinstance(seen, verifyfacts.MembersView) and bool(seen.missing)
            # a process that runs but has not logged its start yet (just restarted, or a
            # resumed run whose restart was interrupted) is given its start-up time; a log
            # that still ends with a shutdown is the previous run's while a process runs
            starting = verifyfacts.read_log(tail_text).state in (
                None, "STARTING", "SHUTTING_DOWN", "SHUTDOWN")
            settling = not verdict.ok and bool(facts["pids"]) and (forming or starting)
            limit = STARTING_SETTLE if starting else MEMBERS_SETTLE
            if verdict.ok or not settling or attempt >= limit:
                break
            await asyncio.sleep(1)  # a cluster that is still forming: read again, bounded
        block = [line for line in tail_text.splitlines() if "Member" in line][-8:]
        shown = f"tail -n {LOG_LINES} {log}: " + (" | ".join(b.strip() for b in block)
                                                  or "(no member lines)")
        if verdict.ok:
            return Finding.ok(verdict.detail, evidence, shown, data=verdict.data)
        return Finding.failed(verdict.detail, verdict.remedy, evidence, shown, data=verdict.data)


async def http_get(port: int, path: str, host: str, tls: bool,
                   timeout: float = 15) -> tuple[int | None, str]:
    """GET over the local forward; (status, body) or (None, error text)."""
    context = None
    if tls:  # the name on OM's certificate is not 127.0.0.1; health is what is checked here
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            request = (f"GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n"
                       "Connection: close\r\n\r\n")
            writer.write(request.encode())
            await writer.drain()
            raw = await reader.read()
            writer.close()
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return None, str(exc) or type(exc).__name__
    head, _, body = raw.decode("utf-8", errors="replace").partition("\r\n\r\n")
    try:
        status = int(head.split(" ", 2)[1])
    except (IndexError, ValueError):
        return None, f"not an HTTP answer: {raw[:120]!r}"
    return status, body


class HealthStep(VerifyStep):
    only_om = True

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        tls, port, prefix = health_target(node)
        scheme = "https" if tls else "http"
        remote = ctx.pool.get(node)
        try:
            listener, local = await remote.forward_local(node.address, port)
        except RemoteError:
            raise
        except Exception as exc:  # noqa: BLE001 - asyncssh refuses forwards in several ways
            return Finding.failed(
                f"no SSH port forward through {node.name} to {node.address}:{port}: {exc}",
                "allow TCP forwarding for this user in the node's sshd_config "
                "(AllowTcpForwarding yes)",
            )
        try:
            host = urlsplit(node.server_url or "").hostname or node.address
            (status, body), (v_status, v_body) = await asyncio.gather(  # both at once
                http_get(local, f"{prefix}/services/info/health", host, tls),
                http_get(local, f"{prefix}/services/info/version", host, tls))
        finally:
            listener.close()
        where = f"{scheme}://{node.address}:{port}{prefix}/services/info/health (via SSH to " \
                f"{node.name})"
        evidence = [f"GET {where} -> {status if status is not None else 'no answer'} "
                    f"{body.strip()[:200]}"]
        version = verifyfacts.parse_version(v_body) if v_status == 200 else None
        evidence.append(f"GET .../services/info/version -> {v_status} {v_body.strip()[:200]}")
        verdict = verifyfacts.judge_health(status, body).with_version(version)
        shown = f" (OpenMeetings {version})" if version else ""
        if verdict.ok:
            return Finding.ok(verdict.detail + shown, *evidence, data=verdict.data)
        return Finding.failed(verdict.detail + shown, verdict.remedy, *evidence,
                              data=verdict.data)


class RerunStep(VerifyStep):
    """Another section's proof, run again under verify now that everything is in place."""

    cluster_wide = True

    def __init__(self, name: str, target: str, title: str) -> None:
        super().__init__(name, title,
                         f"Again, now that everything is in place: {target} (see that step).")
        self.target = target

    def delegate(self) -> Step:
        try:
            return find_step(self.target)
        except (KeyError, ValueError, ImportError) as exc:
            raise LookupError(
                f"verify.{self.name} re-runs {self.target}, which this omwizard does not have "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        try:
            return self.delegate().applies(ctx, node)
        except LookupError:
            return None  # the check reports the missing step on every node

    async def check_all(self, ctx: StepContext, nodes: list[Node]) -> dict[str, Finding]:
        try:
            step = self.delegate()
        except LookupError as exc:
            return {n.name: Finding.failed(str(exc), "install a complete omwizard") for n in nodes}
        # a check run at once changes nothing: what the target found in it holds here too
        found = await ctx.found_in_run(step.id, nodes) or await step.check_all(ctx, nodes)
        for finding in found.values():
            if finding.status == "needs-change":
                # verify changes nothing: what is still missing belongs to its own section
                finding.status = "failed"
                finding.remedy = (f"{finding.remedy}; apply it with `omwizard apply --section "
                                  f"{step.section}`").lstrip("; ")
        return found


RERUNS = (
    RerunStep("shared-files", "storage.shared", "Shared files, again"),
    RerunStep("db-login", "database.db-login", "Database login from every node, again"),
    RerunStep("ports", "preflight.ports", "Ports between the nodes, again"),
)

STEPS: list[Step] = [
    RestartStep("restart", "Restart OpenMeetings, one node at a time", DOC_RESTART),
    MembersStep("members", "Hazelcast sees every node", DOC_MEMBERS),
    HealthStep("health", "OpenMeetings answers healthy", DOC_HEALTH),
    *RERUNS,
]
