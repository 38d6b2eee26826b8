"""Connection failures: said once per node, with the remedy its cause calls for."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from omwizard.engine.session import Session
from omwizard.plan.model import plan_from_dict
from omwizard.remote.ssh import connect_error
from tests.ui.conftest import neutral_plan_dict


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node():  # type: ignore[no-untyped-def]
    return plan_from_dict(neutral_plan_dict(), env={}).nodes[0]


def test_dns_failure_names_the_name_not_sshd() -> None:
    err = connect_error(_node(), "om1.exmaple.org", 22,
                        socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert "cannot resolve the host name 'om1.exmaple.org'" in err.message
    assert "nodes[].host" in err.remedy and "DNS" in err.remedy
    assert "sshd" not in err.remedy


@pytest.mark.parametrize(
    ("exc", "said", "hint", "not_hint"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused",
         "nothing listens on port 22", "firewall"),
        (TimeoutError(), "no answer within", "firewall", "nothing listens"),
        (OSError(113, "No route to host"), "No route to host", "no route to", "sshd"),
    ],
)
def test_each_cause_gets_its_own_hint(
    exc: BaseException, said: str, hint: str, not_hint: str
) -> None:
    err = connect_error(_node(), "192.0.2.11", 22, exc)
    assert said in err.message and "192.0.2.11:22" in err.message
    assert hint in err.remedy and not_hint not in err.remedy


def test_unreachable_node_is_reported_once_and_its_other_steps_refer_to_it(
    tmp_path: Path,
) -> None:
    data = neutral_plan_dict()
    port = _closed_port()
    for node in data["nodes"]:
        node["host"] = "127.0.0.1"
        node["ssh"] = {"port": port}
    data["nodes"][1]["ssh"] = {"port": port}
    plan = plan_from_dict(data, env={})

    async def run() -> list:  # type: ignore[type-arg]
        session = Session.open(plan, tmp_path / "state")
        async with session:
            return await session.engine(["preflight", "network"]).check()

    results = asyncio.run(run())
    for name in ("om1", "om2", "db"):
        mine = [r for r in results if r.node == name and r.status != "skipped"]
        assert len(mine) > 2, mine
        said = [r for r in mine if "connection refused" in r.detail]
        assert len(said) == 1, [r.detail for r in mine]
        first = f"{said[0].section}.{said[0].step}"
        rest = [r for r in mine if r is not said[0]]
        assert {r.status for r in rest} == {"failed"}
        assert all(f"could not be reached (see {first})" in r.detail for r in rest), rest
        assert all(f"127.0.0.1:{port}" in r.detail for r in rest), rest
        assert all(r.remedy and len(r.remedy) < 80 for r in rest)
