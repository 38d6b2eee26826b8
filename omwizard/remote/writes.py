"""The shell script of an atomic file write with backup and compare-and-swap (pure).

`Remote.write_file` sends it with the new content on stdin: one round trip. The guard makes
it a compare-and-swap: a caller that transformed a copy of the file read earlier (the run's
file cache) says which sha256 it read, and the script refuses, before any backup or write,
when the file is not that any more (exit WRITE_REFUSED), so the caller reads again.
"""

from __future__ import annotations

import shlex

ABSENT = "absent"  # expect=ABSENT: the file must not exist yet
WRITE_REFUSED = 45  # the script's exit status when the file is not as expected


def write_guard(path: str, expect: str) -> str:
    """The shell line that ends the script with WRITE_REFUSED unless the file's sha256 is
    `expect` (or, for ABSENT, the file does not exist); it reads no stdin."""
    if expect != ABSENT:
        _hash(expect)
    q = shlex.quote(path)
    return (f"if [ -e {q} ]; then h=$(sha256sum < {q}); h=${{h%% *}}; else h={ABSENT}; fi; "
            f'if [ "$h" != {expect} ]; then printf \'%s is not as read (now %s)\\n\' {q} "$h" '
            f">&2; exit {WRITE_REFUSED}; fi")


def _hash(text: str) -> None:
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a sha256 or {ABSENT}: {text!r}")


def write_script(path: str, *, backup: str | None = None, mode: str = "0644",
                 expect: str | None = None, source: str = 'cat > "$t"',
                 verify: str | None = None) -> str:
    """Back up (once per backup name), then write stdin atomically: a temp file in the same
    directory, owner and mode kept (or `mode` for a new file), fsync, rename, fsync the
    directory; the temp file is removed whatever fails, so no half-written file is left.

    source: the line that fills "$t" (a batch reads its own share of stdin: `head -c N`);
    verify: the sha256 the temp file must have before it replaces the file.
    """
    q = shlex.quote(path)
    lines = ["set -e"]
    if expect is not None:
        lines.append(write_guard(path, expect))
    lines += [
        f"d=$(dirname -- {q})",
        't=$(mktemp "$d/.omwizard.XXXXXX")',
        "trap 'rm -f -- \"$t\"' EXIT",
    ]
    if backup:
        qb = shlex.quote(backup)
        lines.append(
            f'if [ -e {q} ] && [ ! -e {qb} ]; then mkdir -p -m 0700 -- "$(dirname -- {qb})"; '
            f"cp -p -- {q} {qb}.tmp && sync -- {qb}.tmp && mv -f -- {qb}.tmp {qb}; fi"
        )
    lines += [
        f'if [ -e {q} ]; then chown --reference={q} "$t"; chmod --reference={q} "$t"; '
        f'else chmod {shlex.quote(mode)} "$t"; fi',
        source,
    ]
    if verify is not None:
        _hash(verify)
        lines.append(f'h=$(sha256sum < "$t"); [ "${{h%% *}}" = {verify} ] || '
                     f"{{ printf '%s: the content sent did not arrive whole\\n' {q} >&2; "
                     "exit 1; }")
    lines += [
        'sync -- "$t"',
        f'mv -f -- "$t" {q}',
        'sync -- "$d"',
    ]
    return "\n".join(lines)
