"""`omwizard doctor PLAN`: read-only diagnosis beyond the page, results in the contract's shape.

The human output lists each step's result (as `check` does), then the node-by-node matrix;
`--json` prints the contract's document (command "doctor") with the matrix rows beside the
results (the same rows are each matrix result's typed data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from omwizard.cli import main as cli
from omwizard.engine.events import Event, StepFinished

if TYPE_CHECKING:
    from omwizard.engine.step import Result
    from omwizard.facts.doctor import NodeView


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="read-only diagnosis of failures beyond the page "
                       "(logs, versions, interfaces, live JVM, Kurento)")
    p.add_argument("plan", metavar="PLAN", help="the plan file (write one with `discover`)")
    p.add_argument("--node", action="append", metavar="NAME", help="only this node (repeatable)")
    p.add_argument("--state", metavar="DIR", help="session state directory")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def print_matrix(rows: list[NodeView], printer: cli.Printer) -> None:
    """The matrix as a table: a column per node, a line per field."""
    from rich.console import Console
    from rich.table import Table

    from omwizard.engine.doctor import matrix_table

    if not rows:
        return
    lines = matrix_table(rows)
    table = Table(*lines[0], title="The nodes side by side", title_justify="left")
    for line in lines[1:]:
        table.add_row(*line)
    console = Console(file=printer.stream, no_color=not printer.colour, width=200,
                      highlight=False)
    console.print(table)


async def _run(args: argparse.Namespace, printer: cli.Printer) -> tuple[list[Result], dict]:
    from omwizard.engine.doctor import doctor
    from omwizard.engine.session import Session

    plan = cli.load(args.plan)
    cli._check_nodes(plan, args.node)
    confirm, ask = cli.make_callbacks(printer)

    def show(event: Event) -> None:
        if isinstance(event, StepFinished) and event.result.step != "matrix":
            printer.result(event.result)

    session = Session.open(plan, args.state, confirm_host_key=confirm, ask_password=ask)
    session.bus.subscribe(show)
    async with session:
        results = await doctor(session, args.node)
    return results, session.document("doctor", results)


def cmd_doctor(args: argparse.Namespace, out: cli.Printer) -> int:
    printer = out
    from omwizard.engine.doctor import matrix

    results, doc = asyncio.run(_run(args, printer))
    rows = matrix(results)
    if args.json:
        doc["matrix"] = [row.to_json() for row in rows]
        print(json.dumps(doc, indent=1))
    print_matrix(rows, printer)
    printer.summary(doc["summary"])
    return cli.exit_status(doc["summary"])
