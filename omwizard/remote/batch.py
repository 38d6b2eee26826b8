"""Several journaled changes on one node in ONE round trip (pure: the script and its parser).

The engine journals every change `begin` before it sends the batch (engine/batch.py); the
script then runs the changes in order and stops at the first that fails, so a change after a
failure never runs. Around each change it says where it is, twice:

- on stdout, between markers (`\\n<RS>OMWB start I` ... `\\n<RS>OMWB end I RC [already]`),
  which the engine reads to end each record done / failed / aborted;
- in a progress file on the node (`RECORD start`, then `RECORD RC [already]`), appended
  before and after the change, so that a record the engine could not end (it was killed, the
  connection dropped) is decided on resume: ended with its status, started but not ended
  (checked again, as a single change is), or never started (aborted: it did not run).

Each change's share of stdin (a file's new content, a command's input such as SQL carrying a
password) follows the previous one's; the script reads exactly its length (`head -c N`, GNU:
the script refuses to start elsewhere) and never puts it in an argv or a file other than the
file being written (whose temp copy is checked against the sha256 the record holds).

The changes run in a subshell, so the first failure ends them, not the script: after them,
whatever their outcome, the script may read the node as it now is (`reads`: the declared
facts and files the step's re-check and the later steps need, engine/batch.py) behind one
more marker, `\\n<RS>OMWB reads TOKEN`, TOKEN a random word of this batch. Everything
before that marker is the changes' (parse_batch reads only that part); everything after it is
the reads' (split_reads), so neither a change's output nor a read's can pass for the other's
markers. The reads write nothing (the progress file is the changes' alone: a kill between the
changes and the reads decides nothing differently), take no stdin (`</dev/null`: a batch
stopped early leaves input unread) and end within READS_TIMEOUT (coreutils `timeout`), so
a read that hangs cannot cost the changes' outcomes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from omwizard.remote.writes import WRITE_REFUSED, write_script

MARK = "\n\036OMWB "
READS = MARK + "reads "  # + the batch's token: the reads' output follows that line
READS_TIMEOUT = 60  # s: the reads after the changes, as a gather's command is bounded
NOT_GNU = 46  # the script's exit status when it cannot split stdin exactly: nothing ran
ALREADY = "already"


@dataclass(frozen=True)
class CommandItem:
    """A changing command: its quoted argv, stdin, and the outputs that mean "already so"."""

    record: str
    command: str
    input: bytes | None = None
    ok_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileItem:
    """An atomic, backed-up, compare-and-swap write of `data` to `path` (remote.writes)."""

    record: str
    path: str
    data: bytes
    expect: str  # the sha256 the file had when its new content was computed, or ABSENT
    after: str  # the sha256 of data
    backup: str | None = None
    mode: str = "0644"


BatchItem = CommandItem | FileItem


@dataclass(frozen=True)
class Outcome:
    """What the script said of one change. `status` None: it did not end (or not start)."""

    started: bool
    status: int | None
    already: bool
    output: str

    @property
    def ran(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def refused(self) -> bool:
        """A file write that found the file not as read (nothing was written)."""
        return self.status == WRITE_REFUSED


def _record_word(record: str) -> str:
    if not record or any(not (c.isalnum() or c in "-_") for c in record):
        raise ValueError(f"record ids are words: {record!r}")
    return record


def batch_script(items: list[BatchItem], progress: str,
                 settled: tuple[str, ...] = (), reads: str = "",
                 token: str = "") -> tuple[str, bytes]:
    """(script, stdin): every item in order, stopping after the first failure.

    settled: progress files of earlier batches whose records all ended: removed first.
    reads: a read-only script run after the changes, whatever their outcome, its output
    after the `reads TOKEN` marker (token: a word no output can guess, new per batch)."""
    if not items:
        raise ValueError("an empty batch")
    if reads:
        _record_word(token)
    qp = shlex.quote(progress)
    out = [
        f"P={qp}",
        f"head --version 2>/dev/null | grep -q GNU || exit {NOT_GNU}",
        'mkdir -p -m 0700 -- "$(dirname -- "$P")" || exit 1',
        *([f"rm -f -- {' '.join(shlex.quote(p) for p in settled)}"] if settled else []),
        "printf '\\n\\036OMWB ready\\n'",
        "(",  # the changes: the first failure's `exit 0` ends them, not the reads after them
    ]
    stdin = b""
    for i, item in enumerate(items):
        rec = _record_word(item.record)
        # stdout first: a wizard gone (SIGPIPE) stops the script before the change, and
        # the progress file then says it never started
        out += [f"printf '\\n\\036OMWB start {i}\\n'", f"printf '%s start\\n' {rec} >> \"$P\"",
                "a="]
        if isinstance(item, FileItem):
            body = write_script(item.path, backup=item.backup, mode=item.mode,
                                expect=item.expect, source=f'head -c {len(item.data)} > "$t"',
                                verify=item.after)
            out.append(f"out=$( ( {body}\n) 2>&1 ); rc=$?")
            stdin += item.data
        else:
            if item.input is not None:
                data = item.input
                out += [f"s=$(head -c {len(data)} | base64 -w0)",
                        f"out=$(printf '%s' \"$s\" | base64 -d | ( {item.command}\n) 2>&1); "
                        "rc=$?; s="]
                stdin += data
            else:
                out.append(f"out=$( ( {item.command}\n) </dev/null 2>&1 ); rc=$?")
            if item.ok_text:
                cases = " | ".join(f"*{shlex.quote(t)}*" for t in item.ok_text)
                out.append(f'if [ "$rc" != 0 ]; then case "$out" in {cases}) a=" {ALREADY}";; '
                           "esac; fi")
        out += [  # the progress file before stdout, which may be gone with the wizard
            f"printf '%s %s%s\\n' {rec} \"$rc\" \"$a\" >> \"$P\"",
            "printf '%s' \"$out\"",
            f"printf '\\n\\036OMWB end {i} %s%s\\n' \"$rc\" \"$a\"",
            '[ "$rc" = 0 ] || [ -n "$a" ] || exit 0',
        ]
    out.append(")")
    if reads:
        out += [f"printf '\\n\\036OMWB reads %s\\n' {token}",
                f"timeout {READS_TIMEOUT} sh -c {shlex.quote(reads)} </dev/null"]
    return "\n".join(out), stdin


def split_reads(stdout: str, token: str) -> tuple[str, str | None]:
    """(the changes' part of a batch's stdout, the reads' output or None when the script
    did not reach them). The first `reads TOKEN` marker splits them: no change can print
    it (it cannot know the token), and what the reads print after it is theirs alone."""
    if not token:
        return stdout, None
    head, found, tail = stdout.partition(f"{READS}{token}\n")
    return head, (tail if found else None)


def parse_batch(stdout: str, count: int, token: str = "") -> tuple[bool, list[Outcome]]:
    """(the script got past its preamble, each item's outcome) from the batch's stdout
    (with a token: only from its part before the reads, split_reads)."""
    ready = False
    started: dict[int, str] = {}
    ended: dict[int, tuple[int, bool]] = {}
    for chunk in split_reads(stdout, token)[0].split(MARK)[1:]:
        header, _, body = chunk.partition("\n")
        words = header.split()
        if words == ["ready"]:
            ready = True
        elif len(words) == 2 and words[0] == "start" and words[1].isdigit():
            started[int(words[1])] = body
        elif len(words) in (3, 4) and words[0] == "end" and words[1].isdigit() \
                and words[2].lstrip("-").isdigit():
            ended[int(words[1])] = (int(words[2]), len(words) == 4 and words[3] == ALREADY)
    outcomes = []
    for i in range(count):
        status, already = ended.get(i, (None, False))
        outcomes.append(Outcome(i in started, status, already, started.get(i, "")))
    return ready, outcomes


def parse_progress(text: str) -> dict[str, tuple[int | None, bool]]:
    """A progress file -> {record: (its exit status, or None if it started but did not end;
    whether it was "already so")}. A record not in it never started."""
    seen: dict[str, tuple[int | None, bool]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue  # a line cut short by a crash: its record stays undecided
        record, status = words[0], words[1]
        if status == "start":
            seen.setdefault(record, (None, False))
        elif status.lstrip("-").isdigit():
            seen[record] = (int(status), len(words) > 2 and words[2] == ALREADY)
    return seen
