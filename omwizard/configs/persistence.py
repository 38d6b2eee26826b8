"""OpenMeetings ``persistence.xml``: read and surgically edit the JPA connection settings.

The database section (SECTIONS.md, "database", steps 1, 3 and 4) needs three things from this
file: which database a node talks to, whether that matches the plan, and whether OpenJPA's
TCP remote commit provider is active. Operators' files differ in formatting (the installer
writes them back as a DOM, people edit them by hand), so nothing here re-serializes the
document: the ``value`` attribute of ``openjpa.ConnectionProperties`` is edited in place, token
by token, and lxml is used only to parse and to verify the result. Pure functions, no I/O.

OpenJPA reads ``openjpa.ConnectionProperties`` as ``Key=Value`` tokens split on commas, each
key and value trimmed (``Configurations.parseProperties``); that is why a value may not hold a
comma nor start or end with whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from omwizard.plan.model import DB_DEFAULT_PORTS, DB_TYPES

# A plan type and a file kind that talk to the same server: OM ships only a MySQL template and
# MySQL Connector/J speaks to MariaDB, so a plan "mariadb" matches a jdbc:mysql Url.
_FAMILY = {"mysql": "mysql", "mariadb": "mysql"}

CONNECTION_PROPERTY = "openjpa.ConnectionProperties"
REMOTE_COMMIT_PROPERTY = "openjpa.RemoteCommitProvider"
REMOTE_COMMIT_VALUE = "tcp(Addresses=127.0.0.1)"

NAMESPACES = {
    "http://java.sun.com/xml/ns/persistence": "javax",
    "http://xmlns.jcp.org/xml/ns/persistence": "javax",
    "https://jakarta.ee/xml/ns/persistence": "jakarta",
}

_XML_WS = " \t\r\n"
_PROPERTY_TAG = re.compile(r"<(?P<prefix>[\w.-]+:)?property\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
_ATTRIBUTE = re.compile(r"([\w:.-]+)[ \t\r\n]*=[ \t\r\n]*(\"([^\"]*)\"|'([^']*)')")
_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_REFERENCE = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])$")
_DATABASE = re.compile(r"^[A-Za-z0-9_$.-]+$")


@dataclass(frozen=True)
class ConnectionSettings:
    """What the plan wants every OM node to connect to (the password is kept out of repr)."""

    db_type: str
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    timezone: str | None = None  # the cluster zone, for MySQL's serverTimezone


@dataclass(frozen=True)
class JdbcUrl:
    """A JDBC Url taken apart just enough to change host, port and database and keep the rest."""

    kind: str  # mysql | mariadb | postgresql | mssql | oracle | db2 | h2 | derby | unknown
    prefix: str  # "jdbc:mysql://", "jdbc:oracle:thin:@//", ...
    host: str | None
    port: int | None
    database: str | None
    between: str  # text between port and database ("/" or ":"), "" when no database part
    rest: str  # everything after the database: "?a=b&c=d", ";databaseName=x", ...
    instance: str = ""  # SQL Server "\\SQLEXPRESS" after the host

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """URL parameters (``?a=b&c=d`` or ``;a=b;c=d``) in file order."""
        text = self.rest
        if text.startswith("?"):
            parts = text[1:].split("&")
        elif text.startswith(";") or text.startswith(":"):
            parts = text[1:].split(";")
        else:
            return ()
        out = []
        for part in parts:
            if part:
                key, _, value = part.partition("=")
                out.append((key, value))
        return tuple(out)

    def text(self) -> str:
        """The Url again; equal to the parsed text when nothing was changed."""
        if self.host is None:
            return self.prefix + self.rest
        port = "" if self.port is None else f":{self.port}"
        database = self.database or ""
        return f"{self.prefix}{self.host}{self.instance}{port}{self.between}{database}{self.rest}"


@dataclass(frozen=True)
class PersistenceFacts:
    """What a node's persistence.xml says; never the password itself."""

    db_kind: str | None
    url: str | None
    host: str | None
    port: int | None  # as written in the Url; None = the driver default
    database: str | None
    user: str | None
    password_set: bool
    url_params: tuple[tuple[str, str], ...]
    remote_commit_provider_active: bool
    remote_commit_value: str | None
    namespace: str | None  # "javax" | "jakarta"

    @property
    def effective_port(self) -> int | None:
        """The port the driver uses: the Url's, else the database's default."""
        if self.port is not None:
            return self.port
        return DB_DEFAULT_PORTS.get(self.db_kind or "")

    @property
    def server_timezone(self) -> str | None:
        """MySQL's serverTimezone URL parameter (OM's installer appends it)."""
        for key, value in self.url_params:
            if key == "serverTimezone":
                return value
        return None


# --------------------------------------------------------------------------- tokens


def parse_connection_properties(value: str) -> list[tuple[str, str]]:
    """Split an (already XML-decoded) ConnectionProperties value as OpenJPA does.

    Tokens are split on commas, then on the first ``=``; key and value are trimmed, so any
    whitespace around tokens (the templates put newlines and tabs there) is insignificant.
    A token without ``=`` gives an empty value; empty tokens are dropped.
    """
    out: list[tuple[str, str]] = []
    if not value.strip():
        return out
    for token in value.split(","):
        if not token.strip():
            continue
        key, _, val = token.partition("=")
        out.append((key.strip(), val.strip()))
    return out


def format_connection_properties(pairs: list[tuple[str, str]], separator: str = ", ") -> str:
    """The inverse of :func:`parse_connection_properties` (for new files and tests)."""
    for key, value in pairs:
        _check_token_value(key, key)
        if not key or "=" in key:
            raise ValueError(f"connection property name {key!r} is empty or holds '='")
        _check_token_value(key, value)
    return separator.join(f"{key}={value}" for key, value in pairs)


def _check_token_value(key: str, value: str) -> None:
    """Refuse what OpenJPA or XML attribute normalization would silently change."""
    if "," in value:
        raise ValueError(
            f"{key} may not contain a comma: OpenJPA splits openjpa.ConnectionProperties on commas"
        )
    if value != value.strip(_XML_WS + "\f\v"):
        raise ValueError(f"{key} may not start or end with whitespace: OpenJPA trims it")
    if any(ord(c) < 0x20 or c in "\x7f\ufffe\uffff" for c in value):
        raise ValueError(f"{key} may not contain control characters")


def _escape(value: str) -> str:
    """XML-escape for an attribute value in either quote style."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _decode(raw: str) -> str:
    """Raw attribute text to its value: XML whitespace normalization, then references."""
    text = raw.replace("\r\n", " ")
    text = re.sub(r"[\t\r\n]", " ", text)

    def ref(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _ENTITIES[name]

    return _REFERENCE.sub(ref, text)


@dataclass
class _RawToken:
    """One comma-separated token of the raw attribute text, with its surrounding whitespace."""

    lead: str
    key: str  # raw key text, trimmed
    eq: str  # "=" with the whitespace around it, or "" for a token without "="
    value: str  # raw value text, trimmed
    trail: str

    @classmethod
    def split(cls, raw: str) -> _RawToken:
        stripped = raw.lstrip(_XML_WS)
        lead = raw[: len(raw) - len(stripped)]
        core = stripped.rstrip(_XML_WS)
        trail = stripped[len(core) :]
        match = re.match(r"^([^=]*?)([ \t\r\n]*=[ \t\r\n]*)(.*)$", core, re.DOTALL)
        if match is None:
            return cls(lead, core, "", "", trail)
        return cls(lead, match.group(1), match.group(2), match.group(3), trail)

    def join(self) -> str:
        return f"{self.lead}{self.key}{self.eq}{self.value}{self.trail}"

    @property
    def name(self) -> str:
        return _decode(self.key).strip()

    @property
    def decoded(self) -> str:
        return _decode(self.value).strip()


@dataclass
class _Located:
    """Where the ConnectionProperties value sits in the text."""

    start: int  # first character of the attribute value (inside the quotes)
    end: int
    tokens: list[_RawToken]

    def get(self, key: str) -> _RawToken | None:
        for token in self.tokens:
            if token.name.lower() == key.lower():
                return token
        return None


# --------------------------------------------------------------------------- locating


def _parse(text: str) -> etree._Element:
    """Parse with lxml (bytes: a declaration with an encoding is refused on str)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    try:
        return etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"persistence.xml is not well-formed XML: {exc}") from exc


def _comment_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _COMMENT.finditer(text)]


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in spans)


def _property_tags(text: str, name: str) -> list[tuple[re.Match[str], dict[str, re.Match[str]]]]:
    """Active (not commented out) ``<property>`` start tags whose name is ``name``."""
    comments = _comment_spans(text)
    found = []
    for tag in _PROPERTY_TAG.finditer(text):
        if _inside(tag.start(), comments):
            continue
        attrs = {m.group(1): m for m in _ATTRIBUTE.finditer(tag.group(0))}
        attr = attrs.get("name")
        if attr is None:
            continue
        value = attr.group(3) if attr.group(3) is not None else attr.group(4)
        if _decode(value).strip() == name:
            found.append((tag, attrs))
    return found


def _lxml_property(root: etree._Element, name: str) -> etree._Element | None:
    for element in root.iter("{*}property", "property"):
        if element.get("name", "").strip() == name:
            return element
    return None


def _locate(text: str) -> _Located | None:
    """Find the ConnectionProperties value span; verified against lxml's reading."""
    root = _parse(text)
    element = _lxml_property(root, CONNECTION_PROPERTY)
    tags = _property_tags(text, CONNECTION_PROPERTY)
    if element is None and not tags:
        return None
    if element is None or not tags:
        raise ValueError(f"cannot locate {CONNECTION_PROPERTY} in persistence.xml")
    tag, attrs = tags[0]
    value_attr = attrs.get("value")
    if value_attr is None:
        raise ValueError(f"{CONNECTION_PROPERTY} has no value attribute")
    group = 3 if value_attr.group(3) is not None else 4
    start = tag.start() + value_attr.start(group)
    end = tag.start() + value_attr.end(group)
    raw = text[start:end]
    if _decode(raw) != element.get("value"):
        raise ValueError(f"cannot read {CONNECTION_PROPERTY} reliably (unexpected markup)")
    tokens = [_RawToken.split(part) for part in raw.split(",")]
    if any("," in t.decoded for t in tokens):
        raise ValueError(f"{CONNECTION_PROPERTY} holds an encoded comma; refusing to edit")
    return _Located(start, end, tokens)


# --------------------------------------------------------------------------- URLs

_URL_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    (
        "mysql",
        re.compile(
            r"^(?P<prefix>jdbc:(?P<sub>mysql|mariadb)(?::[a-z]+)?://)"
            r"(?P<host>\[[^\]]*\]|[^:/?;]*)(?::(?P<port>\d*))?"
            r"(?:(?P<between>/)(?P<db>[^?;]*))?(?P<rest>.*)$",
            re.DOTALL,
        ),
    ),
    (
        "postgresql",
        re.compile(
            r"^(?P<prefix>jdbc:postgresql://)(?P<host>\[[^\]]*\]|[^:/?;]*)(?::(?P<port>\d*))?"
            r"(?:(?P<between>/)(?P<db>[^?;]*))?(?P<rest>.*)$",
            re.DOTALL,
        ),
    ),
    (
        "db2",
        re.compile(
            r"^(?P<prefix>jdbc:db2://)(?P<host>\[[^\]]*\]|[^:/?;]*)(?::(?P<port>\d*))?"
            r"(?:(?P<between>/)(?P<db>[^?;:]*))?(?P<rest>.*)$",
            re.DOTALL,
        ),
    ),
    (
        "mssql",
        re.compile(
            r"^(?P<prefix>jdbc:sqlserver://)(?P<host>[^:;\\]*)(?P<instance>\\[^:;]*)?"
            r"(?::(?P<port>\d*))?(?P<rest>;.*)?$",
            re.DOTALL,
        ),
    ),
    (
        "oracle",
        re.compile(
            r"^(?P<prefix>jdbc:oracle:(?:thin|oci):@(?://)?)(?P<host>[^:/()]+)"
            r"(?::(?P<port>\d+))?(?P<between>[:/])(?P<db>[^?]*)(?P<rest>\?.*)?$",
            re.DOTALL,
        ),
    ),
]


def parse_jdbc_url(url: str) -> JdbcUrl:
    """Take a JDBC Url apart; kinds without a server (H2, Derby) have host None."""
    lowered = url.lower()
    for kind, pattern in _URL_SHAPES:
        match = pattern.match(url)
        if match is None:
            continue
        groups = match.groupdict()
        if kind == "mysql":
            kind = groups["sub"].lower()
        port = int(groups["port"]) if groups.get("port") else None
        host = groups["host"]
        if kind == "mssql":
            rest = groups["rest"] or ""
            instance = groups.get("instance") or ""
            return JdbcUrl(kind, groups["prefix"], host, port, None, "", rest, instance)
        return JdbcUrl(
            kind,
            groups["prefix"],
            host,
            port,
            groups.get("db"),
            groups.get("between") or "",
            groups.get("rest") or "",
        )
    for kind, head in (
        ("h2", "jdbc:h2:"),
        ("derby", "jdbc:derby:"),
        ("mysql", "jdbc:mysql:"),
        ("mariadb", "jdbc:mariadb:"),
        ("postgresql", "jdbc:postgresql:"),
        ("mssql", "jdbc:sqlserver:"),
        ("oracle", "jdbc:oracle:"),
        ("db2", "jdbc:db2:"),
    ):
        if lowered.startswith(head):
            return JdbcUrl(kind, "", None, None, None, "", url)
    return JdbcUrl("unknown", "", None, None, None, "", url)


def _mssql_database(url: JdbcUrl) -> str | None:
    for key, value in url.params:
        if key.lower() in ("databasename", "database"):
            return value
    return None


def _url_database(url: JdbcUrl) -> str | None:
    return _mssql_database(url) if url.kind == "mssql" else url.database


def _with_param(rest: str, key: str, value: str, style: str) -> str:
    """Set ``key=value`` in a Url tail (``?a&b`` or ``;a;b``), keeping every other part."""
    if style == "?":
        if not rest.startswith("?"):
            if rest:
                raise ValueError(f"cannot add {key} to a Url ending in {rest!r}")
            return f"?{key}={value}"
        parts = rest[1:].split("&")
        sep = "&"
    else:
        parts = rest[1:].split(";") if rest.startswith(";") else []
        sep = ";"
    if parts == [""]:
        parts = []
    for i, part in enumerate(parts):
        if part.partition("=")[0].lower() == key.lower():
            parts[i] = f"{part.partition('=')[0]}={value}"
            break
    else:
        if parts and parts[-1] == "":
            parts.insert(len(parts) - 1, f"{key}={value}")
        else:
            parts.append(f"{key}={value}")
    return ("?" if style == "?" else ";") + sep.join(parts)


def _new_url(url: JdbcUrl, settings: ConnectionSettings) -> JdbcUrl:
    """The Url with the plan's host, port, database (and MySQL zone); all else kept."""
    if url.host is None:
        raise ValueError(f"cannot change a {url.kind} Url without a server part: {url.text()}")
    # An absent port stays absent when the plan's port is the driver default (minimal edit).
    port: int | None = settings.port
    if url.port is None and settings.port == DB_DEFAULT_PORTS[settings.db_type]:
        port = None
    host = url.host if url.host.lower() == settings.host.lower() else settings.host
    if url.kind == "mssql":
        rest = url.rest
        if _mssql_database(url) != settings.database:
            rest = _with_param(rest, "databaseName", settings.database, ";")
        return JdbcUrl(url.kind, url.prefix, host, port, None, "", rest, url.instance)
    rest = url.rest
    if url.kind in ("mysql", "mariadb") and settings.timezone:
        current = dict(url.params).get("serverTimezone")
        if current != settings.timezone:
            rest = _with_param(rest, "serverTimezone", settings.timezone, "?")
    between = url.between or "/"
    return JdbcUrl(url.kind, url.prefix, host, port, settings.database, between, rest)


def _check_settings(settings: ConnectionSettings) -> None:
    if settings.db_type not in DB_TYPES:
        raise ValueError(f"database type {settings.db_type!r} is not one of {', '.join(DB_TYPES)}")
    if not _HOST.match(settings.host):
        raise ValueError(f"database host {settings.host!r} is not a host name or address")
    if not 0 < settings.port < 65536:
        raise ValueError(f"database port {settings.port} is out of range")
    if not _DATABASE.match(settings.database):
        raise ValueError(f"database name {settings.database!r} holds unsafe characters")
    if not settings.user:
        raise ValueError("database user is empty")
    _check_token_value("Username", settings.user)
    _check_token_value("Password", settings.password)
    if settings.timezone is not None and not _TIMEZONE.match(settings.timezone):
        raise ValueError(f"timezone {settings.timezone!r} is not an IANA zone name")


# --------------------------------------------------------------------------- public API


def inspect(text: str) -> PersistenceFacts:
    """Read a persistence.xml: database kind, server, user, remote commit provider."""
    root = _parse(text)
    namespace = NAMESPACES.get(etree.QName(root).namespace or "")
    rcp = _lxml_property(root, REMOTE_COMMIT_PROPERTY)
    located = _locate(text)
    if located is None:
        return PersistenceFacts(
            None, None, None, None, None, None, False, (), rcp is not None,
            None if rcp is None else rcp.get("value"), namespace,
        )  # fmt: skip
    url_token = located.get("Url")
    user_token = located.get("Username")
    password_token = located.get("Password")
    url = parse_jdbc_url(url_token.decoded) if url_token else None
    return PersistenceFacts(
        db_kind=url.kind if url else None,
        url=url.text() if url else None,
        host=url.host if url else None,
        port=url.port if url else None,
        database=_url_database(url) if url else None,
        user=user_token.decoded if user_token else None,
        password_set=bool(password_token and password_token.decoded),
        url_params=url.params if url else (),
        remote_commit_provider_active=rcp is not None,
        remote_commit_value=None if rcp is None else rcp.get("value"),
        namespace=namespace,
    )


def problems(text: str, settings: ConnectionSettings) -> list[str]:
    """Human lines saying what differs from the plan; the password value is never shown."""
    facts = inspect(text)
    if facts.url is None:
        return [f"persistence.xml has no {CONNECTION_PROPERTY} with a Url"]
    kind = facts.db_kind or "unknown"
    if _FAMILY.get(kind, kind) != _FAMILY.get(settings.db_type, settings.db_type):
        if kind == "h2" or kind == "derby":
            return [
                f"Database is {kind} (embedded, Url {facts.url}); a cluster needs a shared "
                f"{settings.db_type} database: re-install OpenMeetings on {settings.db_type}"
            ]
        return [f"Database type is {kind} (Url {facts.url}); the plan says {settings.db_type}"]
    out = []
    if (facts.host or "").lower() != settings.host.lower():
        out.append(f"Host is {facts.host}, the plan says {settings.host}")
    if facts.effective_port != settings.port:
        out.append(f"Port is {facts.effective_port}, the plan says {settings.port}")
    if facts.database != settings.database:
        out.append(f"Database is {facts.database}, the plan says {settings.database}")
    if facts.user != settings.user:
        out.append(f"User is {facts.user}, the plan says {settings.user}")
    located = _locate(text)
    password = located.get("Password") if located else None
    if password is None:
        out.append("Password is not set")
    elif password.decoded != settings.password:
        out.append("Password differs")
    if kind in ("mysql", "mariadb") and settings.timezone:
        zone = facts.server_timezone
        if zone is None:
            out.append(f"serverTimezone is not set, the plan's zone is {settings.timezone}")
        elif zone != settings.timezone:
            out.append(f"serverTimezone is {zone}, the plan's zone is {settings.timezone}")
    return out


def set_connection(text: str, settings: ConnectionSettings) -> str:
    """Make Url host/port/database, Username and Password match the plan, changing nothing else.

    Only the raw text of those tokens' values changes (and of serverTimezone for MySQL); the
    other tokens, URL parameters, whitespace, comments and the header stay byte for byte.
    """
    _check_settings(settings)
    located = _locate(text)
    if located is None:
        raise ValueError(f"persistence.xml has no {CONNECTION_PROPERTY}")
    url_token = located.get("Url")
    if url_token is None:
        raise ValueError(f"{CONNECTION_PROPERTY} has no Url token")
    url = parse_jdbc_url(url_token.decoded)
    if _FAMILY.get(url.kind, url.kind) != _FAMILY.get(settings.db_type, settings.db_type):
        raise ValueError(
            f"persistence.xml is for {url.kind}, the plan says {settings.db_type}: "
            f"install OpenMeetings on {settings.db_type} first"
        )
    new_url = _new_url(url, settings).text()
    _check_token_value("Url", new_url)
    if new_url != url_token.decoded:
        url_token.value = _escape(new_url)
    for key, value in (("Username", settings.user), ("Password", settings.password)):
        token = located.get(key)
        if token is None:
            last = located.tokens[-1]
            located.tokens.append(_RawToken("", key, "=", _escape(value), last.trail))
            last.trail = ""
        elif token.decoded != value:
            if not token.eq:
                token.eq = "="
            token.value = _escape(value)
    raw = ",".join(t.join() for t in located.tokens)
    result = text[: located.start] + raw + text[located.end :]
    _verify(result, settings)
    return result


def _verify(text: str, settings: ConnectionSettings) -> None:
    """Prove the edit reads back as intended through lxml, or refuse it."""
    root = _parse(text)
    element = _lxml_property(root, CONNECTION_PROPERTY)
    assert element is not None
    pairs = {k.lower(): v for k, v in parse_connection_properties(element.get("value", ""))}
    if pairs.get("username") != settings.user or pairs.get("password") != settings.password:
        raise ValueError("edited persistence.xml does not read back the plan's credentials")


def activate_remote_commit(text: str) -> str:
    """Make ``openjpa.RemoteCommitProvider`` active with the TCP provider; idempotent.

    Un-comments the template's ``<!--property ... /-->`` in place; where a file has no such
    comment (the H2 and Derby templates), inserts the property after the last one, on its own
    line with the same indentation. An active provider that is not TCP gets the TCP value.
    """
    _parse(text)
    active = _property_tags(text, REMOTE_COMMIT_PROPERTY)
    if active:
        tag, attrs = active[0]
        value_attr = attrs.get("value")
        if value_attr is not None:
            group = 3 if value_attr.group(3) is not None else 4
            if _decode(value_attr.group(group)).strip().startswith("tcp"):
                return text
            start = tag.start() + value_attr.start(group)
            end = tag.start() + value_attr.end(group)
            return _checked_rcp(text[:start] + REMOTE_COMMIT_VALUE + text[end:])
    line_end = "\r\n" if "\r\n" in text else "\n"
    for comment in _COMMENT.finditer(text):
        body = comment.group(1).strip()
        if re.match(r"^property\b", body) and REMOTE_COMMIT_PROPERTY in body:
            element = "<" + (body if body.endswith("/") else body + " /") + ">"
            return _checked_rcp(text[: comment.start()] + element + text[comment.end() :])
    comments = _comment_spans(text)
    last = None
    for tag in _PROPERTY_TAG.finditer(text):
        if not _inside(tag.start(), comments):
            last = tag
    if last is None:
        raise ValueError("persistence.xml has no <property> to place the remote commit provider")
    end = last.end()
    if not last.group(0).endswith("/>"):
        close = re.compile(r"</(?:[\w.-]+:)?property\s*>").search(text, end)
        if close is None:
            raise ValueError("unterminated <property> element")
        end = close.end()
    line_start = text.rfind("\n", 0, last.start()) + 1
    line = text[line_start:]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    prefix = last.group("prefix") or ""
    element = f'<{prefix}property name="{REMOTE_COMMIT_PROPERTY}" value="{REMOTE_COMMIT_VALUE}"/>'
    return _checked_rcp(text[:end] + line_end + indent + element + text[end:])


def _checked_rcp(text: str) -> str:
    root = _parse(text)
    element = _lxml_property(root, REMOTE_COMMIT_PROPERTY)
    if element is None or not (element.get("value") or "").startswith("tcp"):
        raise ValueError("could not activate openjpa.RemoteCommitProvider")
    parent = element.getparent()
    if parent is None or etree.QName(parent).localname != "properties":
        raise ValueError("openjpa.RemoteCommitProvider is not inside <properties>")
    return text
