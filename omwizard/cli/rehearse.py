"""`omwizard rehearse`: a throwaway local cluster to practise on, one command away.

The test lab, promoted to a product feature: N OpenMeetings-like nodes in network namespaces
(real sshd, a real MariaDB or PostgreSQL database node, real Hazelcast members standing in for
OpenMeetings' cluster layer), only in 198.18.0.0/24, never touching the machine's own network
beyond the lab's bridge. The wizard opens on a plan for it; everything is torn down when the
wizard exits, also on Ctrl-C or a crash (`--keep` leaves it up, `--down` cleans up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omwizard.lab import OmFiles

REHEARSAL_DIR = Path("/var/tmp/omwizard-rehearsal")
PASSWORD_ENV = "OMW_DB_PASSWORD"


def requirements() -> str | None:
    """What is missing to rehearse here, said so the operator can fix it; None when ready."""
    from omwizard.lab import missing_requirements

    if os.geteuid() != 0:
        return (
            "rehearsal needs root (it creates network namespaces and starts sshd and a "
            "database inside them): run it with sudo"
        )
    reason = missing_requirements()
    if reason:
        return f"{reason}; install the lab's packages with: sudo scripts/setup-system.sh"
    if shutil.which("java") is None:
        return "java is missing: sudo apt-get install default-jdk-headless"
    return None


def om_files(args: argparse.Namespace) -> OmFiles:
    """The OpenMeetings files the nodes get (raises OmFilesError naming the fix)."""
    from omwizard.lab import OmFilesError, fixture_files, operator_files
    from omwizard.lab.lab import DEFAULT_VERSION

    if args.om_files:
        files = operator_files(Path(args.om_files), args.om_version)
    else:
        files = fixture_files(args.om_version or DEFAULT_VERSION)
    template = "postgresql" if args.db == "postgresql" else "mysql"
    if files.template(template) is None:
        raise OmFilesError(f"{files.origin} has no {template}_persistence.xml, which a "
                           f"--db {args.db} rehearsal needs: choose the other --db or a "
                           "complete OpenMeetings")
    return files


def _start(n_nodes: int, files: OmFiles, db: str) -> tuple[Any, Path]:
    from omwizard.lab import build_lab, services

    lab = build_lab(n_nodes=n_nodes, om_files=files)
    try:
        services.ensure_lab_services(lab)
        if lab.db is None:  # build_lab makes one unless told not to
            raise RuntimeError("the lab was built without its database node")
        if db == "postgresql":
            services.start_postgres(lab.db)
        else:
            services.start_mariadb(lab.db)
        for node in lab.nodes.values():  # OpenMeetings' health endpoint, as the stand-in answers it
            services.start_health_responder(node)
        REHEARSAL_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        overrides: dict[str, Any] = {"cluster": {"name": "rehearsal"}}
        if db == "postgresql":
            overrides["database"] = {"type": "postgresql", "port": 5432}
        plan = lab.write_plan(REHEARSAL_DIR / "plan.yaml", **overrides)
        return lab, plan
    except BaseException:
        lab.teardown()
        raise


def rehearse(args: argparse.Namespace, out: Any) -> int:
    if args.down:
        from omwizard.lab import cleanup_leftovers

        if os.geteuid() != 0:
            out.line("error: rehearse --down needs root: run it with sudo")
            return 2
        cleanup_leftovers()
        shutil.rmtree(REHEARSAL_DIR, ignore_errors=True)
        out.line("rehearsal cluster removed (namespaces, bridge, processes, folders)")
        return 0
    if not 2 <= args.nodes <= 8:
        out.line("error: --nodes must be between 2 and 8")
        return 2
    from omwizard.lab import LabBusy, OmFilesError

    try:
        files = om_files(args)
    except OmFilesError as exc:
        out.line(f"error: {exc}. Nothing was changed.")
        return 2
    problem = requirements()
    if problem:
        out.line(f"error: {problem}. Nothing was changed.")
        return 2
    os.environ.setdefault(PASSWORD_ENV, "rehearse-" + secrets.token_urlsafe(12).replace(",", ""))
    out.line(
        f"building a {args.nodes}-node rehearsal cluster (OpenMeetings {files.version} "
        f"files from {files.origin}, {args.db}) in 198.18.0.0/24 ..."
    )
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    lab = None
    try:
        try:
            lab, plan = _start(args.nodes, files, args.db)
        except LabBusy:
            out.line("error: a lab or rehearsal cluster already runs on this machine (one at a "
                     "time): quit it, or remove a leftover one with `sudo omwizard rehearse "
                     "--down`. Nothing was changed.")
            return 2
        except (RuntimeError, OSError) as exc:  # a set-up command or service that failed
            out.line(f"error: the rehearsal cluster could not be built: {exc}\n"
                     "What it had made was removed again.")
            return 1
        out.line(f"plan: {plan}")
        if args.headless:
            return _headless(plan, out, json_out=getattr(args, "json", False))
        from omwizard.tui.app import run_app

        return run_app(str(plan))
    except KeyboardInterrupt:
        out.line("interrupted")
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)
        if lab is not None:
            if args.keep:
                out.line(
                    "--keep: the rehearsal cluster stays up; remove it with "
                    "`sudo omwizard rehearse --down`"
                )
            else:
                lab.teardown()
                shutil.rmtree(REHEARSAL_DIR, ignore_errors=True)
                out.line("rehearsal cluster torn down")


def _headless(plan_path: Path, out: Any, *, json_out: bool) -> int:
    """Apply every section on the rehearsal cluster and print the results (CI's rehearsal)."""
    from omwizard.engine.events import StepFinished
    from omwizard.engine.session import Session
    from omwizard.plan.model import load_plan

    plan = load_plan(plan_path)
    with tempfile.TemporaryDirectory(prefix="omwizard-rehearsal-state-") as tmp:

        async def go() -> dict[str, Any]:
            async with Session.open(plan, Path(tmp)) as session:
                session.bus.subscribe(
                    lambda e: out.result(e.result) if isinstance(e, StepFinished) else None
                )
                return session.document("rehearse", await session.engine().apply())

        doc = asyncio.run(go())
    if json_out:
        print(json.dumps(doc))
    summary = doc["summary"]
    out.summary(summary)
    sys.stdout.flush()
    return 0 if summary["failed"] == 0 and summary["needs_change"] == 0 else 1
