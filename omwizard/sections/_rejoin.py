"""Restarts that keep a running cluster up (used by verify.restart).

A serial restart takes first the nodes that are not serving members yet (a node just added
to the plan: starting it takes nothing away), then the running members, one at a time; each
restarted node must be seen back as a member (its own log lists itself and every member
that runs the current configuration) before the next is restarted. If one does not come
back, the others are left running as they are.
"""

from __future__ import annotations

import shlex
import time

from omwizard.engine.step import Finding, StepContext
from omwizard.facts import verify as verifyfacts
from omwizard.facts.membership import restart_order, seen_as_member
from omwizard.facts.verify import MEMBERS_LOG, OM_PROCESS, RestartState, members_parts
from omwizard.plan.model import Node
from omwizard.remote.results import RemoteError

PENDING = "verify.restart.pending"  # ctx.shared: nodes this run still has to restart
# ctx.shared: every node this run restarts; those no longer pending are back as members (one
# that does not come back sets HALTED, and every later restart is refused)
RESTARTING = "verify.restart.restarting"
HALTED = "verify.restart.halted"  # ctx.shared: the node that did not come back
MEMBER_WAIT = 120  # seconds a restarted node has to show up in its cluster's members list
POLL_S = 2.0  # a members read waits at most this long on the node for the log to grow


def order_restarts(ctx: StepContext, nodes: list[Node], found: dict[str, Finding]
                   ) -> list[Node]:
    """Not-yet-serving nodes first (not running, or never seen as a member by this state)."""
    results = ctx.state.results() if ctx.state is not None else {}
    serving = {}
    for node in nodes:
        data = found[node.name].data
        running = isinstance(data, RestartState) and data.running
        member = results.get(f"verify/members/{node.name}", {}).get("status") == "ok"
        serving[node.name] = running and member
    names = restart_order([n.name for n in nodes], serving)
    ctx.shared[PENDING] = set(names)
    ctx.shared[RESTARTING] = set(names)
    by_name = {n.name: n for n in nodes}
    return [by_name[name] for name in names]


def _log_files(om_home: str, log: str) -> str:
    return " ".join(shlex.quote(f) for f in (f"{om_home}/logs/openmeetings.log",
                                              f"{om_home}/log/openmeetings.log", log))


def log_sizes(om_home: str, log: str) -> str:
    """A shell part printing the sizes of the node's OpenMeetings logs on one line."""
    return f"stat -c %s -- {_log_files(om_home, log)} 2>/dev/null | tr '\\n' ' '; true"


def log_growth_wait(om_home: str, log: str, since: str, seconds: float = POLL_S) -> str:
    """A shell part that returns once the logs' sizes differ from `since` (what log_sizes
    printed at the previous read), or after `seconds` (it checks every 0.1 s)."""
    if any(not (c.isdigit() or c == " ") for c in since):
        since = ""  # not what log_sizes prints: wait for any change from now
    size = f"$(stat -c %s -- {_log_files(om_home, log)} 2>/dev/null | tr '\\n' ' ')"
    start = shlex.quote(since) if since.strip() else size
    return (f"s0={start}; i=0; while [ $i -lt {max(1, int(seconds * 10))} ]; do "
            f'[ "{size}" != "$s0" ] && break; sleep 0.1; i=$((i + 1)); done; true')


def refuse_if_halted(ctx: StepContext, node: Node) -> None:
    halted = ctx.shared.get(HALTED)
    if halted:
        raise RemoteError(
            node.name,
            f"not restarted: {halted} did not come back as a member, so the other nodes keep "
            "running as they are",
            f"fix {halted} (verify.members says why), then apply --section verify again")


async def wait_member(ctx: StepContext, node: Node, log: str, said: str = "") -> None:
    """Bounded wait until the node's latest members list holds itself and every OM node that
    runs the current configuration (not the ones this run has still to restart).
    said: what the restart printed of this start (its lifecycle and members lines): a node
    back at once is seen there, and its peers restarted before it are known to run, so it
    costs no read (the step's re-check reads every node's process at once afterwards)."""
    pending = ctx.shared.setdefault(PENDING, set())
    pending.discard(node.name)
    restarting = ctx.shared.get(RESTARTING, set())
    expected = {node.address}
    for peer in ctx.plan.om_nodes:
        if peer.name == node.name or peer.name in pending:
            continue
        if peer.name in restarting:  # restarted by this run and seen back as a member
            expected.add(peer.address)
            continue
        try:
            if (await ctx.fact(peer, OM_PROCESS))["pids"]:
                expected.add(peer.address)
        except RemoteError:
            continue  # an unreachable peer is not waited for

    def back(text: str) -> bool:  # alone by configuration: verify.members says so
        facts = verifyfacts.read_log(text)
        return facts.standalone or seen_as_member(facts, expected)

    if said and back(said):
        return
    deadline = time.monotonic() + MEMBER_WAIT
    home = ctx.plan.cluster.om_home
    # Not seen back in what the restart printed: the first read is the step's declared facts
    # (read again after the restart), which fills what the step's re-check reads.
    await ctx.gather(node, [OM_PROCESS, MEMBERS_LOG])
    first = await ctx.fact(node, MEMBERS_LOG)
    tail, sizes = first.text, first.sizes
    parts = {"sizes": log_sizes(home, log), **members_parts(home, log)}
    while not back(tail):
        if time.monotonic() > deadline:
            ctx.shared[HALTED] = node.name
            block = verifyfacts.read_log(tail).block
            seen = ", ".join(a for a, _ in block.members) if block else "no one"
            raise RemoteError(
                node.name,
                f"{node.name} started but is not back in the cluster after {MEMBER_WAIT} s: "
                f"it sees {seen}, expected {', '.join(sorted(expected))}",
                "check network.firewall and the join settings (verify.members says more); "
                "the nodes not restarted yet keep running")
        # the next read waits on the node until the log grows (at most POLL_S): it sees a
        # members list one round trip after it is written, not at the next tick of a timer
        got = await ctx.run_parts(node, {"wait": log_growth_wait(home, log, sizes), **parts})
        tail, sizes = got["tail"].stdout, got["sizes"].stdout
