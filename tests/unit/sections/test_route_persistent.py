"""route-persistent on a node whose network configuration omwizard does not know: not ok."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from omwizard.engine.step import NEEDS_CHANGE, OK
from omwizard.plan.model import plan_from_dict
from omwizard.remote.results import RemoteError, RunResult
from omwizard.sections.network import STEPS
from tests.ui.conftest import neutral_plan_dict


class _Ctx:
    """Just what RoutePersistentStep.check reads: no config file, no NetworkManager."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan

    async def fact(self, node: Any, fact: Any) -> Any:
        """Each declared fact parsed from what an empty node prints (no file, no nmcli)."""
        return fact.parse("\x1eOMW-FILE\n" if fact.name == "route_config_files" else "")

    async def fact_evidence(self, node: Any, fact: Any) -> str:
        return RunResult(fact.name, 0, "", "").evidence()

    async def run_parts(self, node: Any, parts: dict[str, str], sudo: bool = False) -> dict:
        raise AssertionError("everything it reads is declared")

    async def read_texts(self, node: Any, paths: list[str]) -> dict[str, str | None]:
        raise AssertionError("no file to read")


def _step() -> Any:
    return next(s for s in STEPS if s.name == "route-persistent")


def test_unknown_network_config_needs_a_change_with_the_remedy() -> None:
    plan = plan_from_dict(neutral_plan_dict(), env={})
    node = dataclasses.replace(plan.om_nodes[0], interface="eth0")
    finding = asyncio.run(_step().check(_Ctx(plan), node))
    assert finding.status == NEEDS_CHANGE != OK
    assert "lost at the next reboot" in finding.detail
    assert f"ip route replace {plan.network.route} dev eth0" in finding.remedy
    # apply cannot write it: it fails with the same remedy rather than pretending
    with pytest.raises(RemoteError) as err:
        asyncio.run(_step().apply(_Ctx(plan), node, finding))
    assert "cannot make" in err.value.message and "ip route replace" in err.value.remedy
