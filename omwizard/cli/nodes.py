"""`omwizard remove-node PLAN NAME`: take one node out of a running cluster.

In this order, each part journaled and safe to run again after an interruption:
1. the leaving node's OpenMeetings is stopped (it would rejoin by multicast otherwise);
2. its peers drop it: its /etc/exports client and database account (sections/_departure.py),
   then the ordinary apply of the plan without it (network: omwizard's firewall rules;
   nodes: tcp-ip member lists), and the peers whose configuration changed restart one at a
   time, each seen back as a member (verify.restart), and the members are verified;
3. the leaving node's own changes are rolled back from the journal, or left (`--leaving`);
4. the plan file loses the node, every comment kept (plan/edit.py), last: until then,
   running the same command again finishes the job.
Adding a node needs no command: add it to the plan and apply (only what the new member
changes is touched; `apply --dry-run` lists the nodes touched and the ones left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omwizard.engine.plan_file import write_plan_file
from omwizard.engine.removal import RemovalError, plan_without, remove_node

if TYPE_CHECKING:
    from omwizard.cli.main import Printer
    from omwizard.engine.step import Result
    from omwizard.plan.model import Node, Plan


def add_parser(sub: argparse._SubParsersAction) -> None:
    rn = sub.add_parser("remove-node", help="take a node out of a running cluster (confirmed)")
    rn.add_argument("plan", metavar="PLAN", help="the plan file that still lists the node")
    rn.add_argument("name", metavar="NAME", help="the node that leaves")
    rn.add_argument("--leaving", choices=("rollback", "keep"), default="keep",
                    help="the leaving node's own changes: roll them back from the journal, "
                    "or keep them (default; its OpenMeetings is stopped either way)")
    rn.add_argument("--state", metavar="DIR", help="session state directory")
    rn.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    rn.add_argument("--yes", action="store_true", help="no confirmation prompt")


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def plans(path: str, name: str) -> tuple[Plan, Plan, str]:
    """(the plan as it is, the plan without the node, the new plan text): nothing contacted."""
    from omwizard.cli.main import UsageError, load

    before = load(path)
    try:
        after, text = plan_without(before, Path(path).read_text(), name, os.environ, path,
                                   source=Path(path))
    except RemovalError as exc:
        raise UsageError(str(exc)) from exc
    return before, after, text


def confirm(args: argparse.Namespace, before: Plan, leaving: Node) -> None:
    from omwizard.cli.main import UsageError

    if args.yes:
        return
    if not _interactive():
        raise UsageError("remove-node changes nodes: confirm with --yes")
    peers = ", ".join(n.name for n in before.nodes if n.name != leaving.name)
    own = ("rolled back from the journal" if args.leaving == "rollback"
           else "left in place (--leaving rollback undoes them)")
    answer = input(
        f"About to remove {leaving.name} ({leaving.address}) from cluster "
        f"{before.cluster.name}: OpenMeetings on it is stopped; {peers} drop it (exports, "
        f"database account, firewall rules, member lists) and restart only where their "
        f"configuration changed; its own changes are {own}; {args.plan} loses it. "
        "Go on? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed; nothing was changed")


async def remove(args: argparse.Namespace, before: Plan, after: Plan, out: Printer
                 ) -> tuple[list[Result], object]:
    """The session (the CLI's host-key and password questions, each result printed as it
    comes) around the orchestration the TUI runs too (engine/removal.py)."""
    from omwizard.cli.main import make_callbacks
    from omwizard.engine.events import Event, StepFinished
    from omwizard.engine.session import Session

    ask_host, ask_password = make_callbacks(out)

    def show(event: Event) -> None:
        if isinstance(event, StepFinished):
            out.result(event.result)

    session = Session.open(before, args.state, confirm_host_key=ask_host,
                           ask_password=ask_password)
    session.bus.subscribe(show)
    async with session:
        results = await remove_node(session, before, after, args.name, args.leaving)
    return results, session


def cmd_remove_node(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.cli.main import exit_status
    from omwizard.engine.session import document

    before, after, text = plans(args.plan, args.name)
    confirm(args, before, before.node(args.name))
    results, _session = asyncio.run(remove(args, before, after, out))
    doc = document("remove-node", after.cluster.name, results)
    summary = doc["summary"]
    failed = summary["failed"] + summary["needs_change"]
    if failed == 0:
        write_plan_file(args.plan, text)
        out.line(f"{args.name} removed; {args.plan} no longer lists it (comments kept)")
    else:
        out.line(f"{args.name} not fully removed: {args.plan} still lists it; fix what failed "
                 "and run the same command again")
    doc["removed"] = args.name if failed == 0 else None
    if args.json:
        print(json.dumps(doc, indent=1))
    out.summary(summary)
    return exit_status(summary)
