"""`omwizard discover HOST... -o PLAN`: read an existing cluster into a plan, with a report."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from omwizard.cli import main as cli


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover", help="read an existing cluster into a plan (secrets stay "
                       "${VAR}), with a report of disagreements")
    p.add_argument("hosts", metavar="HOST", nargs="+", help="every node (name or IPv4 address)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the plan")
    p.add_argument("--user", default="root", help="SSH user (default root)")
    p.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    p.add_argument("--identity", metavar="KEY", help="SSH private key file")
    p.add_argument("--known-hosts", default="~/.ssh/known_hosts", metavar="FILE")
    p.add_argument("--host-keys", choices=("strict", "accept-new"), default="strict")
    p.add_argument("--sudo", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--connect-timeout", type=float, default=10)
    p.add_argument("--json", action="store_true", help="the report as JSON on stdout")


def ssh_options(args: argparse.Namespace) -> dict[str, object]:
    ssh: dict[str, object] = {"user": args.user, "port": args.port}
    if args.identity:
        ssh["identity"] = args.identity
    ssh.update(known_hosts=args.known_hosts, host_keys=args.host_keys, sudo=args.sudo,
               connect_timeout=args.connect_timeout)
    return ssh


def cmd_discover(args: argparse.Namespace, out: cli.Printer) -> int:
    printer = out
    from omwizard.engine.discover import DiscoverError, discover, write_text

    confirm, ask = cli.make_callbacks(printer)
    try:
        found = asyncio.run(discover(args.hosts, ssh_options(args), confirm_host_key=confirm,
                                     ask_password=ask))
        path = write_text(Path(args.output).expanduser(), found.text)
    except DiscoverError as exc:
        raise cli.UsageError(str(exc)) from exc
    report = found.report
    if args.json:
        print(json.dumps({"omwizard": 1, "command": "discover",
                          "cluster": found.plan.cluster.name, "output": str(path),
                          "report": report}, indent=1))
    nodes = ", ".join(f"{n.name} ({n.host}: {'/'.join(n.roles)})" for n in found.plan.nodes)
    printer.line(f"wrote {path}: cluster {found.plan.cluster.name}, nodes {nodes}")
    for d in report["disagreements"]:
        values = ", ".join(f"{n}={v}" for n, v in d["values"].items())
        printer.line(f"  disagree: {d['key']}: {values} -> plan takes {d['chosen']}")
    for m in report["findings"]:
        printer.line(f"  {m['node']}: {m['what']}")
        printer.line("    " + printer.paint("→ " + m["fix"], "1"))
    printer.line("next: `omwizard check PLAN` and `omwizard doctor PLAN` "
                 "(export OMW_DB_PASSWORD=... for the database checks)")
    return cli.EXIT_OK
