"""Database: every OM node uses one shared database, reachable and allowed from its address.

The documentation's words: "Db other than H2 should be used", "user used to connect to DB
should have remote access", the same connection on every node, and the TCP remote commit
provider active (so the nodes' JPA caches stay in step). Beyond it: the CVE-2024-54676
serialization lists in JAVA_OPTS, and a real login from each node's own address.

Secrets: the DB password only travels on stdin (SQL for mysql/psql), in persistence.xml
through ctx.edit_file (diffs redacted by the engine) and to the Python drivers in-process; it
is never in argv, so never in the journal (which records argv and undo argv only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from omwizard.configs import persistence
from omwizard.configs.javaopts import SERIALIZATION_OPTS
from omwizard.engine.schedule import Resource as R
from omwizard.engine.step import FAILED, NEEDS_CHANGE, Finding, Step, StepContext
from omwizard.facts import database as dbsql
from omwizard.facts.base import StepData
from omwizard.facts.database import (
    H2_DOC,
    MYSQL_KINDS,
    REMOTE_USER_DOC,
    LoginVerdict,
    LoginWaits,
    admin_prefix,
    judge_db_type,
    manual_undo,
    mysql_client,
    mysql_undo,
    pg_undo,
    pick_cnf,
    psql_script,
    restart_script,
)
from omwizard.facts.javaopts import JAVA_OPTS_FILES, SYSTEMD_RUNNING
from omwizard.facts.membership import DroppedAccount, recreate_account_sql
from omwizard.om.layout import OmLayout
from omwizard.plan.model import Database, Node, Plan
from omwizard.remote import dblogin
from omwizard.remote.results import RemoteError, RunResult
from omwizard.sections._javaopts import add_java_opts, java_opts_status

T = TypeVar("T")

# --------------------------------------------------------------------------- db-type


# -- each step's words, shown beside it (STEPS, at the end, gives each step its own) -------

DOC_DB_TYPE = f"{H2_DOC}. Every OpenMeetings node must use the same database server."

DOC_REMOTE_USER = (
    f"Database should be accessible from all servers: the {REMOTE_USER_DOC}. omwizard "
    "creates the user and database on the database node and lets the server listen on "
    "the cluster address."
)

DOC_PERSISTENCE_CONNECTION = (
    "All OM nodes should use the same database: in "
    "webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml the Url, Username and "
    "Password of openjpa.ConnectionProperties point to the shared server."
)

DOC_REMOTE_COMMIT_PROVIDER = (
    'Un-comment <property name="openjpa.RemoteCommitProvider" '
    'value="tcp(Addresses=127.0.0.1)" /> in persistence.xml (OpenMeetings fills in the '
    "cluster's addresses at run time; TCP 5636 must be open between the nodes)."
)

DOC_OPENJPA_SERIALIZATION = (
    "Security (CVE-2024-54676): the remote commit provider deserializes what peers send; "
    "JAVA_OPTS must contain " + " ".join(SERIALIZATION_OPTS)
)

DOC_DB_LOGIN = (
    "Every OM node can log in to the database with the cluster's credentials from its "
    "own address (an SSH forward through the node and a real client login)."
)


class DatabaseStep(Step):
    """The database section's steps."""

    section = "database"


class DbTypeStep(DatabaseStep):
    reads = frozenset({R.PERSISTENCE})
    only_om = True
    files = (dbsql.PERSISTENCE_XML,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        read = await read_persistence(ctx, node, persistence.inspect,
                                      missing="install OpenMeetings on this node first")
        if isinstance(read, Finding):
            return read
        path, facts = read
        status, detail, remedy = judge_db_type(ctx.plan.database.type, facts.db_kind, facts.url)
        if status == "ok":
            return Finding.ok(detail, f"{path}: Url {facts.url}")
        return Finding.failed(detail, remedy, f"{path}: Url {facts.url}")


# --------------------------------------------------------------------------- remote-user


def _know_admin_secret(ctx: StepContext, db: Database) -> None:
    """Mask the admin password wherever the run shows or saves text (whoever built ctx)."""
    if db.admin_user is not None and db.admin_password is not None:
        ctx.redact.add(db.admin_password.value)


def managed(plan: Plan, _node: Node) -> str | None:
    if not plan.database.manage:
        return "database.manage is false: the user is managed outside omwizard"
    return None


def database_node(plan: Plan, node: Node) -> str | None:
    if plan.database_node is None or node.name != plan.database_node.name:
        return "not the database node (role database serving database.host)"
    return None


def managed_kind(plan: Plan, _node: Node) -> str | None:
    if plan.database.type not in (*MYSQL_KINDS, "postgresql"):
        return f"omwizard manages MariaDB/MySQL and PostgreSQL users, not {plan.database.type}"
    return None


# ctx.shared: the admin probe's output (and pg_hba.conf's text) remote-user's check read on a
# node in this run, which its apply decides from (the apply follows that check at once)
REMOTE_USER_PROBE = "database.remote-user-probe"


def _probed(ctx: StepContext) -> dict[str, tuple[str, str | None] | None]:
    probed: dict[str, tuple[str, str | None] | None] = ctx.shared.setdefault(
        REMOTE_USER_PROBE, {})
    return probed


async def _admin_probe(ctx: StepContext, node: Node, db: Database, command: str | list[str],
                       stdin: str) -> RunResult:
    """remote-user's admin probe, either kind: the declared fact (ADMIN_PROBE, read with the
    node's other facts) when no admin password is set, else `command` run with the admin
    password and the probe's SQL on `stdin` (never argv)."""
    fact = await ctx.fact(node, dbsql.ADMIN_PROBE)
    if fact.status is not None:
        return RunResult(dbsql.admin_probe_command(db), fact.status, fact.output, "")
    return await ctx.run(node, command, input=stdin)


def _cannot_query(result: RunResult, server: str, login: str) -> Finding:
    """remote-user's check when the admin probe failed (`login`: how omwizard logs in)."""
    return Finding.failed(
        f"cannot query {server} as admin: {result.output[-300:]}",
        f"make sure the server runs; omwizard {login}, or set "
        "database.admin_user/admin_password", result.evidence())


# ctx.shared: database nodes whose remote-user check in THIS run found needs-change (the
# latest check wins, so the re-check after apply clears it): db-login waits on them
REMOTE_USER_PENDING = "database.remote-user-pending"
REMOTE_USER = "database.remote-user"


class RemoteUserStep(DatabaseStep):
    reads = frozenset({R.DB_SERVER})
    writes = frozenset({R.DB_SERVER})
    serial = True
    skip_when = (managed, database_node, managed_kind)
    # the admin probe (without an admin password), MySQL's server config files and their
    # usual paths are read with the node's other facts; the batch that changes them reads
    # them back, so neither this check nor its re-check sends a read of its own
    facts = (dbsql.ADMIN_PROBE, dbsql.MYSQL_CNF)
    files = (dbsql.MYSQL_CNF_FILES,)

    def _hosts(self, ctx: StepContext) -> list[str]:
        return [n.address for n in ctx.plan.om_nodes]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        finding = await self._check(ctx, node)
        pending: set[str] = ctx.shared.setdefault(REMOTE_USER_PENDING, set())
        if finding.status == NEEDS_CHANGE:
            pending.add(node.name)
        else:
            pending.discard(node.name)
        return finding

    async def _check(self, ctx: StepContext, node: Node) -> Finding:
        db = ctx.plan.database
        _know_admin_secret(ctx, db)
        if db.admin_user is not None and not admin_prefix(db).strip("\n"):
            return Finding.failed(
                f"database.admin_user is {db.admin_user} but its password is empty",
                "export the variable database.admin_password names (e.g. "
                "OMW_DB_ADMIN_PASSWORD), or remove admin_user to use socket authentication")
        if db.type in MYSQL_KINDS:
            return await self._check_mysql(ctx, node, db)
        return await self._check_pg(ctx, node, db)

    async def _mysql_probe(self, ctx: StepContext, node: Node, db: Database) -> RunResult:
        """The admin probe as root over the socket, or as admin_user (_admin_probe)."""
        cmd, prefix = mysql_client(db)
        return await _admin_probe(ctx, node, db, cmd,
                                  prefix + dbsql.mysql_probe_sql(db.user, db.name))

    async def _check_mysql(self, ctx: StepContext, node: Node, db: Database) -> Finding:
        result = await self._mysql_probe(ctx, node, db)
        _probed(ctx)[node.name] = (result.stdout, None) if result.ok else None
        if not result.ok:
            return _cannot_query(result, "the MySQL/MariaDB server", "logs in as root over "
                                 "the socket (`mysql` as root)")
        facts = dbsql.parse_mysql_probe(result.stdout)
        decision = dbsql.mysql_decide(facts, self._hosts(ctx), node.address)
        problems = dbsql.mysql_problems(facts, decision, db.user, db.name, node.address)
        if decision.empty:
            return Finding.ok(
                f"'{db.user}'@{{{', '.join(self._hosts(ctx))}}} with ALL on {db.name}.*; "
                f"listening on {facts.bind or 'all addresses'}", result.evidence())
        return Finding.needs("; ".join(problems),
                             "omwizard creates what is missing (and restarts the server "
                             "only if bind-address changes)", result.evidence())

    async def _check_pg(self, ctx: StepContext, node: Node, db: Database) -> Finding:
        # one read: the probe, then the pg_hba.conf it names (dbsql.with_hba)
        both = await _admin_probe(ctx, node, db, dbsql.with_hba(psql_script(db, "-f -")),
                                  admin_prefix(db) + dbsql.pg_probe_sql(db.user, db.name))
        probe_out, hba = dbsql.split_hba(both.stdout)
        result = RunResult(psql_script(db, "-f -"), both.exit_status, probe_out, both.stderr)
        _probed(ctx)[node.name] = (probe_out, hba) if result.ok else None
        if not result.ok:
            return _cannot_query(result, "PostgreSQL",
                                 "uses `runuser -u postgres -- psql` (peer auth)")
        facts = dbsql.parse_pg_probe(result.stdout)
        decision = dbsql.pg_decide(facts, hba or "", db.user, db.name, self._hosts(ctx),
                                   node.address)
        problems = dbsql.pg_problems(facts, decision, db.user, db.name, node.address)
        if decision.empty:
            return Finding.ok(
                f"role {db.user} owns {db.name}; listen_addresses '{facts.listen}'; "
                f"pg_hba.conf admits {', '.join(self._hosts(ctx))}",
                result.evidence(), *(["; ".join(problems)] if problems else []))
        return Finding.needs("; ".join(problems),
                             "omwizard creates what is missing (reload for pg_hba.conf, "
                             "restart only if listen_addresses changes)", result.evidence())

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        db = ctx.plan.database
        if not db.password.value:
            raise RemoteError(node.name, "no database password to give the user",
                              "set database.password (e.g. ${OMW_DB_PASSWORD})")
        _know_admin_secret(ctx, db)
        if db.type in MYSQL_KINDS:
            await self._apply_mysql(ctx, node, db)
        else:
            await self._apply_pg(ctx, node, db)

    async def _apply_mysql(self, ctx: StepContext, node: Node, db: Database) -> None:
        cmd, prefix = mysql_client(db)
        seen = _probed(ctx).get(node.name)  # what this run's check just read (no read again)
        if seen is None:
            seen = ((await self._mysql_probe(ctx, node, db)).stdout, None)
        facts = dbsql.parse_mysql_probe(seen[0])
        decision = dbsql.mysql_decide(facts, self._hosts(ctx), node.address)
        # a declared fact, read with the node's others (the chosen file's text too, when it
        # is at one of the usual paths: the edit below reads no file of its own then)
        cnf_found = None
        if decision.bind:
            cnf_found = await ctx.fact(node, dbsql.MYSQL_CNF)
        argv = cmd if isinstance(cmd, list) else ["sh", "-c", cmd]
        password = db.password.value or ""
        if decision.create_db:
            drop = dbsql.mysql_drop_db_sql(db.name)
            await ctx.change_command(node, argv, mysql_undo(db, drop),
                                     input=prefix + dbsql.mysql_create_db_sql(db.name),
                                     undo_text=manual_undo(db, "drop database", drop))
        for host in decision.create_users:
            drop = dbsql.mysql_drop_user_sql(db.user, host)
            await ctx.change_command(
                node, argv, mysql_undo(db, drop),
                input=prefix + dbsql.mysql_create_user_sql(db.user, host, password, db.name),
                undo_text=manual_undo(db, "drop user", drop))
        for host in decision.grant_only:
            revoke = dbsql.mysql_revoke_sql(db.user, host, db.name)
            await ctx.change_command(
                node, argv, mysql_undo(db, revoke),
                input=prefix + dbsql.mysql_grant_sql(db.user, host, db.name),
                undo_text=manual_undo(db, "revoke", revoke))
        if cnf_found is not None:
            await self._mysql_bind(ctx, node, facts, cnf_found)

    async def undo(self, ctx: StepContext, node: Node, data: StepData) -> str | None:
        """A MySQL/MariaDB account remove-node dropped (sections/_departure.py), created again
        with its grant when the plan's database password is known now (stdin only); without
        it, None: the record's words say how to re-create it."""
        db = ctx.plan.database
        if (not isinstance(data, DroppedAccount) or db.type not in MYSQL_KINDS
                or not db.password.value
                or (db.admin_user is not None and not admin_prefix(db).strip("\n"))):
            return None
        _know_admin_secret(ctx, db)
        cmd, prefix = mysql_client(db)
        result = await ctx.run(node, cmd, input=prefix + recreate_account_sql(
            data, db.password.value))
        if not result.ok:
            raise RemoteError(node.name, f"re-creating {data.account} failed: "
                              f"{ctx.redact(result.output)[-300:]}",
                              "make sure the server runs, then run rollback again")
        grant = f" with ALL on {data.database}.*" if data.all_on_database else ""
        return f"{data.account} created again{grant}"

    async def _mysql_bind(self, ctx: StepContext, node: Node, facts: dbsql.MysqlFacts,
                          found: str) -> None:
        cnf = pick_cnf(found)
        if cnf is None:
            raise RemoteError(node.name, "no MySQL/MariaDB server config file found",
                              f"set bind-address = {node.address} in the server's [mysqld] "
                              "section by hand and restart it")
        value = dbsql.new_listen_value(
            "" if facts.bind in ("0.0.0.0", "*", "::") else facts.bind,
            node.address, dbsql.bind_list_supported(facts.version))
        service = "mariadb" if "mariadb" in facts.version.lower() else "mysql"
        restart = ["sh", "-c", restart_script(service)]
        # Journaled before the edit: rollback (newest first) restarts after restoring the file.
        await ctx.change_command(node, ["true"], restart)
        changed = await ctx.edit_file(node, cnf, lambda t: dbsql.set_bind_address(t, value))
        await ctx.change_command(node, restart, None, timeout=180,
                                 remedy=f"look at the server's error log; {cnf} was edited"
                                 if changed else "")

    async def _apply_pg(self, ctx: StepContext, node: Node, db: Database) -> None:
        prefix = admin_prefix(db)
        run_sql = ["sh", "-c", psql_script(db, "-f -")]
        seen = _probed(ctx).get(node.name)  # what this run's check just read (no read again)
        if seen is not None:
            facts = dbsql.parse_pg_probe(seen[0])
            hba = seen[1]
        else:
            probe = await ctx.run(node, run_sql[2],
                                  input=prefix + dbsql.pg_probe_sql(db.user, db.name))
            facts = dbsql.parse_pg_probe(probe.stdout)
            hba = await ctx.read_text(node, facts.hba_file) if facts.hba_file else None
        decision = dbsql.pg_decide(facts, hba or "", db.user, db.name, self._hosts(ctx),
                                   node.address)
        password = db.password.value or ""
        if decision.create_role or decision.fix_password:
            drop = dbsql.pg_drop_role_sql(db.user)
            undo = pg_undo(db, drop) if decision.create_role else None
            await ctx.change_command(
                node, run_sql, undo,
                input=prefix + dbsql.pg_role_sql(db.user, password, decision.create_role),
                undo_text=manual_undo(db, "drop role", drop) if decision.create_role else
                "nothing to undo (the old password is not known)")
        if decision.create_db:
            drop = dbsql.pg_drop_db_sql(db.name)
            await ctx.change_command(node, run_sql, pg_undo(db, drop),
                                     input=prefix + dbsql.pg_create_db_sql(db.user, db.name),
                                     undo_text=manual_undo(db, "drop database", drop))
        if not (decision.listen or decision.hba):
            return
        if decision.listen:
            activate = ["sh", "-c", restart_script("postgresql")]
        else:
            activate = ["sh", "-c", psql_script(db, "-c 'SELECT pg_reload_conf()'")]
        if db.admin_user is None or decision.listen:  # a reload by SQL needs the password
            await ctx.change_command(node, ["true"], activate)  # rollback re-activates last
        if decision.hba:
            await ctx.edit_file(node, facts.hba_file, lambda t: dbsql.hba_with_lines(
                t, db.name, db.user, decision.hba))
        if decision.listen:
            value = dbsql.new_listen_value(facts.listen, node.address)
            await ctx.edit_file(node, facts.config_file,
                                lambda t: dbsql.set_listen_addresses(t, value))
        await ctx.change_command(node, activate, None, timeout=180,
                                 input=prefix if decision.hba and not decision.listen else None)


# --------------------------------------------------------------------------- persistence.xml


def connection_settings(ctx: StepContext) -> persistence.ConnectionSettings:
    db = ctx.plan.database
    return persistence.ConnectionSettings(
        db_type=db.type, host=db.host, port=db.port, database=db.name, user=db.user,
        password=db.password.value or "",
        timezone=ctx.plan.cluster.timezone if db.type in MYSQL_KINDS else None,
    )


async def read_persistence(ctx: StepContext, node: Node, parse: Callable[[str], T], *,
                           missing: str = "install OpenMeetings first") -> tuple[str, T] | Finding:
    """(path, parse(text)) of the node's persistence.xml, or the failed finding that says why
    it cannot be read (absent, or XML that does not parse)."""
    path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
    text = await ctx.read_text(node, path)
    if text is None:
        return Finding.failed(f"{path} does not exist", missing)
    try:
        return path, parse(text)
    except ValueError as exc:
        return Finding.failed(f"{path}: {exc}", "fix the file by hand, then check again")


async def edit_persistence(ctx: StepContext, node: Node, edit: Callable[[str], str]) -> None:
    """One journaled edit of the node's persistence.xml (a missing file is left missing)."""
    path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
    try:
        await ctx.edit_file(node, path, lambda text: None if text is None else edit(text))
    except ValueError as exc:
        raise RemoteError(node.name, f"cannot edit {path}: {exc}",
                          "fix the file by hand, then run apply again") from exc


class PersistenceConnectionStep(DatabaseStep):
    reads = frozenset({R.PERSISTENCE})
    writes = frozenset({R.PERSISTENCE})
    only_om = True
    files = (dbsql.PERSISTENCE_XML,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        if not ctx.plan.database.password.value:
            return Finding.failed("no database password in the plan",
                                  "export OMW_DB_PASSWORD (or the variable the plan names)")
        settings = connection_settings(ctx)
        read = await read_persistence(ctx, node, lambda t: persistence.problems(t, settings))
        if isinstance(read, Finding):
            return read
        path, found = read
        if not found:
            db = ctx.plan.database
            return Finding.ok(f"{db.user}@{db.host}:{db.port}/{db.name}", f"{path}: as planned")
        return Finding.needs("; ".join(found), f"omwizard edits {path} (a backup is kept)",
                             f"{path}: " + "; ".join(found))

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        settings = connection_settings(ctx)
        await edit_persistence(ctx, node, lambda text: persistence.set_connection(text, settings))


class RemoteCommitProviderStep(DatabaseStep):
    reads = frozenset({R.PERSISTENCE})
    writes = frozenset({R.PERSISTENCE})
    only_om = True
    files = (dbsql.PERSISTENCE_XML,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        read = await read_persistence(ctx, node, persistence.inspect)
        if isinstance(read, Finding):
            return read
        path, facts = read
        value = facts.remote_commit_value or ""
        if facts.remote_commit_provider_active and value.startswith("tcp"):
            return Finding.ok(f"openjpa.RemoteCommitProvider = {value}")
        seen = f"is {value}" if facts.remote_commit_provider_active else "is commented out"
        return Finding.needs(f"openjpa.RemoteCommitProvider {seen}",
                             f"omwizard activates {persistence.REMOTE_COMMIT_VALUE} in {path}")

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        await edit_persistence(ctx, node, persistence.activate_remote_commit)


class SerializationStep(DatabaseStep):
    reads = frozenset({R.JAVA_OPTS, R.OM_PROCESS})
    writes = frozenset({R.JAVA_OPTS})
    only_om = True
    facts = (SYSTEMD_RUNNING,)
    files = (JAVA_OPTS_FILES,)

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        return await java_opts_status(ctx, node, list(SERIALIZATION_OPTS))

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        try:
            await add_java_opts(ctx, node, list(SERIALIZATION_OPTS))
        except ValueError as exc:
            raise RemoteError(node.name, f"cannot write JAVA_OPTS: {exc}",
                              "add the options by hand where JAVA_OPTS are set") from exc


# --------------------------------------------------------------------------- db-login


LOGIN_REMEDIES = {
    dblogin.UNREACHABLE: "check routes and firewalls between this node and the database host",
    dblogin.REFUSED: "make the server listen on the cluster address (bind-address / "
                     "listen_addresses) and check its port: run apply for database.remote-user",
    dblogin.BAD_CREDENTIALS: "create the user for this node's address with the plan's password "
                             "(database.remote-user), or fix database.password",
    dblogin.NO_DATABASE: "create the database (database.remote-user) or fix database.name",
    dblogin.ERROR: "read the error; fix the server, then check again",
}


# the login failures remote-user's apply cures (listen address, user and grants, database)
REMOTE_USER_FIXES = frozenset({dblogin.REFUSED, dblogin.BAD_CREDENTIALS, dblogin.NO_DATABASE})


class DbLoginStep(DatabaseStep):
    reads = frozenset({R.DB_SERVER, R.PERSISTENCE, R.FIREWALL, R.LINKS, R.ROUTE})
    only_om = True

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        finding = await self._check(ctx, node)
        if finding.status == FAILED and isinstance(finding.data, LoginVerdict):
            await ctx.checked(REMOTE_USER)  # a check runs the two at once: its verdict first
        if (finding.status == FAILED and isinstance(finding.data, LoginVerdict)
                and finding.data.verdict in REMOTE_USER_FIXES
                and ctx.shared.get(REMOTE_USER_PENDING)):
            # not a fault yet: this run's remote-user check found the user still to create
            return Finding.needs(
                f"{finding.detail} (expected: {REMOTE_USER} is not applied yet)",
                f"apply {REMOTE_USER} first; this login works once it is",
                *finding.evidence, data=LoginWaits(finding.data.verdict))
        return finding

    async def _check(self, ctx: StepContext, node: Node) -> Finding:
        db = ctx.plan.database
        if not db.password.value:
            return Finding.failed("no database password in the plan",
                                  "export OMW_DB_PASSWORD (or the variable the plan names)")
        where = f"{db.host}:{db.port}"
        # one tunnel through the node: a refused or unanswered connect is its verdict
        verdict = await dblogin.login_through(ctx.pool.get(node), db.type, db.host, db.port,
                                              db.user, db.password.value, db.name)
        line = f"login {db.user}@{where}/{db.name} from {node.address}: {verdict.verdict}"
        if verdict.ok:
            return Finding.ok(f"{verdict.detail} from {node.address}", line,
                              data=LoginVerdict(dblogin.OK))
        return Finding.failed(f"{where} from {node.address}: {verdict.verdict}: {verdict.detail}",
                              LOGIN_REMEDIES[verdict.verdict], line,
                              data=LoginVerdict(verdict.verdict))


STEPS: list[Step] = [
    DbTypeStep("db-type", "A shared database, not H2", DOC_DB_TYPE),
    RemoteUserStep("remote-user", "Database user for every OM node", DOC_REMOTE_USER),
    PersistenceConnectionStep(
        "persistence-connection", "Same connection in every persistence.xml",
        DOC_PERSISTENCE_CONNECTION,
    ),
    RemoteCommitProviderStep(
        "remote-commit-provider", "OpenJPA remote commit provider",
        DOC_REMOTE_COMMIT_PROVIDER,
    ),
    SerializationStep(
        "openjpa-serialization", "OpenJPA serialization lists (CVE-2024-54676)",
        DOC_OPENJPA_SERIALIZATION,
    ),
    DbLoginStep("db-login", "Each node logs in to the database", DOC_DB_LOGIN),
]
