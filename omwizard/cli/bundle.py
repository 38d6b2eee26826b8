"""`omwizard bundle PLAN -o FILE.tar.gz`: a support bundle with every secret redacted."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from omwizard.cli import main as cli


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="a support bundle: configs, JVM args, log tails, health, "
                       "results; every secret redacted")
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    p.add_argument("--state", metavar="DIR", help="session state directory")
    p.add_argument("--json", action="store_true")


async def _collect(args: argparse.Namespace, printer: cli.Printer, path: Path) -> Path:
    from omwizard.engine.bundle import collect, write_bundle
    from omwizard.engine.session import Session

    plan = cli.load(args.plan)
    confirm, ask = cli.make_callbacks(printer)
    session = Session.open(plan, args.state, confirm_host_key=confirm, ask_password=ask)
    async with session:
        files, clean = await collect(session, with_secrets=bool(plan.database.password.value))
        stem = path.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
        return write_bundle(path, files, clean, stem or "omwizard-bundle")


def cmd_bundle(args: argparse.Namespace, out: cli.Printer) -> int:
    printer = out
    path = Path(args.output).expanduser()
    if path.is_dir():
        path = path / "omwizard-bundle.tar.gz"
    if not path.parent.is_dir():
        raise cli.UsageError(f"-o {args.output}: the folder {path.parent} does not exist")
    written = asyncio.run(_collect(args, printer, path))
    if not os.environ.get("OMW_DB_PASSWORD"):
        printer.line("note: no DB password: the database and verify checks are not in it")
    if args.json:
        print(json.dumps({"omwizard": 1, "command": "bundle", "output": str(written)}))
    printer.line(f"wrote {written} (secrets redacted)")
    return cli.EXIT_OK
