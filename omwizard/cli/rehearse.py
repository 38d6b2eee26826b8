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
import contextlib
import datetime
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omwizard.lab import OmFiles

REHEARSAL_DIR = Path("/var/tmp/omwizard-rehearsal")
PASSWORD_ENV = "OMW_DB_PASSWORD"
ENV_FILE = "db-password.env"  # beside the plan, 0600: the rehearsal's database password
SESSION_FILE = "session.json"  # beside the plan: the rehearsal's cluster name and state folder
INVOKED_AS = "OMW_INVOKED_AS"  # set by scripts/wizard: the command as the operator typed it
LEGACY_CLUSTER = "rehearsal"  # the one name every rehearsal shared before each got its own


def invoked_as() -> str:
    """This program, named the way the operator ran it (`scripts/wizard`, `omwizard`, ...)."""
    named = os.environ.get(INVOKED_AS, "").strip()
    if named:
        return shlex.quote(named)
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "__main__.py" or not argv0:
        return f"{shlex.quote(sys.executable)} -m omwizard"
    found = shutil.which("omwizard")
    try:
        if found and os.path.samefile(found, argv0):
            return "omwizard"
    except OSError:
        pass
    return shlex.quote(argv0)


def as_root(command: str) -> str:
    """`sudo COMMAND`, or just COMMAND for someone already root without sudo."""
    if os.geteuid() == 0 and not os.environ.get("SUDO_USER"):
        return command
    return f"sudo {command}"


def rehearse_command() -> str:
    """How this operator starts a rehearsal (the welcome screen's Practise names it)."""
    return as_root(f"{invoked_as()} rehearse")


def down_command() -> str:
    return as_root(f"{invoked_as()} rehearse --down")


def busy_message(exc: Exception) -> str:
    """Who holds the machine's one lab slot, and what to do about it (typed LabBusy fields)."""
    pid = getattr(exc, "holder_pid", None)
    holders: tuple[tuple[int, str], ...] = getattr(exc, "holders", ())
    if getattr(exc, "kept", False):
        plan = REHEARSAL_DIR / "plan.yaml"
        where = f" (its plan: {plan})" if plan.is_file() else ""
        return ("error: a rehearsal cluster kept with --keep is still up on this machine"
                f"{where}, and only one runs at a time: go on with it, or remove it with "
                f"`{down_command()}`. Nothing was changed.")
    if getattr(exc, "holder_alive", False) or holders:
        who = "; ".join(f"pid {p} ({cmd})" for p, cmd in holders[:3]) or f"pid {pid}"
        if not getattr(exc, "holder_alive", False):
            who = f"pid {pid or '?'}, which has exited; its lock is still open in {who}"
        return ("error: a lab or rehearsal cluster already runs on this machine (one at a "
                f"time), held by {who}: quit that program or wait for it to end, then run "
                "this again. Nothing was changed.")
    gone = f" (pid {pid} has exited)" if pid else ""
    return ("error: a lab or rehearsal cluster already runs on this machine (one at a time) "
            f"and its holder is gone{gone}: remove what it left with `{down_command()}`. "
            "Nothing was changed.")


def check_command(plan: Path) -> str:
    """How to use a kept rehearsal's plan from the command line (the password from its file)."""
    env = shlex.quote(str(plan.parent / ENV_FILE))
    inner = f"set -a; . {env}; set +a; exec {invoked_as()} check {shlex.quote(str(plan))}"
    return as_root(f"sh -c {shlex.quote(inner)}")


def requirements() -> str | None:
    """What is missing to rehearse here, said so the operator can fix it; None when ready."""
    from omwizard.lab import missing_requirements

    if os.geteuid() != 0:
        return (
            "rehearsal needs root (it creates network namespaces and starts sshd and a "
            f"database inside them): run it with sudo: `sudo {invoked_as()} rehearse`"
        )
    reason = missing_requirements()
    if reason:
        setup = Path(__file__).resolve().parents[2] / "scripts" / "setup-system.sh"
        if setup.is_file():  # a checkout: name the script where it is
            try:
                shown = str(setup.relative_to(Path.cwd()))
            except ValueError:
                shown = str(setup)
            return f"{reason}; install the lab's packages with: sudo {shlex.quote(shown)}"
        return (f"{reason}; install the lab's Debian packages (scripts/setup-system.sh in a "
                "checkout of omwizard lists them; `sudo scripts/wizard rehearse` there "
                "installs them)")
    if shutil.which("java") is None:
        return "java is missing: sudo apt-get install default-jdk-headless"
    return None


def _fixture_path(version: str) -> Path | None:
    """A checkout's fixture folder of that release (None for an installed copy)."""
    from omwizard.lab import shared_dir

    path = shared_dir() / "fixtures" / "openmeetings" / version
    return path if (path / "hazelcast.xml").is_file() else None


def needs_download(args: argparse.Namespace) -> bool:
    """Whether om_files() would download a release (not given, not a checkout, not cached)."""
    from omwizard.lab.lab import DEFAULT_VERSION
    from omwizard.lab.release import release_dir

    version = args.om_version or DEFAULT_VERSION
    return not (args.om_files or _fixture_path(version)
                or (release_dir(version) / "release.json").is_file())


def om_files(args: argparse.Namespace) -> OmFiles:
    """The OpenMeetings files the nodes get (raises OmFilesError naming the fix): --om-files
    (a folder or a release archive), a checkout's fixtures, else the official release from
    the cache or downloaded (with a progress bar)."""
    from omwizard.lab import OmFilesError, fixture_files, operator_files
    from omwizard.lab.lab import DEFAULT_VERSION
    from omwizard.lab.release import archive_files, fetch_release, mirror

    if args.om_files:
        given = Path(args.om_files).expanduser()
        if given.is_file():
            files = archive_files(given, args.om_version)
        else:
            files = operator_files(given, args.om_version)
    else:
        version = args.om_version or DEFAULT_VERSION
        if _fixture_path(version):
            files = fixture_files(version)
        else:
            base = mirror(getattr(args, "om_mirror", None))
            with _progress_bar(version) as progress:
                files = fetch_release(version, base, progress)
    template = "postgresql" if args.db == "postgresql" else "mysql"
    if files.template(template) is None:
        raise OmFilesError(f"{files.origin} has no {template}_persistence.xml, which a "
                           f"--db {args.db} rehearsal needs: choose the other --db or a "
                           "complete OpenMeetings")
    return files


@contextlib.contextmanager
def _progress_bar(version: str) -> Iterator[Callable[[int, int | None], None]]:
    """A download bar on stderr (rich, which textual brings), shown once bytes flow."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(TextColumn(f"OpenMeetings {version}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=False)
    task: list[Any] = []

    def update(done: int, total: int | None) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("download", total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()


def _cluster_name() -> str:
    """A name of its own for each rehearsal: its session folder and backups are its own."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"rehearsal-{stamp}-{secrets.token_hex(2)}"


def forget_sessions() -> list[str]:
    """Remove the sessions of earlier rehearsals (state folder, host-side backups, plan and
    password file): their clusters are gone. Returns the cluster names removed."""
    from omwizard.engine.state import default_state_dir, state_base
    from omwizard.engine.step import BACKUP_DIR
    from omwizard.lab.lab import BASE_DIR

    names = []
    try:
        record = json.loads((REHEARSAL_DIR / SESSION_FILE).read_text())
        names.append(str(record["cluster"]))
        shutil.rmtree(record["state_dir"], ignore_errors=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # before each rehearsal had a name of its own, all shared "rehearsal": its state folder
    # when its saved plan points at the lab's key, and its host-side backups
    legacy = state_base() / LEGACY_CLUSTER
    try:
        if f"{BASE_DIR}/" in (legacy / "plan.yaml").read_text():
            shutil.rmtree(legacy, ignore_errors=True)
    except OSError:
        pass
    for name in [*names, LEGACY_CLUSTER]:
        if name.startswith(LEGACY_CLUSTER) and "/" not in name:
            shutil.rmtree(Path(BACKUP_DIR) / name, ignore_errors=True)
            if name != LEGACY_CLUSTER:
                shutil.rmtree(default_state_dir(name), ignore_errors=True)
    shutil.rmtree(REHEARSAL_DIR, ignore_errors=True)
    return names


def _prepare(lab: Any, db: str) -> tuple[Path, str]:
    """This rehearsal's own session: a fresh cluster name, its plan and password file in
    REHEARSAL_DIR, and every folder it will use owned by the lab (removed with it)."""
    from omwizard.engine.state import default_state_dir
    from omwizard.engine.step import BACKUP_DIR

    name = _cluster_name()
    REHEARSAL_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    REHEARSAL_DIR.chmod(0o700)
    state_dir = default_state_dir(name)
    for path in (state_dir, Path(BACKUP_DIR) / name, REHEARSAL_DIR):
        lab.own(path)
    (REHEARSAL_DIR / SESSION_FILE).write_text(
        json.dumps({"cluster": name, "state_dir": str(state_dir)}) + "\n")
    env = REHEARSAL_DIR / ENV_FILE
    env.unlink(missing_ok=True)
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# the rehearsal cluster's database password; use it with:  set -a; . "
                f"{env}; set +a\n{PASSWORD_ENV}={shlex.quote(os.environ[PASSWORD_ENV])}\n")
    overrides: dict[str, Any] = {"cluster": {"name": name}}
    if db == "postgresql":
        overrides["database"] = {"type": "postgresql", "port": 5432}
    plan = lab.write_plan(REHEARSAL_DIR / "plan.yaml", **overrides)
    return plan, name


def _slot_wait() -> float:
    """OMW_LAB_WAIT: seconds to wait for the machine's one lab slot (as the test suite does)."""
    try:
        return max(0.0, float(os.environ.get("OMW_LAB_WAIT", "0")))
    except ValueError:
        return 0.0


def _start(n_nodes: int, files: OmFiles, db: str) -> tuple[Any, Path]:
    from omwizard.lab import build_lab, services

    lab = build_lab(n_nodes=n_nodes, om_files=files, wait=_slot_wait())
    try:
        forget_sessions()  # build_lab removed any earlier (kept) cluster: its session goes too
        services.ensure_lab_services(lab)
        if lab.db is None:  # build_lab makes one unless told not to
            raise RuntimeError("the lab was built without its database node")
        if db == "postgresql":
            services.start_postgres(lab.db)
        else:
            services.start_mariadb(lab.db)
        for node in lab.nodes.values():  # OpenMeetings' health endpoint, as the stand-in answers it
            services.start_health_responder(node)
        plan, _ = _prepare(lab, db)
        return lab, plan
    except BaseException:
        lab.teardown()
        raise


def _kept(plan: Path) -> list[str]:
    """What an operator needs to go on with a kept rehearsal (printed after the wizard)."""
    return [
        f"--keep: the rehearsal cluster stays up; its plan is {plan}",
        f"  its database password is in {plan.parent / ENV_FILE} (0600, root only); to check "
        "or apply it from the command line:",
        f"    {check_command(plan)}",
        f"  remove the cluster and everything of its session with `{down_command()}`",
    ]


def rehearse(args: argparse.Namespace, out: Any) -> int:
    if args.down:
        from omwizard.lab import cleanup_leftovers

        if os.geteuid() != 0:
            out.line(f"error: rehearse --down needs root: run `{down_command()}`")
            return 2
        from omwizard.lab import LabBusy

        try:
            cleanup_leftovers(_slot_wait())
        except LabBusy as exc:
            out.line(busy_message(exc).replace("Nothing was changed.", "Nothing was removed."))
            return 2
        forget_sessions()
        out.line("rehearsal cluster removed (namespaces, bridge, processes, folders, its "
                 "session and backups)")
        return 0
    if not 2 <= args.nodes <= 8:
        out.line("error: --nodes must be between 2 and 8")
        return 2
    from omwizard.lab import LabBusy, OmFilesError

    download = needs_download(args)  # not before we know the machine can rehearse at all
    problem = requirements() if download else None
    if problem:
        out.line(f"error: {problem}. Nothing was changed.")
        return 2
    try:
        files = om_files(args)
    except OmFilesError as exc:
        out.line(f"error: {str(exc).rstrip('.')}. Nothing was changed.")
        return 2
    problem = None if download else requirements()
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
        except LabBusy as exc:
            out.line(busy_message(exc))
            return 2
        except (RuntimeError, OSError) as exc:  # a set-up command or service that failed
            out.line(f"error: the rehearsal cluster could not be built: {exc}\n"
                     "What it had made was removed again.")
            return 1
        out.line(f"plan: {plan}")
        if args.headless:
            return _headless(plan, out, json_out=getattr(args, "json", False))
        from omwizard.engine.state import default_state_dir
        from omwizard.plan.model import load_plan
        from omwizard.tui.app import run_app

        state_dir = default_state_dir(load_plan(plan).cluster.name)
        return run_app(str(plan), state_dir=str(state_dir),
                       rehearse_command=rehearse_command(), rehearsing=True,
                       program=invoked_as())
    except KeyboardInterrupt:
        out.line("interrupted")
        return 3
    finally:
        signal.signal(signal.SIGTERM, previous)
        if lab is not None:
            if args.keep:
                try:  # it keeps the machine's lab slot: no other lab replaces it unasked
                    lab.keep_alive()
                except (OSError, RuntimeError) as exc:
                    out.line(f"warning: the kept cluster does not hold the machine's lab slot "
                             f"({exc}): another lab or rehearsal would replace it")
                for line in _kept(REHEARSAL_DIR / "plan.yaml"):
                    out.line(line)
            else:
                lab.teardown()  # also its session folder, backups, plan and password file
                forget_sessions()
                out.line("rehearsal cluster torn down (with its session and backups)")


def _headless(plan_path: Path, out: Any, *, json_out: bool) -> int:
    """Apply every section on the rehearsal cluster and print the results (CI's rehearsal)."""
    from omwizard.engine.events import StepFinished
    from omwizard.engine.session import Session
    from omwizard.engine.state import default_state_dir
    from omwizard.plan.model import load_plan

    plan = load_plan(plan_path)
    # the rehearsal's own session (removed with the cluster): with --keep, `rollback` on the
    # kept plan can undo what this apply did
    state_dir = default_state_dir(plan.cluster.name)

    async def go() -> dict[str, Any]:
        async with Session.open(plan, state_dir) as session:
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
