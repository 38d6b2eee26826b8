"""The headless face: `omwizard check|apply|rollback|export|validate PLAN` and the TUI launcher.

Human output is concise and coloured on a terminal, plain when piped; with --json the
contract's JSON document goes to stdout and the human lines to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from omwizard import __version__
from omwizard.engine.catalog import SECTIONS
from omwizard.engine.events import Event, StepFinished
from omwizard.engine.step import STATUS_SYMBOLS
from omwizard.plan.model import Node, Plan, PlanError, load_plan

if TYPE_CHECKING:  # the engine and the session are imported when a command needs them
    from omwizard.engine.session import Session
    from omwizard.engine.step import Result

EXIT_OK, EXIT_CHANGE, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 3
SECRET_SECTIONS = {"database", "verify"}

COLOURS = {
    "ok": "32",
    "changed": "36",
    "rolled-back": "36",
    "would-change": "33",
    "needs-change": "33",
    "failed": "31;1",
    "skipped": "2",
}

class UsageError(Exception):
    """Bad command line or plan: exit 2, nothing contacted."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omwizard",
        description="Turn Apache OpenMeetings servers into a working cluster, and keep it working.",
    )
    parser.add_argument("--version", action="version", version=f"omwizard {__version__}")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser, *, changes: bool = False) -> None:
        p.add_argument("plan", metavar="PLAN", help="the plan file (YAML, schema version 1)")
        p.add_argument(
            "--section", action="append", choices=SECTIONS, help="only this section (repeatable)"
        )
        p.add_argument(
            "--node", action="append", metavar="NAME", help="only this node (repeatable)"
        )
        p.add_argument("--state", metavar="DIR", help="session state directory")
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.add_argument("--yes", action="store_true", help="no confirmation prompts")
        if changes:
            p.add_argument(
                "--dry-run", action="store_true", help="show commands and diffs, change nothing"
            )

    common(sub.add_parser("check", help="every check, read-only: the troubleshooting view"))
    common(sub.add_parser("apply", help="bring every node to the plan"), changes=True)
    rb = sub.add_parser("rollback", help="undo the journaled changes, newest first")
    common(rb, changes=True)
    rb.add_argument("--force", action="store_true", help="restore files even if changed since")
    ex = sub.add_parser("export", help="the plan plus a report of what was done")
    common(ex)
    ex.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the YAML")
    va = sub.add_parser("validate", help="load and validate only; no connection")
    va.add_argument("plan", metavar="PLAN")
    va.add_argument("--json", action="store_true")
    tui = sub.add_parser("tui", help="the wizard on a plan")
    tui.add_argument("plan", metavar="PLAN", nargs="?")
    tui.add_argument("--state", metavar="DIR")
    an = sub.add_parser("answer", help="record a manual verification answer")
    common(an)
    an.add_argument(
        "check_id", metavar="CHECK", help="manual check id (see `omwizard check --section verify`)"
    )
    an.add_argument("verdict", choices=("pass", "fail"))
    an.add_argument("--note", default="")
    re_ = sub.add_parser("rehearse", help="a throwaway local cluster to practise on (needs root)")
    re_.add_argument("--nodes", type=int, default=3)
    re_.add_argument(
        "--om-version", default=None, help="OpenMeetings release of the nodes (default 9.1.0)"
    )
    re_.add_argument(
        "--om-files", metavar="PATH", default=None,
        help="take the nodes' OpenMeetings files from this OpenMeetings home, release folder or "
             "release archive (.tar.gz/.zip) (default: the official release, downloaded once "
             "into ~/.cache/omwizard; a checkout uses the project's fixtures)",
    )
    re_.add_argument(
        "--om-mirror", metavar="URL", default=None,
        help="download the release from this Apache dist mirror (the folder holding "
             "openmeetings/; default $OMW_OM_MIRROR, else https://archive.apache.org/dist/)",
    )
    re_.add_argument("--db", choices=("mariadb", "postgresql"), default="mariadb")
    re_.add_argument(
        "--headless", action="store_true", help="apply every section, print, tear down"
    )
    re_.add_argument("--keep", action="store_true", help="leave the rehearsal cluster running")
    re_.add_argument(
        "--down", action="store_true", help="tear down a rehearsal cluster left running"
    )
    re_.add_argument("--json", action="store_true")
    from omwizard.cli import bundle, discover, doctor  # troubleshooting (issue 18)

    for extra in (discover, doctor, bundle):
        extra.add_parser(sub)
    from omwizard.cli import nodes  # a living cluster: remove-node (issue 19)

    nodes.add_parser(sub)
    return parser


# -- output ---------------------------------------------------------------------------------


class Printer:
    """Human lines: coloured on a terminal, plain when piped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.colour = stream.isatty() and os.environ.get("NO_COLOR") is None

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def result(self, result: Result) -> None:
        r = result.as_json()
        status = r["status"]
        symbol = STATUS_SYMBOLS.get(status, "?")
        tag = self.paint(f"{symbol} {status:<12}", COLOURS.get(status, "0"))
        self.line(f"{tag} {r['section']}.{r['step']} [{r['node']}] {r['detail']}")
        for change in r.get("changes", []):
            self.line(f"    {change['kind']}: {change['target']}  (undo: {change['undo']})")
        if r.get("diff") and status in ("would-change", "changed", "needs-change", "failed"):
            for dl in r["diff"].rstrip("\n").splitlines():
                code = "32" if dl.startswith("+") else "31" if dl.startswith("-") else "2"
                self.line("    " + self.paint(dl, code))
        if r.get("remedy") and status in ("failed", "needs-change"):
            self.line("    " + self.paint("→ " + r["remedy"], "1"))

    def summary(self, s: dict[str, int]) -> None:
        parts = [f"{v} {k.replace('_', '-')}" for k, v in s.items() if v]
        self.line(", ".join(parts) if parts else "nothing to do")


# -- secrets and callbacks ------------------------------------------------------------------


def _interactive() -> bool:
    return sys.stdin.isatty()


def resolve_db_password(plan: Plan, sections: list[str]) -> Plan:
    """Ask for the DB password when a selected section needs it and the plan has none."""
    if not SECRET_SECTIONS.intersection(sections) or plan.database.password.value:
        return plan
    var = plan.database.password.var
    if not _interactive():
        hint = f"export {var}=..." if var else "set database.password: ${OMW_DB_PASSWORD}"
        raise UsageError(f"database.password: no value ({hint}, or run in a terminal to be asked)")
    value = getpass.getpass(f"Database password for {plan.database.user}@{plan.database.host}: ")
    if "," in value:
        raise UsageError(
            "database.password: contains a comma, which OpenJPA splits on; choose another"
        )
    db = dataclasses.replace(plan.database, password=plan.database.password.resolved(value))
    return dataclasses.replace(plan, database=db)


def make_callbacks(
    printer: Printer,
) -> tuple[Callable[[Node, str, int, str], bool], Callable[[Node, str], str | None]]:
    """Host-key and sudo-password questions on the terminal (the session redacts the answer)."""

    def confirm(node: Node, host: str, port: int, fingerprint: str) -> bool:
        if node.ssh.host_keys == "accept-new":
            printer.line(f"{node.name}: new host key for {host}:{port} pinned: {fingerprint}")
            return True
        if _interactive():
            answer = input(
                f"{node.name}: unknown host key for {host}:{port}\n  {fingerprint}\n"
                "Trust it and pin it in known_hosts? [y/N] "
            )
            return answer.strip().lower() in ("y", "yes")
        return False

    asked: dict[str, str] = {}

    def ask(node: Node, prompt: str) -> str | None:
        value = os.environ.get("OMW_SUDO_PASSWORD")
        if not value and _interactive():
            key = node.ssh.user
            value = asked.get(key) or getpass.getpass(prompt + ": ")
            asked[key] = value
        return value or None

    return confirm, ask


# -- commands -------------------------------------------------------------------------------


def load(path: str) -> Plan:
    try:
        return load_plan(path)
    except PlanError as exc:
        raise UsageError(f"{path}: the plan is not valid:\n{exc}") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the plan: {exc.strerror or exc}") from exc


def cmd_validate(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.remote.sshconfig import route_problems

    plan = load(args.plan)
    if problems := route_problems(plan):  # ssh.config / ~/.ssh/config: read, not contacted
        raise UsageError(f"{args.plan}: the plan is not valid:\n{PlanError(problems)}")
    om = len(plan.om_nodes)
    if args.json:
        print(
            json.dumps(
                {
                    "omwizard": 1,
                    "command": "validate",
                    "cluster": plan.cluster.name,
                    "valid": True,
                    "nodes": [n.name for n in plan.nodes],
                }
            )
        )
    out.line(
        f"{args.plan}: valid: cluster {plan.cluster.name}, "
        f"{len(plan.nodes)} nodes ({om} OpenMeetings)"
    )
    return EXIT_OK


def _check_nodes(plan: Plan, names: list[str] | None) -> None:
    if not names:
        return
    known = {n.name for n in plan.nodes}
    for name in names:
        if name not in known:
            raise UsageError(
                f"--node {name}: no such node in the plan (nodes: {', '.join(sorted(known))})"
            )


async def run_engine(
    args: argparse.Namespace, plan: Plan, out: Printer
) -> tuple[list[Result], Session]:
    """Run check, apply or rollback on one session; it is closed (pool, lock) on the way out."""
    from omwizard.engine.session import Session
    from omwizard.plan.model import dump_plan

    confirm, ask = make_callbacks(out)

    def show(event: Event) -> None:
        if isinstance(event, StepFinished):
            out.result(event.result)

    dry_run = getattr(args, "dry_run", False)
    session = Session.open(plan, args.state, confirm_host_key=confirm, ask_password=ask)
    session.bus.subscribe(show)
    async with session:
        if args.command == "apply" and session.state is not None:
            args.previous_plan = session.state.load_plan_text()  # what the run touches, vs it
        if args.command != "check" and not dry_run:
            assert session.state is not None
            session.state.save_plan(dump_plan(plan))
        engine = session.engine(
            args.section or list(SECTIONS),
            args.node,
            dry_run=dry_run,
            force=getattr(args, "force", False),
        )
        if args.command == "check":
            results = await engine.check()
        elif args.command == "apply":
            results = await engine.apply()
        else:
            results = await engine.rollback()
    return results, session


def confirm_changes(args: argparse.Namespace, plan: Plan, out: Printer) -> None:
    if args.yes or args.dry_run:
        return
    what = "apply changes to" if args.command == "apply" else "undo omwizard's changes on"
    nodes = args.node or [n.name for n in plan.nodes]
    if not _interactive():
        raise UsageError(
            f"{args.command} changes nodes: confirm with --yes (or try --dry-run first)"
        )
    answer = input(f"About to {what} {', '.join(nodes)}. Go on? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed; nothing was changed")


def cmd_engine(args: argparse.Namespace, out: Printer) -> int:
    plan = load(args.plan)
    _check_nodes(plan, args.node)
    if args.command in ("apply", "rollback"):
        confirm_changes(args, plan, out)
    plan = resolve_db_password(plan, args.section or list(SECTIONS))
    results, session = asyncio.run(run_engine(args, plan, out))
    doc = session.document(args.command, results)
    summary: dict[str, int] = doc["summary"]
    if args.command == "apply":  # which nodes the run changes and which it leaves alone
        from omwizard.engine.membership import touch_report

        touches = touch_report(getattr(args, "previous_plan", None), plan, results)
        doc["membership"] = touches.as_json()
        for line in touches.lines():
            out.line(line)
    if args.json:
        print(json.dumps(doc, indent=1))
    out.summary(summary)
    if getattr(args, "dry_run", False) and summary.get("would_change"):
        out.line(f"dry run: nothing was changed; run it without --dry-run to {args.command}")
    return exit_status(summary)


def exit_status(summary: dict[str, int]) -> int:
    """CONTRACT: 0 all ok; 1 something needs a change (a dry run's would-change too) or failed."""
    bad = summary["failed"] + summary["needs_change"] + summary.get("would_change", 0)
    return EXIT_OK if bad == 0 else EXIT_CHANGE


def cmd_export(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.engine.export import ExportError, write_export
    from omwizard.engine.session import open_state

    plan = load(args.plan)
    state = open_state(plan, args.state)
    try:
        path = write_export(plan, state, Path(args.output))
    except ExportError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        state.unlock()
    if args.json:
        print(
            json.dumps(
                {
                    "omwizard": 1,
                    "command": "export",
                    "cluster": plan.cluster.name,
                    "output": str(path),
                }
            )
        )
    out.line(f"wrote {path}")
    return EXIT_OK


def cmd_answer(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.engine.export import record_answer
    from omwizard.engine.session import open_state

    plan = load(args.plan)
    state = open_state(plan, args.state)
    try:
        record_answer(state, args.check_id, args.verdict, args.note)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from exc
    finally:
        state.unlock()
    out.line(f"recorded {args.check_id}: {args.verdict}")
    return EXIT_OK


def cmd_tui(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.cli.rehearse import invoked_as, rehearse_command
    from omwizard.tui.app import run_app

    plan_path = getattr(args, "plan", None)
    if plan_path:
        load(plan_path)  # a bad plan is an exit-2 error before the screen opens

    def rehearse() -> int:  # the welcome screen's "Practise": the rehearsal in its place
        return cmd_rehearse(build_parser().parse_args(["rehearse"]), out)

    return run_app(
        plan_path,
        state_dir=getattr(args, "state", None),
        rehearse_command=rehearse_command(),
        program=invoked_as(),
        rehearse=rehearse if os.geteuid() == 0 else None,
    )


def cmd_rehearse(args: argparse.Namespace, out: Printer) -> int:
    from omwizard.cli.rehearse import rehearse

    return rehearse(args, out)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    human = Printer(sys.stderr if getattr(args, "json", False) else sys.stdout)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    handlers = {
        "validate": cmd_validate,
        "check": cmd_engine,
        "apply": cmd_engine,
        "rollback": cmd_engine,
        "export": cmd_export,
        "answer": cmd_answer,
        "tui": cmd_tui,
        "rehearse": cmd_rehearse,
        None: cmd_tui,
    }
    from omwizard.cli import bundle, discover, doctor

    handlers.update(discover=discover.cmd_discover, doctor=doctor.cmd_doctor,
                    bundle=bundle.cmd_bundle)
    from omwizard.cli.nodes import cmd_remove_node

    handlers["remove-node"] = cmd_remove_node
    from omwizard.engine.state import StateError

    try:
        return handlers[args.command](args, human)
    except UsageError as exc:
        human.line(human.paint("error: ", "31;1") + str(exc))
        return EXIT_INVALID
    except StateError as exc:
        human.line(human.paint("error: ", "31;1") + str(exc))
        return EXIT_CHANGE
    except KeyboardInterrupt:
        human.line("interrupted: the journal keeps what was done; run the same command to resume")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
