"""JAVA_OPTS of the OpenMeetings JVM: read them, tell what is missing, write the addition.

Used by two steps (SECTIONS.md): ``database.openjpa-serialization`` (CVE-2024-54676 lists) and
``storage.data-dir`` (``-DDATA_DIR``). JAVA_OPTS come from the systemd unit OM ships
(``Environment='JAVA_OPTS=...'``), possibly overridden by a drop-in, and from Tomcat's
``bin/setenv.sh``, which catalina.sh sources. A drop-in ``Environment=`` of the same variable
*replaces* the unit's value, so the drop-in we write carries the unit's tokens too.

catalina.sh passes JAVA_OPTS through ``eval``: a token with a quote, ``$``, a backtick, ``;``
or whitespace would be interpreted by the shell. New tokens are therefore restricted to a
conservative character set and refused otherwise. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from omwizard.om.layout import DROPIN_DIR

SERIALIZATION_OPTS = (
    "-Dopenjpa.serialization.class.blacklist=*",
    "-Dopenjpa.serialization.class.whitelist="
    "[B,java.util,org.apache.openjpa,org.apache.openmeetings.db.entity",
)
DROPIN_PATH = f"{DROPIN_DIR}/omwizard.conf"
VARIABLE = "JAVA_OPTS"

# What a token we write may hold: enough for -Dkey=value with paths, lists and globs-as-text.
# "%" is excluded because systemd expands specifiers in Environment= values.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.,:/=+*@\[\]{}-]+$")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?JAVA_OPTS=(.*)$")
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_PLACEHOLDER = "@@omwizard-JAVA_OPTS@@"
_ENVIRONMENT = re.compile(r"^\s*Environment\s*=(.*)$")


def check_token(token: str) -> None:
    """Refuse a token that a shell (catalina.sh's eval) or systemd would alter."""
    if not token or not _SAFE_TOKEN.match(token):
        raise ValueError(
            f"JVM option {token!r} holds characters that are unsafe in JAVA_OPTS "
            "(quotes, whitespace, $, backticks, ;, %, ...)"
        )


def _check_wanted(wanted: list[str]) -> None:
    """Every wanted token safe, and no key asked for twice (which value would win?)."""
    for token in wanted:
        check_token(token)
    keys = [option_key(t) for t in wanted]
    if len(keys) != len(set(keys)):
        raise ValueError(f"JVM options ask for the same key twice: {' '.join(wanted)}")


def option_key(token: str) -> str:
    """The identity of an option: ``-Dname`` for system properties, else the token itself."""
    if token.startswith("-D"):
        return token.partition("=")[0]
    return token


# --------------------------------------------------------------------------- systemd


def _logical_lines(text: str) -> list[str]:
    """Unit file lines with backslash continuations joined (systemd.syntax(7))."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (stripped.startswith("#") or stripped.startswith(";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def _split_words(value: str) -> list[str]:
    """Split an ``Environment=`` value into assignments, honouring systemd's quoting."""
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            break
        word: list[str] = []
        while i < n and value[i] not in " \t":
            c = value[i]
            if c in "'\"":
                end = i + 1
                while end < n and value[end] != c:
                    end += 2 if c == '"' and value[end] == "\\" else 1
                if end >= n:
                    raise ValueError(f"unterminated quote in Environment={value}")
                inner = value[i + 1 : end]
                if c == '"':
                    inner = re.sub(r"\\(.)", r"\1", inner)
                word.append(inner)
                i = end + 1
            elif c == "\\" and i + 1 < n:
                word.append(value[i + 1])
                i += 2
            else:
                word.append(c)
                i += 1
        words.append("".join(word))
    return words


def _unit_environment(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """Apply a unit's (or drop-in's) ``[Service] Environment=`` lines to ``env``."""
    env = dict(env or {})
    section = None
    for line in _logical_lines(text):
        header = _SECTION.match(line)
        if header:
            section = header.group(1).strip()
            continue
        if section != "Service":
            continue
        match = _ENVIRONMENT.match(line)
        if match is None:
            continue
        value = match.group(1).strip()
        if not value:
            env.clear()  # an empty Environment= resets the list
            continue
        for word in _split_words(value):
            name, sep, val = word.partition("=")
            if sep:
                env[name] = val
    return env


def parse_unit_java_opts(unit_text: str) -> list[str]:
    """JAVA_OPTS tokens from a unit's (or drop-in's) Environment= lines; the last one wins."""
    return _unit_environment(unit_text).get(VARIABLE, "").split()


def _setenv_java_opts(setenv_text: str, current: str) -> str:
    """Follow simple ``JAVA_OPTS=...`` assignments in setenv.sh (no control flow evaluated)."""
    value = current
    for line in setenv_text.splitlines():
        match = _ASSIGN.match(line)
        if match is None:
            continue
        rhs = match.group(1).strip()
        rhs = re.sub(r"\$\{JAVA_OPTS\}|\$JAVA_OPTS\b", _PLACEHOLDER, rhs)
        try:
            words = shlex.split(rhs, comments=True)
        except ValueError:
            continue  # not a simple assignment: leave the value as it was
        value = " ".join(words).replace(_PLACEHOLDER, value)
    return value


def effective_java_opts(
    unit_text: str | None, dropin_text: str | None, setenv_text: str | None
) -> list[str]:
    """JAVA_OPTS as the JVM sees them: unit, then drop-in overrides, then setenv.sh."""
    env: dict[str, str] = {}
    if unit_text:
        env = _unit_environment(unit_text, env)
    if dropin_text:
        env = _unit_environment(dropin_text, env)
    value = env.get(VARIABLE, "")
    if setenv_text:
        value = _setenv_java_opts(setenv_text, value)
    return value.split()


def missing_opts(current: list[str], wanted: list[str]) -> list[str]:
    """Wanted tokens not in force; for ``-Dkey=value`` the last same key decides (as the JVM)."""
    last: dict[str, str] = {}
    for token in current:
        last[option_key(token)] = token
    return [token for token in wanted if last.get(option_key(token)) != token]


def merge_opts(base_opts: list[str], wanted: list[str]) -> list[str]:
    """Base tokens in order with same-key values replaced by wanted ones, then the new ones."""
    wanted_by_key = {option_key(t): t for t in wanted}
    out: list[str] = []
    seen: set[str] = set()
    for token in base_opts:
        key = option_key(token)
        if key in seen:
            continue
        seen.add(key)
        out.append(wanted_by_key.get(key, token))
    out.extend(t for k, t in wanted_by_key.items() if k not in seen)
    return out


def _check_carried(token: str) -> None:
    """An existing token we copy into single quotes must not break them."""
    if any(c in token for c in "'\"\\\n\r"):
        raise ValueError(f"cannot carry JVM option {token!r} into the drop-in (quotes)")


def dropin_with_opts(dropin_text: str | None, base_opts: list[str], wanted: list[str]) -> str:
    """Drop-in text (``openmeetings.service.d/omwizard.conf``) that sets JAVA_OPTS.

    ``base_opts`` are the JAVA_OPTS in force from the unit and drop-ins
    (``effective_java_opts(unit, dropin, None)``): they are repeated, in order, because this
    drop-in's assignment replaces the unit's. Other lines of an existing drop-in are kept.
    """
    _check_wanted(wanted)
    merged = merge_opts(base_opts, wanted)
    for token in merged:
        _check_carried(token)
    assignment = f"Environment='{VARIABLE}={' '.join(merged)}'"
    if not dropin_text:
        return (
            "# Written by omwizard: JAVA_OPTS of the OpenMeetings JVM (this replaces the unit's).\n"
            f"[Service]\n{assignment}\n"
        )
    lines = dropin_text.splitlines()
    out: list[str] = []
    placed = False
    section = None
    service_end: int | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            if section == "Service" and service_end is None:
                service_end = len(out)
                while service_end > 0 and not out[service_end - 1].strip():
                    service_end -= 1
            section = header.group(1).strip()
            out.append(line)
            continue
        match = _ENVIRONMENT.match(line) if section == "Service" else None
        if match is not None:
            words = _split_words(match.group(1).strip())
            others = [w for w in words if w.partition("=")[0] != VARIABLE]
            if len(others) != len(words):
                if others:
                    out.append("Environment=" + " ".join(shlex.quote(w) for w in others))
                if not placed:
                    out.append(assignment)
                    placed = True
                continue
        out.append(line)
    if not placed:
        if section == "Service" and service_end is None:
            service_end = len(out)
            while service_end > 0 and not out[service_end - 1].strip():
                service_end -= 1
        if service_end is None:
            out.extend(["[Service]", assignment])
        else:
            out.insert(service_end, assignment)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- setenv.sh


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement inserting ``text`` as is (no backslash or group expansion)."""
    return lambda _match: text


def setenv_with_opts(setenv_text: str | None, wanted: list[str]) -> str:
    """Tomcat ``bin/setenv.sh`` with the wanted options, appended as ``JAVA_OPTS="$JAVA_OPTS ..."``.

    A key already set in a JAVA_OPTS assignment gets its value replaced there (every
    occurrence, so no key is duplicated); everything else (shebang, comments, other variables)
    is kept. A missing file is created with ``#!/bin/sh``.
    """
    _check_wanted(wanted)
    text = setenv_text if setenv_text is not None else "#!/bin/sh\n"
    lines = text.split("\n")
    present: set[str] = set()
    for i, line in enumerate(lines):
        if _ASSIGN.match(line) is None:
            continue
        for token in wanted:
            key = option_key(token)
            if not token.startswith("-D"):
                if re.search(rf"(?<![^\s\"']){re.escape(token)}(?![^\s\"'])", line):
                    present.add(key)
                continue
            pattern = re.compile(rf"(?<![^\s\"']){re.escape(key)}(?:=[^\s\"']*)?(?=[\s\"']|$)")
            if pattern.search(line):
                present.add(key)
                line = pattern.sub(_literal(token), line)
        lines[i] = line
    new = [t for t in wanted if option_key(t) not in present]
    result = "\n".join(lines)
    if new:
        if result and not result.endswith("\n"):
            result += "\n"
        result += f'{VARIABLE}="${VARIABLE} {" ".join(new)}"\n'
    return result
