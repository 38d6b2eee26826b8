"""network.multicast-ping's rounds (one script per node, all at once), on canned outputs of
that script: the verdicts, and the round run again from another node when the wanted
sender's capture could not start."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from omwizard.engine.step import FAILED, OK
from omwizard.plan.model import plan_from_dict
from omwizard.remote.results import RunResult
from omwizard.sections.network import multicast_ping
from tests.ui.conftest import neutral_plan_dict

PING = "@@ping 1\n2 packets transmitted, 0 received, 100% packet loss\n"


def seen(src: str, n: int = 2) -> str:
    return "".join(f"12:00:00.{i} IP {src} > 224.0.0.0: ICMP echo request, id 1, seq {i}, "
                   "length 64\n" for i in range(n))


class _Ctx:
    """Answers each node's script: `broken` nodes cannot start a capture; the others see
    the pings of whichever node the script told to send."""

    def __init__(self, plan: Any, broken: set[str]) -> None:
        self.plan, self.broken = plan, broken
        self.scripts: list[tuple[str, bool]] = []

    async def run(self, node: Any, script: str, **_kw: Any) -> RunResult:
        sends = "ping -t 1" in script
        self.scripts.append((node.name, sends))
        if node.name in self.broken:
            out = "@@not-listening\n@@capture 1\ntcpdump: eth9: No such device exists\n"
        else:
            out = "@@listening\n" + (PING if sends else "") + "@@capture 0\n" + self.capture
        return RunResult(script, 0, out, "")

    capture = ""


def nodes_of(plan: Any) -> list[Any]:
    return [dataclasses.replace(n, interface="eth0") for n in plan.om_nodes]


def test_one_round_when_the_sender_listens():
    plan = plan_from_dict(neutral_plan_dict(), env={})
    nodes = nodes_of(plan)
    ctx = _Ctx(plan, set())
    ctx.capture = seen(nodes[0].address)
    found = asyncio.run(multicast_ping(ctx, nodes))  # type: ignore[arg-type]
    assert [s for s in ctx.scripts if s[1]] == [(nodes[0].name, True)]  # one sender, once
    assert len(ctx.scripts) == len(nodes)  # one command per node
    assert {f.status for f in found.values()} == {OK}
    assert "sent 2 echo requests" in found[nodes[0].name].detail
    assert f"from {nodes[0].name} on eth0" in found[nodes[1].name].detail


def test_another_sender_when_the_wanted_one_cannot_capture():
    plan = plan_from_dict(neutral_plan_dict(), env={})
    nodes = nodes_of(plan)
    first, second = nodes[0].name, nodes[1].name
    ctx = _Ctx(plan, {first})
    ctx.capture = seen(nodes[1].address)
    found = asyncio.run(multicast_ping(ctx, nodes))  # type: ignore[arg-type]
    senders = [name for name, sends in ctx.scripts if sends]
    assert senders == [first, second]  # asked first; the round again from the next
    assert found[second].status == OK
    assert f"({first} could not send; {second} did)" in found[second].detail
    assert found[first].status == FAILED and "did not run" in found[first].detail


def test_no_capture_anywhere_says_the_ping_did_not_run():
    plan = plan_from_dict(neutral_plan_dict(), env={})
    nodes = nodes_of(plan)
    ctx = _Ctx(plan, {n.name for n in nodes})
    found = asyncio.run(multicast_ping(ctx, nodes))  # type: ignore[arg-type]
    assert {f.status for f in found.values()} == {FAILED}
    assert all("multicast ping not run" in f.detail for f in found.values())
