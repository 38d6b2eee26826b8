"""SQL text and config transforms for the database section's remote-user step. Pure, no I/O.

Why a module of its own: everything the step decides (which users, grants, pg_hba lines and
listen settings are missing) is a function of what the database server reported, so it is
tested on data without a server, and every SQL string built for a shell comes from here,
where identifiers are validated and literals escaped in one place.

Identifiers (user and database names) are restricted by the plan loader to [A-Za-z0-9_]; they
are checked again here because they are pasted into SQL. Passwords only ever appear in SQL
text that is sent on stdin, never in argv (see omwizard.sections.database).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omwizard.facts.base import Fact, Files, StepData
from omwizard.om.layout import OmLayout

if TYPE_CHECKING:
    from omwizard.plan.model import Database, Node, Plan

_IDENT = re.compile(r"^[A-Za-z0-9_]{1,63}$")
ALL_ADDRESSES = {"", "*", "0.0.0.0", "::", "null"}
_MYSQL_PRIVS = ("Select", "Insert", "Update", "Delete", "Create", "Drop", "Alter", "Index")
GOOD_HBA_METHODS = ("scram-sha-256", "md5")
_CNF_SERVER_SECTION = re.compile(r"^(mysqld|mariadb|server)(-[0-9.]+)?$")
_CNF_BIND = re.compile(r"^(\s*)bind[-_]address(\s*=\s*)(.*?)(\s*)$")


def ident(name: str) -> str:
    """A user or database name fit to paste into SQL; anything else is refused."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a safe SQL identifier ([A-Za-z0-9_], 1-63 chars)")
    return name


def host_literal(address: str) -> str:
    """An IPv4 address for a MySQL account host ('om'@'198.18.0.11')."""
    return str(ipaddress.IPv4Address(address))


def mysql_string(value: str) -> str:
    """A MySQL string literal; the session sets sql_mode='' so backslash escaping holds."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------- MySQL / MariaDB


def mysql_probe_sql(user: str, database: str) -> str:
    """One batch (mysql -N -B) whose rows tell users, database, grants and listen settings."""
    u, d = ident(user), ident(database)
    privs = " AND ".join(f"{p}_priv='Y'" for p in _MYSQL_PRIVS)
    return (
        f"SELECT 'user', Host FROM mysql.user WHERE User='{u}';\n"
        f"SELECT 'db', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{d}';\n"
        f"SELECT 'grant', Host FROM mysql.db WHERE User='{u}' AND Db='{d}' AND {privs};\n"
        "SELECT 'bind', IFNULL(@@bind_address, '');\n"
        "SELECT 'skip_networking', @@skip_networking;\n"
        "SELECT 'version', VERSION();\n"
    )


@dataclass
class MysqlFacts:
    users: set[str] = field(default_factory=set)  # account hosts of the user
    db_exists: bool = False
    granted: set[str] = field(default_factory=set)  # hosts with all rights on the database
    bind: str = ""
    skip_networking: bool = False
    version: str = ""


def parse_mysql_probe(output: str) -> MysqlFacts:
    facts = MysqlFacts()
    for line in output.splitlines():
        tag, _, value = line.partition("\t")
        value = value.strip()
        if tag == "user":
            facts.users.add(value)
        elif tag == "db":
            facts.db_exists = True
        elif tag == "grant":
            facts.granted.add(value)
        elif tag == "bind":
            facts.bind = value
        elif tag == "skip_networking":
            facts.skip_networking = value in ("1", "ON")
        elif tag == "version":
            facts.version = value
    return facts


def listens_on(setting: str, address: str) -> bool:
    """Does a bind-address / listen_addresses value cover this address?"""
    parts = [p.strip().strip("'\"") for p in setting.split(",")]
    if not parts or any(p.lower() in ALL_ADDRESSES for p in parts):
        return True
    return address in parts


def bind_list_supported(version: str) -> bool:
    """MariaDB >= 10.11 and MySQL >= 8.0.13 accept a comma list in bind-address."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3]]
    numbers += [0] * (3 - len(numbers))
    if "mariadb" in version.lower():
        return tuple(numbers[:2]) >= (10, 11)
    return tuple(numbers) >= (8, 0, 13)


def new_listen_value(current: str, address: str, list_ok: bool = True) -> str:
    """The listen setting that adds the cluster address and keeps what was there."""
    parts = [p.strip() for p in current.split(",") if p.strip()]
    if not list_ok or not parts:
        return address
    return ",".join(parts + [address])


@dataclass
class MysqlPlan:
    """What remote-user must do on MariaDB/MySQL (each host separately, for its own undo)."""

    create_db: bool
    create_users: list[str]
    grant_only: list[str]
    bind: bool

    @property
    def empty(self) -> bool:
        return not (self.create_db or self.create_users or self.grant_only or self.bind)


def mysql_host_matches(pattern: str, address: str) -> bool:
    """Whether a MySQL account host ('198.18.0.%', '%', '10.0.0.0/255.255.255.0') admits
    an IPv4 address, as the server matches it (% any run, _ one character, ip/netmask)."""
    if "/" in pattern:
        try:
            net = ipaddress.IPv4Network(pattern, strict=False)
            return ipaddress.IPv4Address(address) in net
        except ValueError:
            return False
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, address, re.IGNORECASE) is not None


def mysql_account_for(address: str, accounts: set[str]) -> str | None:
    """The account host the server picks for a client at address: its own, else the most
    specific pattern that matches (fewest wildcards, then longest), else None."""
    if address in accounts:
        return address
    matching = [a for a in accounts if a != address and mysql_host_matches(a, address)]
    if not matching:
        return None
    return min(matching, key=lambda a: (a.count("%") + a.count("_"), -len(a), a))


def mysql_decide(facts: MysqlFacts, hosts: list[str], db_address: str) -> MysqlPlan:
    """A node is served by its own account or by a pattern account an operator made (e.g.
    'om'@'10.1.1.%'); a pattern account without the rights gets the node its own account
    (created with the grant) rather than a change to the operator's account."""
    def served(h: str) -> bool:
        account = mysql_account_for(h, facts.users)
        return account is not None and (account == h or account in facts.granted)

    missing_users = [h for h in hosts if not served(h)]
    return MysqlPlan(
        create_db=not facts.db_exists,
        create_users=[h for h in missing_users if h not in facts.users],
        grant_only=[h for h in hosts if h in facts.users and h not in facts.granted],
        bind=facts.skip_networking or not listens_on(facts.bind, db_address),
    )


def mysql_problems(facts: MysqlFacts, plan: MysqlPlan, user: str, database: str,
                   db_address: str) -> list[str]:
    out = []
    if plan.create_db:
        out.append(f"database {database} does not exist")
    out += [f"no user '{user}'@'{h}'" for h in plan.create_users]
    out += [f"'{user}'@'{h}' lacks ALL on {database}.*" for h in plan.grant_only]
    if facts.skip_networking:
        out.append("the server runs with skip-networking")
    elif plan.bind:
        out.append(f"the server listens on {facts.bind or '?'}, not on {db_address}")
    return out


def mysql_create_db_sql(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{ident(database)}`;\n"


def mysql_create_user_sql(user: str, host: str, password: str, database: str) -> str:
    """CREATE USER IF NOT EXISTS + GRANT ALL: holds the password, so it goes on stdin only."""
    account = f"'{ident(user)}'@'{host_literal(host)}'"
    return (
        "SET SESSION sql_mode = '';\n"
        f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {mysql_string(password)};\n"
        f"GRANT ALL ON `{ident(database)}`.* TO {account};\n"
    )


def mysql_grant_sql(user: str, host: str, database: str) -> str:
    return f"GRANT ALL ON `{ident(database)}`.* TO '{ident(user)}'@'{host_literal(host)}';\n"


def mysql_drop_user_sql(user: str, host: str) -> str:
    return f"DROP USER IF EXISTS '{ident(user)}'@'{host_literal(host)}'"


def mysql_revoke_sql(user: str, host: str, database: str) -> str:
    return f"REVOKE ALL ON `{ident(database)}`.* FROM '{ident(user)}'@'{host_literal(host)}'"


def mysql_drop_db_sql(database: str) -> str:
    return f"DROP DATABASE IF EXISTS `{ident(database)}`"


def set_bind_address(text: str | None, value: str) -> str:
    """my.cnf with bind-address = value in its server section(s); the rest kept byte for byte.

    Every active bind-address line in a server section ([mysqld], [mariadb], [server],
    [mysqld-8.0], ...) gets the value; with none, the line goes right after [mysqld] (created
    at the end when missing).
    """
    lines = (text or "").splitlines(keepends=True)
    section = None
    changed = False
    mysqld_at = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
            if section == "mysqld" and mysqld_at is None:
                mysqld_at = i
            continue
        if section is None or not _CNF_SERVER_SECTION.match(section):
            continue
        body = line.rstrip("\r\n")
        match = _CNF_BIND.match(body)
        if match:
            newline = line[len(body):]
            lines[i] = f"{match.group(1)}bind-address{match.group(2)}{value}{newline}"
            changed = True
    if not changed:
        new = f"bind-address            = {value}\n"
        if mysqld_at is None:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["\n", "[mysqld]\n", new]
        else:
            lines.insert(mysqld_at + 1, new)
    return "".join(lines)


# --------------------------------------------------------------------------- PostgreSQL


def pg_probe_sql(user: str, database: str) -> str:
    """One psql batch (-At, tab separated) telling files, listen, role, database."""
    u, d = ident(user), ident(database)
    return (
        "SELECT 'config', current_setting('config_file');\n"
        "SELECT 'hba', current_setting('hba_file');\n"
        "SELECT 'listen', current_setting('listen_addresses');\n"
        f"SELECT 'role', rolcanlogin, coalesce(rolpassword LIKE 'SCRAM-SHA-256$%', false) "
        f"FROM pg_authid WHERE rolname = '{u}';\n"
        f"SELECT 'db', pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{d}';\n"
    )


@dataclass
class PgFacts:
    config_file: str = ""
    hba_file: str = ""
    listen: str = ""
    role_exists: bool = False
    role_login: bool = False
    role_scram: bool = False
    db_owner: str | None = None


def parse_pg_probe(output: str) -> PgFacts:
    facts = PgFacts()
    for line in output.splitlines():
        fields = line.split("\t")
        tag = fields[0]
        if tag == "config" and len(fields) > 1:
            facts.config_file = fields[1]
        elif tag == "hba" and len(fields) > 1:
            facts.hba_file = fields[1]
        elif tag == "listen" and len(fields) > 1:
            facts.listen = fields[1]
        elif tag == "role" and len(fields) > 2:
            facts.role_exists = True
            facts.role_login = fields[1] == "t"
            facts.role_scram = fields[2] == "t"
        elif tag == "db" and len(fields) > 1:
            facts.db_owner = fields[1]
    return facts


def _hba_field_matches(value: str, wanted: str) -> bool:
    return any(v in ("all", wanted) for v in value.split(","))


def _hba_address_matches(value: str, address: str) -> bool:
    if value in ("all", "samenet", "samehost"):
        return value == "all"
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False


def hba_first_match(text: str, database: str, user: str, address: str) -> tuple[str, str] | None:
    """The first pg_hba rule a TCP login from address would hit: (line, method), or None.

    PostgreSQL uses the first matching line; a later good line behind a `reject` does not
    help. Address-and-mask forms and include directives are not followed (reported as is).
    """
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        fields = line.split()
        if len(fields) < 5 or not fields[0].startswith("host") or fields[0] == "hostgssenc":
            continue
        kind, dbs, users, addr, method = fields[:5]
        if "/" not in addr and addr not in ("all", "samenet", "samehost"):
            continue  # address + separate netmask: not judged
        if (_hba_field_matches(dbs, database) and _hba_field_matches(users, user)
                and _hba_address_matches(addr, address)):
            return raw.strip(), method
    return None


def hba_line(database: str, user: str, address: str) -> str:
    """The pg_hba.conf line that lets one OM node log in with a SCRAM password."""
    return f"host\t{ident(database)}\t{ident(user)}\t{host_literal(address)}/32\tscram-sha-256"


def hba_missing(text: str, database: str, user: str, addresses: list[str]) -> list[str]:
    """Addresses whose first matching rule is absent or not a password method."""
    out = []
    for address in addresses:
        hit = hba_first_match(text, database, user, address)
        if hit is None or hit[1] not in GOOD_HBA_METHODS:
            out.append(address)
    return out


def hba_with_lines(text: str | None, database: str, user: str, addresses: list[str]) -> str:
    """pg_hba.conf with one line per address, placed before the first rule so they win."""
    text = text or ""
    block = ["# omwizard: OpenMeetings cluster nodes log in with a password"]
    block += [hba_line(database, user, a) for a in addresses]
    lines = text.splitlines(keepends=True)
    for i, raw in enumerate(lines):
        if raw.split("#", 1)[0].strip():
            return "".join(lines[:i]) + "\n".join(block) + "\n\n" + "".join(lines[i:])
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "\n".join(block) + "\n"


_PG_LISTEN = re.compile(r"^(\s*)(#\s*)?listen_addresses(\s*=\s*)('[^']*'|\S+)(.*)$")


def set_listen_addresses(text: str | None, value: str) -> str:
    """postgresql.conf with listen_addresses = 'value' (last active line, else after the
    commented default, else appended). The rest of the file is kept."""
    lines = (text or "").splitlines(keepends=True)
    active = [i for i, ln in enumerate(lines) if (m := _PG_LISTEN.match(ln)) and not m.group(2)]
    quoted = "'" + value.replace("'", "''") + "'"
    if active:
        i = active[-1]
        m = _PG_LISTEN.match(lines[i])
        assert m is not None
        end = lines[i][len(lines[i].rstrip("\r\n")):]
        rest = m.group(5).rstrip("\r\n")
        lines[i] = f"{m.group(1)}listen_addresses{m.group(3)}{quoted}{rest}{end}"
        return "".join(lines)
    new = f"listen_addresses = {quoted}\t\t# set by omwizard for the OpenMeetings cluster\n"
    for i, line in enumerate(lines):
        if _PG_LISTEN.match(line):
            lines.insert(i + 1, new)
            return "".join(lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + new


@dataclass
class PgPlan:
    create_role: bool
    fix_password: bool  # the role exists without a SCRAM password or without LOGIN
    create_db: bool
    listen: bool
    hba: list[str]

    @property
    def empty(self) -> bool:
        return not (self.create_role or self.fix_password or self.create_db or self.listen
                    or self.hba)


def pg_decide(facts: PgFacts, hba_text: str, user: str, database: str,
              addresses: list[str], db_address: str) -> PgPlan:
    return PgPlan(
        create_role=not facts.role_exists,
        fix_password=facts.role_exists and not (facts.role_login and facts.role_scram),
        create_db=facts.db_owner is None,
        listen=not listens_on(facts.listen, db_address),
        hba=hba_missing(hba_text, database, user, addresses),
    )


def pg_problems(facts: PgFacts, plan: PgPlan, user: str, database: str,
                db_address: str) -> list[str]:
    out = []
    if plan.create_role:
        out.append(f"no role {user}")
    if plan.fix_password:
        out.append(f"role {user} cannot log in with a SCRAM password")
    if plan.create_db:
        out.append(f"database {database} does not exist")
    elif facts.db_owner != user:
        out.append(f"database {database} is owned by {facts.db_owner} (not changed)")
    if plan.listen:
        out.append(f"listen_addresses is '{facts.listen}', not covering {db_address}")
    out += [f"pg_hba.conf lets no password login from {a}" for a in plan.hba]
    return out


def psql_literal_set(name: str, value: str) -> str:
    r"""A psql `\set` line holding value as a literal (quotes doubled, backslashes escaped)."""
    if "\n" in value or "\r" in value:
        raise ValueError("a password may not hold line breaks")
    escaped = value.replace("\\", "\\\\").replace("'", "''")
    return f"\\set {ident(name)} '{escaped}'\n"


def pg_role_sql(user: str, password: str, create: bool) -> str:
    """Create (or fix) the role with a SCRAM password; the password arrives through \\set."""
    u = ident(user)
    verb = "CREATE ROLE" if create else "ALTER ROLE"
    return (
        psql_literal_set("omw_pw", password)
        + "SET password_encryption = 'scram-sha-256';\n"
        + f"SELECT format('{verb} %I LOGIN PASSWORD %L', '{u}', :'omw_pw') \\gexec\n"
    )


def pg_create_db_sql(user: str, database: str) -> str:
    return f'CREATE DATABASE "{ident(database)}" OWNER "{ident(user)}";\n'


def pg_drop_role_sql(user: str) -> str:
    return f'DROP ROLE IF EXISTS "{ident(user)}"'


def pg_drop_db_sql(database: str) -> str:
    return f'DROP DATABASE IF EXISTS "{ident(database)}"'


# -- probes and command builders of the database steps (moved from sections.database) ---------

H2_DOC = "Db other than H2 should be used"
REMOTE_USER_DOC = "user used to connect to DB should have remote access"
MYSQL_KINDS = ("mysql", "mariadb")


def _family(kind: str | None) -> str | None:
    return "mysql" if kind in MYSQL_KINDS else kind


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


HBA_MARK = "\x1eOMW-HBA"


def with_hba(probe: str) -> str:
    """The pg probe script, then (after HBA_MARK) the pg_hba.conf it names: one command for
    remote-user's check, whose second read depends on the first; psql's exit status kept."""
    return (f"out=$({probe}); rc=$?; printf '%s\\n' \"$out\"; "
            "f=$(printf '%s\\n' \"$out\" | sed -n 's/^hba\t//p' | head -n 1); "
            '[ "$rc" = 0 ] && [ -n "$f" ] && [ -f "$f" ] && '
            "{ printf '\\036OMW-HBA\\n'; cat -- \"$f\"; }; exit $rc")


def split_hba(output: str) -> tuple[str, str | None]:
    """with_hba's output -> (the probe's output, pg_hba.conf's text or None: not read)."""
    probe, mark, hba = output.partition("\n" + HBA_MARK + "\n")
    return (probe + "\n", hba) if mark else (output, None)


def admin_prefix(db: Database) -> str:
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


def mysql_undo(db: Database, sql: str) -> list[str] | None:
    return _undo(db, ["mysql", "-e", sql])


def pg_undo(db: Database, sql: str) -> list[str] | None:
    return _undo(db, ["sh", "-c", psql_script(db, "-c " + shlex.quote(sql))])


MYSQL_CNF_PROBE = (
    "for f in /etc/my.cnf /etc/mysql/my.cnf /etc/mysql/mariadb.cnf /etc/mysql/conf.d/*.cnf "
    "/etc/mysql/mariadb.conf.d/*.cnf /etc/mysql/mysql.conf.d/*.cnf /etc/my.cnf.d/*.cnf; do "
    "[ -f \"$f\" ] && grep -qsE '^[[:space:]]*bind[-_]address' \"$f\" && echo \"$f\"; done; "
    "for f in /etc/mysql/mariadb.conf.d/50-server.cnf /etc/mysql/mysql.conf.d/mysqld.cnf; do "
    "[ -f \"$f\" ] && echo \"default:$f\"; done; true"
)


# the MySQL/MariaDB server config files (remote-user's apply, when bind-address must change);
# nothing on a PostgreSQL plan
MYSQL_CNF: Fact[str] = Fact(
    "mysql_cnf",
    lambda plan, _node: MYSQL_CNF_PROBE if plan.database.type in MYSQL_KINDS else "true", str,
)


def pick_cnf(output: str) -> str | None:
    """The file whose bind-address wins (the last one read), else Debian's server file."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    found = [line for line in lines if not line.startswith("default:")]
    if found:
        return found[-1]
    defaults = [line.removeprefix("default:") for line in lines if line.startswith("default:")]
    return defaults[0] if defaults else None


@dataclass(frozen=True)
class LoginVerdict(StepData):
    """db-login's verdict from one node: ok | unreachable | refused | bad-credentials | ..."""

    kind = "db-login"
    verdict: str


@dataclass(frozen=True)
class LoginWaits(LoginVerdict):
    """db-login's verdict while this run's check of `waits_on` found a change still to
    apply (the user, grants or listen address the login needs are not there yet)."""

    kind = "db-login-waits"
    waits_on: str = "database.remote-user"


# the node's persistence.xml (db-type, persistence-connection and the commit provider read it)
PERSISTENCE_XML = Files(
    "persistence_xml", lambda plan, _node: [OmLayout(plan.cluster.om_home).persistence_xml]
)


# -- remote-user's admin probe as a declared fact (issue 21) -------------------------------------

PROBE_STATUS_MARK = "\x1eOMW-RC "
_SQL_END = "OMW_PROBE_SQL"


def admin_probe_command(db: Database) -> str:
    """remote-user's admin probe as a read with nothing on stdin, so a declared fact: root
    over the socket (MySQL/MariaDB) or postgres by peer (PostgreSQL, then the pg_hba.conf it
    names: with_hba), the SQL (names only, never a secret) in the command itself; the
    client's error words with its output, its exit status on a marked last line. "true" when
    the probe cannot be a fact: an admin password (it travels on stdin only, so
    sections.database runs the probe itself then) or another database type."""
    if db.admin_user is not None:
        return "true"
    if db.type in MYSQL_KINDS:
        sql = mysql_probe_sql(db.user, db.name)
        probe = f"mysql -N -B -e {shlex.quote(sql)} 2>&1"
    elif db.type == "postgresql":
        sql = pg_probe_sql(db.user, db.name)
        assert _SQL_END not in sql
        probe = with_hba(f"{{ {psql_script(db, '-f -')}; }} 2>&1 <<'{_SQL_END}'\n"
                         f"{sql}{_SQL_END}\n")
    else:
        return "true"
    return f"( {probe}\n); printf '\\n{PROBE_STATUS_MARK}%s\\n' \"$?\""


@dataclass(frozen=True)
class AdminProbe:
    """What admin_probe_command printed: the client's exit status (None: not read this way)
    and its output (the probe's rows, or why it failed; PostgreSQL's with the pg_hba.conf)."""

    status: int | None
    output: str


def parse_admin_probe(output: str) -> AdminProbe:
    body, mark, tail = output.rpartition("\n" + PROBE_STATUS_MARK)
    word = tail.strip()
    if not mark or not word.isdigit():
        return AdminProbe(None, output)
    return AdminProbe(int(word), body + "\n" if body else "")


def admin_probe_fact_command(plan: Plan, _node: Node) -> str:
    return admin_probe_command(plan.database)


# remote-user's admin probe, read with the db node's other facts (and read back by the batch
# that creates the user, so its re-check sends no command); with an admin password the step
# reads it itself ("true" here)
ADMIN_PROBE: Fact[AdminProbe] = Fact("db_admin_probe", admin_probe_fact_command,
                                     parse_admin_probe)

# the server config files whose bind-address remote-user's apply may set: the usual fixed
# paths, read with the facts, so the edit needs no read of its own (another file, found by
# MYSQL_CNF in a conf.d folder, is read by the edit itself)
MYSQL_CNF_FILES = Files(
    "mysql-cnf-files",
    lambda plan, _node: ([
        "/etc/my.cnf", "/etc/mysql/my.cnf", "/etc/mysql/mariadb.cnf",
        "/etc/mysql/mariadb.conf.d/50-server.cnf", "/etc/mysql/mysql.conf.d/mysqld.cnf",
    ] if plan.database.type in MYSQL_KINDS else []),
)
