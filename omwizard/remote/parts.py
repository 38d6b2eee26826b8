"""Several independent fact commands in ONE round trip (pyinfra-style: one fact script, pure
parsers), each part's stdout and exit status kept apart.

    parts = {"owner": sf.owner_probe(path), "dropins": "cat -- /x/*.conf 2>/dev/null; true"}
    got = await ctx.run_parts(node, parts)            # StepContext.run_parts
    folder = sf.parse_owner(got["owner"].stdout)      # got[name] is a RunResult of that part

Each part runs in its own subshell (an `exit` in one part ends only that part), one after the
other, between marker lines `\\n<RS>OMW <exit status of the previous part> <next part>`. The
newline before every marker is the script's own, so a part's output is reconstructed exactly,
whether or not it ended with a newline. A part missing from the output (the script was cut
short) has exit status None, like a lost connection. The stderr of all parts is the whole
command's stderr; it is given to the last part that ran.
"""

from __future__ import annotations

import shlex

from omwizard.remote.results import RunResult

MARK = "\n\036OMW "
END = "-end-"


def parts_script(parts: dict[str, str]) -> str:
    """One shell script running every part in order, its output split by markers."""
    names = list(parts)
    if not names or any(not n or " " in n or "\n" in n or n == END for n in names):
        raise ValueError(f"part names must be non-empty words other than {END}: {names}")
    out = [f"printf '\\n\\036OMW 0 %s\\n' {shlex.quote(names[0])}"]
    for i, name in enumerate(names):
        following = names[i + 1] if i + 1 < len(names) else END
        out.append(f"( {parts[name]}\n)")
        out.append(f"printf '\\n\\036OMW %s %s\\n' \"$?\" {shlex.quote(following)}")
    return "; ".join(out)


def split_parts(stdout: str) -> dict[str, tuple[int | None, str]]:
    """The script's output -> {part: (exit status or None if it did not finish, stdout)}."""
    chunks = stdout.split(MARK)[1:]
    found: dict[str, tuple[int | None, str]] = {}
    previous: str | None = None
    for chunk in chunks:
        header, newline, body = chunk.partition("\n")
        rc_text, _, name = header.partition(" ")
        if previous is not None and previous in found:
            rc = int(rc_text) if rc_text.lstrip("-").isdigit() else None
            found[previous] = (rc, found[previous][1])
        if name == END:
            break
        found[name] = (None, body if newline else "")
        previous = name
    return found


def part_results(
    parts: dict[str, str], whole: RunResult
) -> dict[str, RunResult]:
    """Per-part RunResults (command: the part's own script) from the whole command's result."""
    split = split_parts(whole.stdout)
    ran = [name for name in parts if name in split]
    out = {}
    for name, script in parts.items():
        rc, stdout = split.get(name, (None, ""))
        if whole.exit_status is None:
            rc = None
        stderr = whole.stderr if ran and name == ran[-1] else ""
        out[name] = RunResult(script, rc, stdout, stderr)
    return out
