"""What the firewall step changes for ufw and firewalld, on their real outputs: exactly the
commands (with their undo) that bring omwizard's rules to the plan's, nothing else. The step
talks to the node only through StepContext.change_command, recorded here."""

from __future__ import annotations

import asyncio
from typing import Any

from omwizard.configs import firewall as rules
from omwizard.facts.firewall_firewalld import parse_firewalld
from omwizard.facts.firewall_paths import required_openings, wanted_atoms
from omwizard.facts.firewall_ufw import parse_ufw
from omwizard.sections._firewall import _firewalld, _ufw
from tests.unit.facts.test_firewall import capture
from tests.unit.facts.test_firewall_tools import lab_plan

N2, N3 = "198.18.0.12", "198.18.0.13"


class Recorder:
    """The one StepContext method these paths use: each change and its undo, in order."""

    def __init__(self) -> None:
        self.changes: list[tuple[list[str], list[str] | None]] = []

    async def change_command(self, node: Any, argv: list[str], undo: list[str] | None,
                             **_: Any) -> None:
        self.changes.append((argv, undo))


def wanted(*names: str) -> list[tuple[str, str, int, int]]:
    p = lab_plan(*names)
    return sorted(wanted_atoms(required_openings(p, p.node("n1"))))


def run(coro_fn, *args) -> list[tuple[list[str], list[str] | None]]:
    ctx = Recorder()
    p = lab_plan("n1", "n2")
    asyncio.run(coro_fn(ctx, p.node("n1"), *args))
    return ctx.changes


def test_firewalld_first_time_creates_the_ipset_fills_it_and_adds_one_rule_per_port() -> None:
    fw = parse_firewalld(capture("firewalld_plain.txt"))
    changes = run(_firewalld, fw, wanted("n1", "n2", "n3"), "lab")
    assert changes[0] == rules.firewalld_new_ipset("omw-lab", "lab")
    assert changes[1:3] == [rules.firewalld_entry("omw-lab", a) for a in (N2, N3)]
    assert changes[3:] == [
        rules.firewalld_rule("public", rules.firewalld_rich("omw-lab", *p))
        for p in (("tcp", 5636, 5636), ("tcp", 5701, 5703), ("udp", 54327, 54327))]


def test_firewalld_a_departed_node_is_exactly_its_ipset_entry() -> None:
    fw = parse_firewalld(capture("firewalld_ours.txt"))
    assert run(_firewalld, fw, wanted("n1", "n2", "n3"), "lab") == []  # already so
    add, remove = rules.firewalld_entry("omw-lab", N3)
    assert run(_firewalld, fw, wanted("n1", "n2"), "lab") == [(remove, add)]


def test_ufw_drops_the_departed_nodes_rules_and_prepends_the_missing() -> None:
    ufw = parse_ufw(capture("ufw_mixed.txt"), "lab")
    changes = run(_ufw, ufw, wanted("n1", "n2"), "lab")
    add13, del13 = rules.ufw_allow("udp", N3, ((54327, 54327),), "lab")
    add12, del12 = rules.ufw_allow("udp", N2, ((54327, 54327),), "lab")
    assert changes == [(del13, add13), (add12, del12)]
    fresh = parse_ufw(capture("ufw_deny.txt"), "lab")
    changes = run(_ufw, fresh, wanted("n1", "n2", "n3"), "lab")
    # prepended last first, so that they read tcp .12, tcp .13, udp .12, udp .13
    assert [argv[6] for argv, _ in changes] == [N3, N2, N3, N2]
    assert [argv[4] for argv, _ in changes] == ["udp", "udp", "tcp", "tcp"]
    assert all(argv[:3] == ["ufw", "prepend", "allow"] and argv[-2:] == ["comment",
               "omwizard:lab"] and undo is not None and undo[:3] == ["ufw", "delete", "allow"]
               for argv, undo in changes)
