"""Services that run inside lab nodes: the database servers, the OpenMeetings stand-ins.

The database node is administered as a Debian host is, because that is what the wizard's
database section meets on real servers:

- MariaDB: config in the node's own `/etc/mysql/mariadb.conf.d/50-server.cnf` (read through
  the standard `/etc/mysql/my.cnf` includes), `bind-address = 127.0.0.1` as Debian ships it,
  socket `/run/mysqld/mysqld.sock` (the node has a private /run), root by unix_socket
  (`mysql` as root works), started and restarted with Debian's own SysV script:
  `service mariadb start|stop|restart` (mysqld_safe; `systemctl` fails, no systemd here).
- PostgreSQL 15: a Debian cluster `15/main` made with `pg_createcluster`, config in
  `/etc/postgresql/15/main/{postgresql.conf,pg_hba.conf}`, `listen_addresses` left at its
  default (localhost), socket dir `/run/postgresql`, `sudo -u postgres psql` works;
  `service postgresql restart|reload` or `pg_ctlcluster 15 main restart|reload`.

Data directories live in the node's host folder (node.root/"mariadb", node.root/"postgresql"),
which the lab's reset() does not restore; every start_*() therefore rebuilds its server from
scratch (about 2 s), which is also the reset: no user or database survives it.
Lab.reset() kills these servers (they are not kept) and restores /etc, so a test that needs
a database starts it after the reset.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Protocol

from . import hazelcast

MARIADB_CNF = "/etc/mysql/mariadb.conf.d/50-server.cnf"
MARIADB_SAFE_CNF = "/etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf"
MARIADB_SOCKET = "/run/mysqld/mysqld.sock"
MARIADB_PIDFILE = "/run/mysqld/mysqld.pid"
PG_VERSION = "15"
PG_CLUSTER = "main"
PG_CONF_DIR = f"/etc/postgresql/{PG_VERSION}/{PG_CLUSTER}"
HEALTH_SCRIPT = Path(__file__).parent / "files" / "health_responder.py"
HEALTH_PATH = "/openmeetings/services/info/health"
VERSION_PATH = "/openmeetings/services/info/version"


class Node(Protocol):
    """What these helpers need of a lab node (omwizard.lab.LabNode has it)."""

    name: str
    address: str
    root: Path

    def run(self, cmd: list[str] | str, *, check: bool = False, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]: ...

    def write_file(self, path: str, text: str) -> None: ...

    def spawn(self, argv: list[str] | str, **popen_kw) -> subprocess.Popen: ...


class ServiceError(RuntimeError):
    """A lab service did not start; the message carries its output or log tail."""


def _traversable(path: Path) -> None:
    """Let the mysql/postgres users reach a data dir below root-owned folders."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode & 0o7777
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o011)


def _fresh_dir(node: Node, path: Path, owner: str, mode: str) -> None:
    q = shlex.quote
    path.parent.mkdir(parents=True, exist_ok=True)
    _traversable(path)
    node.run(f"rm -rf {q(str(path))} && install -d -o {q(owner)} -g {q(owner)} -m {mode} "
             f"{q(str(path))}", check=True)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# -- MariaDB --------------------------------------------------------------------------------
def mariadb_config(datadir: Path, bind_address: str = "127.0.0.1") -> str:
    """The db node's 50-server.cnf: Debian's settings, a lab data dir, a small footprint."""
    return f"""# omwizard lab: the database node's MariaDB server (Debian layout, lab data dir)
[server]

[mysqld]
user                    = mysql
pid-file                = {MARIADB_PIDFILE}
socket                  = {MARIADB_SOCKET}
basedir                 = /usr
datadir                 = {datadir}
tmpdir                  = /tmp
bind-address            = {bind_address}
character-set-server    = utf8mb4
collation-server        = utf8mb4_general_ci
skip-name-resolve
innodb_buffer_pool_size = 32M
innodb_log_file_size    = 8M
performance_schema      = OFF

[embedded]

[mariadb]

[mariadb-10.11]
"""


def _mariadb_safe_config(log: Path) -> str:
    return f"""# omwizard lab: mysqld_safe logs to a file (the node has no syslog)
[mysqld_safe]
nice      = 0
skip-syslog
log-error = {log}
"""


def mariadb_pid(node: Node) -> int | None:
    """The running mariadbd's pid (from its pid file in the node), or None."""
    proc = node.run(f"p=$(cat {MARIADB_PIDFILE} 2>/dev/null) && kill -0 \"$p\" 2>/dev/null "
                    "&& echo \"$p\"")
    out = proc.stdout.strip()
    return int(out) if out.isdigit() else None


def stop_mariadb(node: Node, timeout: float = 60) -> None:
    """Stop the node's MariaDB: `mysqladmin shutdown`, else by pid (mysqld_safe first, or it
    restarts the server). Not `service mariadb stop`: its fallback is a machine-wide killall.
    """
    pid = mariadb_pid(node)
    if pid is None:
        return
    node.run("mysqladmin --defaults-file=/etc/mysql/debian.cnf shutdown", timeout=timeout)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        if state and state[0] == "Z":
            return
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        parent = Path(f"/proc/{ppid}/cmdline").read_bytes() if ppid > 1 else b""
        victims = ([str(ppid)] if b"mysqld_safe" in parent else []) + [str(pid)]
        node.run(["kill", "-KILL", *victims])


def start_mariadb(node: Node, datadir: Path | None = None) -> int:
    """A fresh MariaDB on the node (empty data dir, root by socket); returns mariadbd's pid."""
    datadir = Path(datadir) if datadir else node.root / "mariadb"
    logdir = node.root / "mariadb-log"  # mysqld_safe's helper writes it as mysql
    errlog = logdir / "error.log"
    stop_mariadb(node)
    node.write_file(MARIADB_CNF, mariadb_config(datadir))
    node.write_file(MARIADB_SAFE_CNF, _mariadb_safe_config(errlog))
    _fresh_dir(node, datadir, "mysql", "0700")
    _fresh_dir(node, logdir, "mysql", "0755")
    node.run(f"rm -f {MARIADB_PIDFILE} {MARIADB_SOCKET}")
    q = shlex.quote
    inst = node.run(f"mariadb-install-db --user=mysql --datadir={q(str(datadir))} "
                    "--skip-test-db --auth-root-authentication-method=socket", timeout=120)
    if inst.returncode != 0:
        raise ServiceError(f"[{node.name}] mariadb-install-db failed: "
                           f"{(inst.stdout + inst.stderr)[-3000:]}")
    start = node.run("service mariadb start", timeout=120)
    pid = mariadb_pid(node)
    if start.returncode != 0 or pid is None:
        raise ServiceError(f"[{node.name}] service mariadb start failed: "
                           f"{(start.stdout + start.stderr)[-2000:]}\n{_tail(errlog)}")
    return pid


def mysql(node: Node, sql: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run SQL as root over the node's socket (batch mode, tab-separated, no headers)."""
    return node.run(["mysql", "-N", "-B", "-e", sql], timeout=timeout)


# -- PostgreSQL -----------------------------------------------------------------------------
def postgres_pid(node: Node, datadir: Path | None = None) -> int | None:
    """The postmaster's pid (first line of postmaster.pid), if it runs."""
    datadir = Path(datadir) if datadir else node.root / "postgresql"
    q = shlex.quote
    proc = node.run(f"p=$(head -n1 {q(str(datadir / 'postmaster.pid'))} 2>/dev/null) && "
                    "kill -0 \"$p\" 2>/dev/null && echo \"$p\"")
    out = proc.stdout.strip()
    return int(out) if out.isdigit() else None


def stop_postgres(node: Node, datadir: Path | None = None) -> None:
    """Stop the node's cluster (`pg_ctlcluster 15 main stop -m fast`), by pid if that fails."""
    if postgres_pid(node, datadir) is None:
        return
    node.run(f"pg_ctlcluster {PG_VERSION} {PG_CLUSTER} stop -m fast", timeout=120)
    pid = postgres_pid(node, datadir)
    if pid is not None:
        node.run(["kill", "-KILL", str(pid)])


def start_postgres(node: Node, datadir: Path | None = None) -> int:
    """A fresh Debian cluster 15/main on the node; returns the postmaster's pid."""
    datadir = Path(datadir) if datadir else node.root / "postgresql"
    log = node.root / "postgresql.log"
    stop_postgres(node, datadir)
    # only the node's /etc overlay loses the cluster; the host's own cluster is untouched
    node.run(f"rm -rf {PG_CONF_DIR}", check=True)
    _fresh_dir(node, datadir, "postgres", "0700")
    log.unlink(missing_ok=True)
    q = shlex.quote
    create = node.run(
        f"pg_createcluster {PG_VERSION} {PG_CLUSTER} -d {q(str(datadir))} -l {q(str(log))} "
        "-p 5432 -o shared_buffers=16MB -o max_connections=50 "
        "-- --auth-local=peer --auth-host=scram-sha-256", timeout=120)
    if create.returncode != 0:
        raise ServiceError(f"[{node.name}] pg_createcluster failed: "
                           f"{(create.stdout + create.stderr)[-3000:]}")
    start = node.run("service postgresql start", timeout=120)
    pid = postgres_pid(node, datadir)
    if start.returncode != 0 or pid is None:
        raise ServiceError(f"[{node.name}] service postgresql start failed: "
                           f"{(start.stdout + start.stderr)[-2000:]}\n{_tail(log)}")
    return pid


def psql(node: Node, sql: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run SQL as the postgres superuser over the node's socket (unaligned, tuples only)."""
    return node.run(["su", "postgres", "-c", shlex.join(["psql", "-X", "-At", "-c", sql])],
                    timeout=timeout)


# -- OpenMeetings health/version REST stand-in -------------------------------------------------
def _wait_listening(node: Node, proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"[{node.name}] health responder exited {proc.returncode}")
        try:
            with socket.create_connection((node.address, port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"[{node.name}] health responder not listening on "
                               f"{node.address}:{port} after {timeout}s")
        time.sleep(0.05)


def start_health_responder(node: Node, port: int = 5080, healthy: bool = True,
                           version: str = "9.1.0", timeout: float = 15) -> int:
    """Serve OM's info/health and info/version on node.address:port; returns its pid."""
    # the script's text, not its path: a checkout under /home is hidden inside a node, whose
    # /home is its own
    argv = ["python3", "-c", HEALTH_SCRIPT.read_text(), "--bind", node.address,
            "--port", str(port), "--version", version]
    if not healthy:
        argv.append("--unhealthy")
    proc = node.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    _wait_listening(node, proc, port, timeout)
    return proc.pid


# -- the whole lab -----------------------------------------------------------------------------
def ensure_lab_services(lab, jars: list[Path] | None = None) -> bool:
    """Install the cluster-layer stand-in in every OM node and make it part of the pristine
    state (so Lab.reset() keeps it). Idempotent: False when it was already there.

    It resets the lab first (snapshot() takes the node's current files as pristine).
    """
    if all(hazelcast.standin_installed(n) for n in lab.nodes.values()):
        return False
    jars = hazelcast.visible_in_nodes(jars or hazelcast.ensure_hazelcast_jars(), lab.workdir)
    lab.reset()
    for node in lab.nodes.values():
        hazelcast.install_hazelcast_standin(node, jars)
        node.snapshot()
    return True
