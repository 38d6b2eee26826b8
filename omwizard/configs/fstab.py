"""``/etc/fstab``: the NFS client line of the documentation, added once and removable exactly.

The documentation's line is ``10.1.1.1:/opt/omdata /opt/omdata nfs timeo=50,hard,intr``
(no dump/pass fields; mount(8) takes them as 0). These transforms keep every other line
byte for byte (comments, tabs, blank lines, a missing final newline), recognise an equivalent
entry written differently (other whitespace, option order, explicit ``0 0``) and never add a
second entry for a mount point: a different existing entry is a conflict for the operator.
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")
_OPTIONS = re.compile(r"^[a-z0-9_=,.:/-]+$")
_FSTYPE = re.compile(r"^[a-z0-9_.]+$")


class FstabConflict(ValueError):
    """The mount point already has an entry with another source, type or options."""

    def __init__(self, entry: FstabEntry) -> None:
        super().__init__(
            f"/etc/fstab line {entry.index + 1} already mounts {entry.mountpoint}: {entry.raw}"
        )
        self.entry = entry


@dataclass(frozen=True)
class FstabEntry:
    """One fstab entry as read; ``index`` is its line number (0-based) in the text."""

    source: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]
    dump: int
    passno: int
    index: int
    raw: str

    def same_as(self, other: FstabEntry) -> bool:
        """Equivalent for mount(8): same fields, options in any order."""
        return (
            self.source == other.source
            and self.mountpoint == other.mountpoint
            and self.fstype == other.fstype
            and frozenset(self.options) == frozenset(other.options)
            and (self.dump, self.passno) == (other.dump, other.passno)
        )


def _unescape(field: str) -> str:
    """fstab encodes spaces and tabs as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _norm_path(path: str) -> str:
    if not path.startswith("/"):
        return path
    return path.rstrip("/") or "/"


def _norm_source(source: str) -> str:
    host, sep, path = source.partition(":")
    if sep and path.startswith("/"):
        return f"{host}:{_norm_path(path)}"
    return source


def parse_entry(line: str, index: int = 0) -> FstabEntry | None:
    """An entry from one line; None for comments, blank and malformed lines."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    fields = stripped.split()
    if len(fields) < 3:
        return None
    options = tuple(o for o in fields[3].split(",") if o) if len(fields) > 3 else ("defaults",)
    try:
        dump = int(fields[4]) if len(fields) > 4 else 0
        passno = int(fields[5]) if len(fields) > 5 else 0
    except ValueError:
        return None
    return FstabEntry(
        source=_norm_source(_unescape(fields[0])),
        mountpoint=_norm_path(_unescape(fields[1])),
        fstype=fields[2],
        options=options,
        dump=dump,
        passno=passno,
        index=index,
        raw=line.rstrip("\r\n"),
    )


def entries(text: str) -> list[FstabEntry]:
    """Every entry of the file, in order."""
    found = []
    for index, line in enumerate(text.splitlines()):
        entry = parse_entry(line, index)
        if entry is not None:
            found.append(entry)
    return found


def fstab_line(source: str, mountpoint: str, fstype: str, options: str) -> str:
    """The documentation's line ``SRC MP TYPE OPTS``, after validating every field."""
    host, sep, path = source.partition(":")
    if not sep or not _HOST.match(host) or not _PATH.match(path):
        raise ValueError(f"fstab source {source!r} is not HOST:/absolute/path")
    if not _PATH.match(mountpoint):
        raise ValueError(f"mount point {mountpoint!r} is not an absolute path of safe characters")
    if not _FSTYPE.match(fstype):
        raise ValueError(f"file system type {fstype!r} holds unsafe characters")
    if not _OPTIONS.match(options):
        raise ValueError(f"mount options {options!r} hold characters outside [a-z0-9_=,.:/-]")
    return f"{source} {mountpoint} {fstype} {options}"


def _wanted(line: str) -> FstabEntry:
    entry = parse_entry(line)
    if entry is None:
        raise ValueError(f"not an fstab entry: {line!r}")
    return entry


def fstab_find(text: str, mountpoint: str) -> FstabEntry | None:
    """The last entry for that mount point (the one mount -a leaves on top), if any."""
    target = _norm_path(mountpoint)
    found = [e for e in entries(text) if e.mountpoint == target]
    return found[-1] if found else None


def fstab_has(text: str, line: str) -> bool:
    """Whether an entry equivalent to ``line`` is present."""
    wanted = _wanted(line)
    return any(e.same_as(wanted) for e in entries(text))


def fstab_conflict(text: str, line: str) -> FstabEntry | None:
    """An entry for the same mount point that is not equivalent to ``line``, if any."""
    wanted = _wanted(line)
    for entry in entries(text):
        if entry.mountpoint == wanted.mountpoint and not entry.same_as(wanted):
            return entry
    return None


def fstab_ensure(text: str, line: str) -> str:
    """Append ``line`` unless an equivalent entry exists; raise FstabConflict on another one."""
    if fstab_has(text, line):
        return text
    conflict = fstab_conflict(text, line)
    if conflict is not None:
        raise FstabConflict(conflict)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def fstab_remove(text: str, line: str) -> str:
    """Remove the last entry equivalent to ``line`` (where ensure appended it); all else kept."""
    wanted = _wanted(line)
    matches = [e for e in entries(text) if e.same_as(wanted)]
    if not matches:
        return text
    lines = text.splitlines(keepends=True)
    del lines[matches[-1].index]
    return "".join(lines)
