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

import shlex

from omwizard.configs import persistence
from omwizard.configs.javaopts import SERIALIZATION_OPTS
from omwizard.engine.step import Finding, Step, StepContext
from omwizard.facts import database as dbsql
from omwizard.om.layout import OmLayout
from omwizard.plan.model import Database, Node
from omwizard.remote import dblogin
from omwizard.remote.results import RemoteError
from omwizard.sections._javaopts import add_java_opts, java_opts_status

H2_DOC = "Db other than H2 should be used"
REMOTE_USER_DOC = "user used to connect to DB should have remote access"
MYSQL_KINDS = ("mysql", "mariadb")


def _family(kind: str | None) -> str | None:
    return "mysql" if kind in MYSQL_KINDS else kind


def _om_only(ctx: StepContext, node: Node) -> str | None:
    return None if node.is_om else "not an OpenMeetings node (role om)"


# --------------------------------------------------------------------------- db-type


def judge_db_type(plan_type: str, kind: str | None, url: str | None) -> tuple[str, str, str]:
    """(status, detail, remedy) for a node's persistence.xml database kind."""
    if plan_type == "h2":
        return ("failed", f"the plan says H2: {H2_DOC}",
                "set database.type to mysql, mariadb or postgresql in the plan")
    if kind is None or url is None:
        return ("failed", "persistence.xml has no openjpa.ConnectionProperties Url",
                "re-run the OpenMeetings installer against the shared database")
    if kind in ("h2", "derby"):
        return ("failed", f"this node uses embedded {kind} ({url}): {H2_DOC}",
                f"{H2_DOC}: re-install OpenMeetings on this node against the shared "
                f"{plan_type} database (the installer writes persistence.xml), then run apply")
    if _family(kind) != _family(plan_type):
        return ("failed", f"this node uses {kind} ({url}), the plan says {plan_type}",
                f"re-install OpenMeetings against {plan_type}, or fix database.type in the plan")
    return ("ok", f"{kind} ({url})", "")


class DbTypeStep(Step):
    section = "database"
    name = "db-type"
    title = "A shared database, not H2"
    doc = f"{H2_DOC}. Every OpenMeetings node must use the same database server."

    applies = staticmethod(_om_only)  # type: ignore[assignment]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
        text = await ctx.read_text(node, path)
        if text is None:
            return Finding.failed(f"{path} does not exist",
                                  "install OpenMeetings on this node first")
        try:
            facts = persistence.inspect(text)
        except ValueError as exc:
            return Finding.failed(f"{path}: {exc}", "fix the file by hand, then check again")
        status, detail, remedy = judge_db_type(ctx.plan.database.type, facts.db_kind, facts.url)
        if status == "ok":
            return Finding.ok(detail, f"{path}: Url {facts.url}")
        return Finding.failed(detail, remedy, f"{path}: Url {facts.url}")


# --------------------------------------------------------------------------- remote-user


def restart_script(service: str) -> str:
    """Restart a DB service through systemd when it runs, else its SysV script."""
    s = shlex.quote(service)
    return (
        "s=$(systemctl is-system-running 2>/dev/null || true); "
        f'case "$s" in running|degraded|starting|maintenance) systemctl restart {s};; '
        f"*) service {s} restart;; esac"
    )


def mysql_client(db: Database) -> tuple[str | list[str], str]:
    """The command reading SQL on stdin, and what stdin must start with (admin password)."""
    if db.admin_user is None:
        return ["mysql", "-N", "-B"], ""
    pw = db.admin_password.value if db.admin_password else None
    script = (
        "umask 077; f=$(mktemp); trap 'rm -f \"$f\"' EXIT; IFS= read -r pw; "
        "{ echo '[client]'; printf 'password=\"%s\"\\n' "
        "\"$(printf '%s' \"$pw\" | sed 's/[\\\\\"]/\\\\&/g')\"; } > \"$f\"; "
        f"mysql --defaults-extra-file=\"$f\" -u {shlex.quote(db.admin_user)} -N -B"
    )
    return script, (pw or "") + "\n"


def psql_script(db: Database, args: str) -> str:
    """psql as the postgres superuser (socket, peer) or as admin_user (password via stdin)."""
    common = f"psql -X -At -F '\t' -v ON_ERROR_STOP=1 -p {int(db.port)} -d postgres {args}"
    if db.admin_user is None:
        return (
            "cd / && if command -v runuser >/dev/null 2>&1; then "
            f"runuser -u postgres -- {common}; else sudo -u postgres {common}; fi"
        )
    return (
        "cd / && umask 077; f=$(mktemp); trap 'rm -f \"$f\"' EXIT; IFS= read -r pw; "
        "printf '*:*:*:*:%s\\n' \"$(printf '%s' \"$pw\" | sed 's/[\\\\:]/\\\\&/g')\" > \"$f\"; "
        f"PGPASSFILE=\"$f\" {common} -h 127.0.0.1 -U {shlex.quote(db.admin_user)}"
    )


def _admin_prefix(db: Database) -> str:
    if db.admin_user is None:
        return ""
    return ((db.admin_password.value if db.admin_password else None) or "") + "\n"


def _undo(db: Database, argv: list[str]) -> list[str] | None:
    """Undo commands run without stdin: only possible with socket (root/postgres) access."""
    return argv if db.admin_user is None else None


def manual_undo(db: Database, what: str, sql: str) -> str:
    """What a change made with admin credentials leaves to the operator (rollback cannot:
    an undo command gets no stdin, so no admin password, and none is stored on a node)."""
    if db.admin_user is None:
        return ""
    return (f"{what} by hand: {sql} (as {db.admin_user}; rollback has no admin password "
            "and leaves this in place)")


def _mysql_undo(db: Database, sql: str) -> list[str] | None:
    return _undo(db, ["mysql", "-e", sql])


def _pg_undo(db: Database, sql: str) -> list[str] | None:
    return _undo(db, ["sh", "-c", psql_script(db, "-c " + shlex.quote(sql))])


def _know_admin_secret(ctx: StepContext, db: Database) -> None:
    """Mask the admin password wherever the run shows or saves text (whoever built ctx)."""
    if db.admin_user is not None and db.admin_password is not None:
        ctx.redact.add(db.admin_password.value)


MYSQL_CNF_PROBE = (
    "for f in /etc/my.cnf /etc/mysql/my.cnf /etc/mysql/mariadb.cnf /etc/mysql/conf.d/*.cnf "
    "/etc/mysql/mariadb.conf.d/*.cnf /etc/mysql/mysql.conf.d/*.cnf /etc/my.cnf.d/*.cnf; do "
    "[ -f \"$f\" ] && grep -qsE '^[[:space:]]*bind[-_]address' \"$f\" && echo \"$f\"; done; "
    "for f in /etc/mysql/mariadb.conf.d/50-server.cnf /etc/mysql/mysql.conf.d/mysqld.cnf; do "
    "[ -f \"$f\" ] && echo \"default:$f\"; done; true"
)


def pick_cnf(output: str) -> str | None:
    """The file whose bind-address wins (the last one read), else Debian's server file."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    found = [line for line in lines if not line.startswith("default:")]
    if found:
        return found[-1]
    defaults = [line.removeprefix("default:") for line in lines if line.startswith("default:")]
    return defaults[0] if defaults else None


class RemoteUserStep(Step):
    section = "database"
    name = "remote-user"
    title = "Database user for every OM node"
    doc = (
        f"Database should be accessible from all servers: the {REMOTE_USER_DOC}. omwizard "
        "creates the user and database on the database node and lets the server listen on "
        "the cluster address."
    )
    has_apply = True
    serial = True

    def applies(self, ctx: StepContext, node: Node) -> str | None:
        db = ctx.plan.database
        if not db.manage:
            return "database.manage is false: the user is managed outside omwizard"
        if ctx.plan.database_node is None or node.name != ctx.plan.database_node.name:
            return "not the database node (role database serving database.host)"
        if db.type not in (*MYSQL_KINDS, "postgresql"):
            return f"omwizard manages MariaDB/MySQL and PostgreSQL users, not {db.type}"
        return None

    def _hosts(self, ctx: StepContext) -> list[str]:
        return [n.address for n in ctx.plan.om_nodes]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        db = ctx.plan.database
        _know_admin_secret(ctx, db)
        if db.admin_user is not None and not _admin_prefix(db).strip("\n"):
            return Finding.failed(
                f"database.admin_user is {db.admin_user} but its password is empty",
                "export the variable database.admin_password names (e.g. "
                "OMW_DB_ADMIN_PASSWORD), or remove admin_user to use socket authentication")
        if db.type in MYSQL_KINDS:
            return await self._check_mysql(ctx, node, db)
        return await self._check_pg(ctx, node, db)

    async def _check_mysql(self, ctx: StepContext, node: Node, db: Database) -> Finding:
        cmd, prefix = mysql_client(db)
        result = await ctx.run(node, cmd, input=prefix + dbsql.mysql_probe_sql(db.user, db.name))
        if not result.ok:
            return Finding.failed(
                f"cannot query the MySQL/MariaDB server as admin: {result.output[-300:]}",
                "make sure the server runs; omwizard logs in as root over the socket "
                "(`mysql` as root), or set database.admin_user/admin_password",
                result.evidence())
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
        result = await ctx.run(node, psql_script(db, "-f -"),
                               input=_admin_prefix(db) + dbsql.pg_probe_sql(db.user, db.name))
        if not result.ok:
            return Finding.failed(
                f"cannot query PostgreSQL as admin: {result.output[-300:]}",
                "make sure the server runs; omwizard uses `runuser -u postgres -- psql` "
                "(peer auth), or set database.admin_user/admin_password",
                result.evidence())
        facts = dbsql.parse_pg_probe(result.stdout)
        hba = await ctx.read_text(node, facts.hba_file) if facts.hba_file else None
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
        probe = await ctx.run(node, cmd, input=prefix + dbsql.mysql_probe_sql(db.user, db.name))
        facts = dbsql.parse_mysql_probe(probe.stdout)
        decision = dbsql.mysql_decide(facts, self._hosts(ctx), node.address)
        argv = cmd if isinstance(cmd, list) else ["sh", "-c", cmd]
        password = db.password.value or ""
        if decision.create_db:
            drop = dbsql.mysql_drop_db_sql(db.name)
            await ctx.change_command(node, argv, _mysql_undo(db, drop),
                                     input=prefix + dbsql.mysql_create_db_sql(db.name),
                                     undo_text=manual_undo(db, "drop database", drop))
        for host in decision.create_users:
            drop = dbsql.mysql_drop_user_sql(db.user, host)
            await ctx.change_command(
                node, argv, _mysql_undo(db, drop),
                input=prefix + dbsql.mysql_create_user_sql(db.user, host, password, db.name),
                undo_text=manual_undo(db, "drop user", drop))
        for host in decision.grant_only:
            revoke = dbsql.mysql_revoke_sql(db.user, host, db.name)
            await ctx.change_command(
                node, argv, _mysql_undo(db, revoke),
                input=prefix + dbsql.mysql_grant_sql(db.user, host, db.name),
                undo_text=manual_undo(db, "revoke", revoke))
        if decision.bind:
            await self._mysql_bind(ctx, node, facts)

    async def _mysql_bind(self, ctx: StepContext, node: Node, facts: dbsql.MysqlFacts) -> None:
        found = await ctx.run(node, MYSQL_CNF_PROBE)
        cnf = pick_cnf(found.stdout)
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
        prefix = _admin_prefix(db)
        run_sql = ["sh", "-c", psql_script(db, "-f -")]
        probe = await ctx.run(node, run_sql[2],
                              input=prefix + dbsql.pg_probe_sql(db.user, db.name))
        facts = dbsql.parse_pg_probe(probe.stdout)
        hba = await ctx.read_text(node, facts.hba_file) if facts.hba_file else None
        decision = dbsql.pg_decide(facts, hba or "", db.user, db.name, self._hosts(ctx),
                                   node.address)
        password = db.password.value or ""
        if decision.create_role or decision.fix_password:
            drop = dbsql.pg_drop_role_sql(db.user)
            undo = _pg_undo(db, drop) if decision.create_role else None
            await ctx.change_command(
                node, run_sql, undo,
                input=prefix + dbsql.pg_role_sql(db.user, password, decision.create_role),
                undo_text=manual_undo(db, "drop role", drop) if decision.create_role else
                "nothing to undo (the old password is not known)")
        if decision.create_db:
            drop = dbsql.pg_drop_db_sql(db.name)
            await ctx.change_command(node, run_sql, _pg_undo(db, drop),
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


class PersistenceConnectionStep(Step):
    section = "database"
    name = "persistence-connection"
    title = "Same connection in every persistence.xml"
    doc = (
        "All OM nodes should use the same database: in "
        "webapps/openmeetings/WEB-INF/classes/META-INF/persistence.xml the Url, Username and "
        "Password of openjpa.ConnectionProperties point to the shared server."
    )
    has_apply = True
    applies = staticmethod(_om_only)  # type: ignore[assignment]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        if not ctx.plan.database.password.value:
            return Finding.failed("no database password in the plan",
                                  "export OMW_DB_PASSWORD (or the variable the plan names)")
        path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
        text = await ctx.read_text(node, path)
        if text is None:
            return Finding.failed(f"{path} does not exist", "install OpenMeetings first")
        try:
            found = persistence.problems(text, connection_settings(ctx))
        except ValueError as exc:
            return Finding.failed(f"{path}: {exc}", "fix the file by hand, then check again")
        if not found:
            db = ctx.plan.database
            return Finding.ok(f"{db.user}@{db.host}:{db.port}/{db.name}", f"{path}: as planned")
        return Finding.needs("; ".join(found), f"omwizard edits {path} (a backup is kept)",
                             f"{path}: " + "; ".join(found))

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
        settings = connection_settings(ctx)

        def transform(text: str | None) -> str | None:
            if text is None:
                return None
            return persistence.set_connection(text, settings)

        try:
            await ctx.edit_file(node, path, transform)
        except ValueError as exc:
            raise RemoteError(node.name, f"cannot edit {path}: {exc}",
                              "fix the file by hand, then run apply again") from exc


class RemoteCommitProviderStep(Step):
    section = "database"
    name = "remote-commit-provider"
    title = "OpenJPA remote commit provider"
    doc = (
        'Un-comment <property name="openjpa.RemoteCommitProvider" '
        'value="tcp(Addresses=127.0.0.1)" /> in persistence.xml (OpenMeetings fills in the '
        "cluster's addresses at run time; TCP 5636 must be open between the nodes)."
    )
    has_apply = True
    applies = staticmethod(_om_only)  # type: ignore[assignment]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
        text = await ctx.read_text(node, path)
        if text is None:
            return Finding.failed(f"{path} does not exist", "install OpenMeetings first")
        try:
            facts = persistence.inspect(text)
        except ValueError as exc:
            return Finding.failed(f"{path}: {exc}", "fix the file by hand, then check again")
        value = facts.remote_commit_value or ""
        if facts.remote_commit_provider_active and value.startswith("tcp"):
            return Finding.ok(f"openjpa.RemoteCommitProvider = {value}")
        seen = f"is {value}" if facts.remote_commit_provider_active else "is commented out"
        return Finding.needs(f"openjpa.RemoteCommitProvider {seen}",
                             f"omwizard activates {persistence.REMOTE_COMMIT_VALUE} in {path}")

    async def apply(self, ctx: StepContext, node: Node, finding: Finding) -> None:
        path = OmLayout(ctx.plan.cluster.om_home).persistence_xml
        try:
            await ctx.edit_file(
                node, path, lambda t: None if t is None else persistence.activate_remote_commit(t))
        except ValueError as exc:
            raise RemoteError(node.name, f"cannot edit {path}: {exc}",
                              "fix the file by hand, then run apply again") from exc


class SerializationStep(Step):
    section = "database"
    name = "openjpa-serialization"
    title = "OpenJPA serialization lists (CVE-2024-54676)"
    doc = (
        "Security (CVE-2024-54676): the remote commit provider deserializes what peers send; "
        "JAVA_OPTS must contain " + " ".join(SERIALIZATION_OPTS)
    )
    has_apply = True
    applies = staticmethod(_om_only)  # type: ignore[assignment]

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


def tcp_probe(host: str, port: int) -> str:
    target = shlex.quote(f"/dev/tcp/{host}/{int(port)}")
    return f"timeout 5 bash -c 'exec 3<>'{target} 2>&1"


class DbLoginStep(Step):
    section = "database"
    name = "db-login"
    title = "Each node logs in to the database"
    doc = (
        "Every OM node can log in to the database with the cluster's credentials from its "
        "own address (an SSH forward through the node and a real client login)."
    )
    applies = staticmethod(_om_only)  # type: ignore[assignment]

    async def check(self, ctx: StepContext, node: Node) -> Finding:
        db = ctx.plan.database
        if not db.password.value:
            return Finding.failed("no database password in the plan",
                                  "export OMW_DB_PASSWORD (or the variable the plan names)")
        where = f"{db.host}:{db.port}"
        probe = await ctx.run(node, tcp_probe(db.host, db.port), sudo=False, timeout=15)
        bad = dblogin.classify_path_probe(probe.exit_status, probe.output)
        if bad is not None:
            return Finding.failed(f"{where} from {node.address}: {bad.verdict}: {bad.detail}",
                                  LOGIN_REMEDIES[bad.verdict], probe.evidence(),
                                  verdict=bad.verdict)
        verdict = await dblogin.login_through(ctx.pool.get(node), db.type, db.host, db.port,
                                              db.user, db.password.value, db.name)
        line = f"login {db.user}@{where}/{db.name} from {node.address}: {verdict.verdict}"
        if verdict.ok:
            return Finding.ok(f"{verdict.detail} from {node.address}", line, verdict=dblogin.OK)
        return Finding.failed(f"{where} from {node.address}: {verdict.verdict}: {verdict.detail}",
                              LOGIN_REMEDIES[verdict.verdict], line, verdict=verdict.verdict)


STEPS: list[Step] = [
    DbTypeStep(),
    RemoteUserStep(),
    PersistenceConnectionStep(),
    RemoteCommitProviderStep(),
    SerializationStep(),
    DbLoginStep(),
]
