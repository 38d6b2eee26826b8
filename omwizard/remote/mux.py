"""Every command on a node over ONE long-lived session channel (issue 21).

An exec channel per command costs a channel open and an exec request (2 round trips, 3 with
stdin: asyncssh writes stdin only after the exec reply). Instead the first command on a
connection starts a small program on the node (PROGRAM: python3, stdlib only, Python 3.6+)
that runs many commands at once, each framed over the channel's stdin and stdout, so every
later command is one request (its start, stdin and end of input written together) and its
answers: 1 round trip. The first command rides in the program's argv (base64 of its wire;
never its stdin: secrets travel only in frames), so it costs what an exec channel costs.

A frame is HEADER (kind byte, command id, payload length) and the payload. To the node:
START (the wire, run as `[login shell, "-c", wire]` in its own process group), IN (stdin
bytes), EOF (end of stdin), KILL (SIGKILL to the command's process group). From the node:
HELLO once before any frame (bytes a login script may print before it are skipped), OUT and
ERR chunks as they come, EXIT (the status; a signal death is negative), FAULT (the program
refused a frame of ours: it stops reading). When the client goes away (EOF on stdin, a
broken stdout) the program kills nothing: it stops writing, keeps draining its commands'
output, waits for them, then exits (a batch script finishes and writes its progress file,
as with an exec channel).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shlex
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

HEADER = struct.Struct(">BII")  # kind, command id, payload length
STATUS = struct.Struct(">i")
START, IN, EOF, KILL = b"SIEK"  # to the node
OUT, ERR, EXIT, FAULT = b"oexF"  # from the node
TO_NODE = frozenset((START, IN, EOF, KILL))
FROM_NODE = frozenset((OUT, ERR, EXIT, FAULT))
HELLO = b"\x00OMW-MUX-1\n"
MAX_PAYLOAD = 1 << 24  # a longer frame is a broken stream, not data
STDIN_CHUNK = 1 << 18
NOISE_LIMIT = 1 << 16  # bytes before HELLO (a login script's chatter) at most
ARGV_WIRE_MAX = 48 * 1024  # a first wire longer than this goes as a frame (argv: 128 KiB max)

LineSink = Callable[[str], None]

# The node's side. Kinds are numbers here (b"S"[0] == 83 ...); tests/unit/test_mux_frames.py
# checks them against the constants above and that it parses as Python 3.6.
PROGRAM = """import os,sys,struct,base64,pwd,queue,subprocess,threading
H=struct.Struct(">BII");X=struct.Struct(">i");L=threading.Lock();C={};G=[0]
SH=pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
threading.stack_size(1<<18)
def send(k,i,d=b""):
 m=memoryview(H.pack(k,i,len(d))+d)
 with L:
  try:
   while m and not G[0]:m=m[os.write(1,m):]
  except OSError:G[0]=1
def feed(p,q):
 ok=1
 while 1:
  d=q.get()
  if d is None:break
  m=memoryview(d)
  try:
   while ok and m:m=m[p.stdin.write(m):]
  except OSError:ok=0
 try:p.stdin.close()
 except OSError:pass
def pump(s,k,i):
 while 1:
  try:d=os.read(s.fileno(),65536)
  except OSError:d=b""
  if not d:break
  send(k,i,d)
 s.close()
def wait(i,p,q):
 t=threading.Thread(target=pump,args=(p.stderr,101,i));t.start()
 pump(p.stdout,111,i);t.join();r=p.wait();C.pop(i,None);q.put(None)
 send(120,i,X.pack(r))
def start(i,w):
 try:p=subprocess.Popen([SH,"-c",w],bufsize=0,stdin=-1,stdout=-1,stderr=-1,start_new_session=True)
 except Exception as e:
  send(101,i,("omwizard: cannot run %s: %s\\n"%(SH,e)).encode());send(120,i,X.pack(127));return
 q=queue.Queue();C[i]=(p,q)
 t=threading.Thread(target=feed,args=(p,q));t.daemon=True;t.start()
 threading.Thread(target=wait,args=(i,p,q)).start()
def main():
 os.write(1,HELLO)
 if len(sys.argv)>1:start(1,base64.b64decode(sys.argv[1]))
 r=sys.stdin.buffer
 while 1:
  try:
   h=r.read(9)
   if len(h)<9:break
   k,i,n=H.unpack(h)
   if k not in(83,73,69,75)or n>LIMIT:
    send(70,0,b"bad frame: kind %d, length %d"%(k,n));break
   d=r.read(n)
   if len(d)<n:break
  except OSError:break
  c=C.get(i)
  if k==83:start(i,d)
  elif c and k==73:c[1].put(d)
  elif c and k==69:c[1].put(None)
  elif c and k==75:
   try:os.killpg(c[0].pid,9)
   except OSError:pass
 for p,q in list(C.values()):q.put(None)
main()
""".replace("HELLO", repr(HELLO)).replace("LIMIT", str(MAX_PAYLOAD))


def program_command(first_wire: str | None) -> str:
    """The exec line that starts PROGRAM (exit 127 from the shell when python3 is missing),
    with the first command's wire in its argv when it is short enough."""
    line = f"exec python3 -I -c {shlex.quote(PROGRAM)}"
    if first_wire is not None:
        line += " " + base64.b64encode(first_wire.encode()).decode()
    return line


# -- frames (pure) ----------------------------------------------------------------------------


class FrameError(ValueError):
    """The stream is not frames of ours: its kind or length is impossible, or it was cut."""


@dataclass(frozen=True)
class Frame:
    kind: int
    ident: int
    payload: bytes = b""


def encode(kind: int, ident: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"a frame of {len(payload)} bytes is over the limit of {MAX_PAYLOAD}")
    return HEADER.pack(kind, ident, len(payload)) + payload


def request(ident: int, wire: str | None, stdin: bytes | None) -> bytes:
    """A command's whole request, written at once: START (unless its wire went in argv), its
    stdin in chunks, EOF."""
    parts = [] if wire is None else [encode(START, ident, wire.encode())]
    data = memoryview(stdin or b"")
    for at in range(0, len(data), STDIN_CHUNK):
        parts.append(encode(IN, ident, bytes(data[at:at + STDIN_CHUNK])))
    parts.append(encode(EOF, ident))
    return b"".join(parts)


def exit_status(frame: Frame) -> int:
    if len(frame.payload) != STATUS.size:
        raise FrameError(f"an exit frame of {len(frame.payload)} bytes (not {STATUS.size})")
    return int(STATUS.unpack(frame.payload)[0])


class FrameReader:
    """Frames out of a byte stream that arrives in pieces of any size. With `hello`, bytes
    before that marker are skipped (kept in `noise` for a message), at most NOISE_LIMIT."""

    def __init__(self, kinds: frozenset[int], *, hello: bytes | None = None,
                 limit: int = MAX_PAYLOAD) -> None:
        self._kinds = kinds
        self._hello = hello
        self._limit = limit
        self._buf = bytearray()
        self.greeted = hello is None
        self.noise = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        if not self.greeted and not self._greet():
            return []
        frames: list[Frame] = []
        at = 0
        buf = self._buf
        while len(buf) - at >= HEADER.size:
            kind, ident, size = HEADER.unpack_from(buf, at)
            if kind not in self._kinds:
                raise FrameError(f"unknown frame kind {kind} at byte {at}")
            if size > self._limit:
                raise FrameError(f"a frame of {size} bytes is over the limit of {self._limit}")
            end = at + HEADER.size + size
            if len(buf) < end:
                break
            frames.append(Frame(kind, ident, bytes(buf[at + HEADER.size:end])))
            at = end
        del buf[:at]
        return frames

    def _greet(self) -> bool:
        assert self._hello is not None
        found = self._buf.find(self._hello)
        if found < 0:
            keep = len(self._hello) - 1  # the marker may be cut between two pieces
            cut = max(0, len(self._buf) - keep)
            self.noise += self._buf[:cut]
            del self._buf[:cut]
            if len(self.noise) > NOISE_LIMIT:
                raise FrameError(f"no greeting in the first {len(self.noise)} bytes")
            return False
        self.noise += self._buf[:found]
        del self._buf[:found + len(self._hello)]
        self.greeted = True
        return True

    def end(self) -> None:
        """The stream ended: it must not end inside a frame."""
        if self.greeted and self._buf:
            raise FrameError(f"the stream ended inside a frame ({len(self._buf)} bytes left)")


class LineSplitter:
    """Whole lines out of chunks, as `async for line in stream` gives them (its last line
    may have no newline); each without its newline, decoded as text."""

    def __init__(self) -> None:
        self._part = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._part += data
        end = self._part.rfind(b"\n")
        if end < 0:
            return []
        whole = bytes(self._part[:end + 1])
        del self._part[:end + 1]
        return [line.decode(errors="replace") for line in whole.split(b"\n")[:-1]]

    def flush(self) -> list[str]:
        rest, self._part = bytes(self._part), bytearray()
        return [rest.decode(errors="replace")] if rest else []


# -- the client --------------------------------------------------------------------------------


class MuxUnavailable(Exception):
    """The program did not start on the node (no python3, too old): nothing sent to it ran;
    run commands on exec channels on this connection."""


class MuxLost(Exception):
    """The channel (or the connection) ended with the command pending: its effect is
    unknown."""


@dataclass(eq=False)
class MuxCommand:
    ident: int
    wire: str
    stdin: bytes | None
    on_line: LineSink | None
    future: asyncio.Future[tuple[int, bytes, bytes]]
    out: list[bytes] = field(default_factory=list)
    err: list[bytes] = field(default_factory=list)
    lines: tuple[LineSplitter, LineSplitter] = field(
        default_factory=lambda: (LineSplitter(), LineSplitter()))
    sent: bool = False  # the node may run it
    abandoned: bool = False  # timed out: killed, its answers dropped
    sink_error: Exception | None = None

    def took(self, kind: int, data: bytes) -> None:
        (self.out if kind == OUT else self.err).append(data)
        if self.on_line is not None:
            self._said(self.lines[kind != OUT].feed(data))

    def finish(self, status: int) -> None:
        if self.on_line is not None:
            for splitter in self.lines:
                self._said(splitter.flush())
        if self.future.done():
            return
        if self.sink_error is not None:
            self.future.set_exception(self.sink_error)
        else:
            self.future.set_result((status, b"".join(self.out), b"".join(self.err)))

    def _said(self, lines: list[str]) -> None:
        assert self.on_line is not None
        for line in lines:
            try:
                self.on_line(line)
            except Exception as exc:  # the caller's sink: its error is the command's
                self.sink_error = self.sink_error or exc


Opener = Callable[[str], Awaitable["asyncssh.SSHClientProcess[Any]"]]


class CommandMux:
    """One node's command channel: starts PROGRAM with the first command, sends the others
    as frames, and a reader task hands each command its output and exit status."""

    def __init__(self, conn: asyncssh.SSHClientConnection, opener: Opener) -> None:
        self.conn = conn
        self._open = opener  # a binary session channel running the given line
        self._process: asyncssh.SSHClientProcess[Any] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._commands: dict[int, MuxCommand] = {}
        self._next = 1
        self._failure: Exception | None = None
        self._said = bytearray()  # the program's own stderr (a shell's or Python's words)

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def unavailable(self) -> bool:
        """The program did not start on the node: nothing sent to it ran."""
        return isinstance(self._failure, MuxUnavailable)

    @property
    def starting(self) -> bool:
        """Its first command is under way and the channel not open yet: a frame sent now
        would wait for the open (2 round trips) and then take its own (a 3rd)."""
        return self._opening is not None and self._process is None and self._failure is None

    def command(self, wire: str, stdin: bytes | None, on_line: LineSink | None) -> MuxCommand:
        ident, self._next = self._next, self._next + 1
        future = asyncio.get_running_loop().create_future()
        return MuxCommand(ident, wire, stdin, on_line, future)

    async def run(self, cmd: MuxCommand) -> tuple[int, bytes, bytes]:
        """(status, stdout, stderr) of a command; MuxUnavailable or MuxLost otherwise. A
        cancelled wait leaves the command running (call kill to stop it)."""
        if self._failure is not None:
            raise self._failure
        self._commands[cmd.ident] = cmd
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._start(cmd))
        elif self._process is not None:
            self._send(cmd)
        # else: the channel is opening; _start sends it
        return await cmd.future

    def kill(self, cmd: MuxCommand) -> None:
        """Stop waiting for the command and kill its process group on the node."""
        self._commands.pop(cmd.ident, None)
        cmd.abandoned = True
        if cmd.sent and self._process is not None and self._failure is None:
            self._write(encode(KILL, cmd.ident))
        # sent but the channel still opening: _start sends the KILL

    def close(self) -> None:
        self._fail(MuxLost("the connection was closed"))
        for task in (self._opening, *self._tasks):
            if task is not None:
                task.cancel()

    # -- inside -------------------------------------------------------------------------------

    async def _start(self, first: MuxCommand) -> None:
        in_argv = len(first.wire.encode()) <= ARGV_WIRE_MAX
        first.sent = in_argv
        try:
            process = await self._open(program_command(first.wire if in_argv else None))
        except (OSError, asyncssh.Error) as exc:
            self._fail(MuxLost(_describe(exc)))
            return
        if self._failure is not None:  # closed meanwhile
            process.close()
            return
        self._process = process
        self._tasks = [asyncio.ensure_future(self._read(process)),
                       asyncio.ensure_future(self._read_said(process))]
        if in_argv:
            tail = request(first.ident, None, first.stdin)
            if first.abandoned:
                tail += encode(KILL, first.ident)
            self._write(tail)
        for cmd in list(self._commands.values()):
            if not cmd.sent:
                self._send(cmd)

    def _send(self, cmd: MuxCommand) -> None:
        cmd.sent = True
        self._write(request(cmd.ident, cmd.wire, cmd.stdin))

    def _write(self, data: bytes) -> None:
        """A write to a channel that ended is dropped: the reader sees the end and judges
        it (a program that never started is not a lost connection)."""
        assert self._process is not None
        with _suppress():
            self._process.stdin.write(data)

    async def _read(self, process: asyncssh.SSHClientProcess[Any]) -> None:
        reader = FrameReader(FROM_NODE, hello=HELLO)
        try:
            while data := await process.stdout.read(1 << 16):
                for frame in reader.feed(data):
                    self._dispatch(frame)
            reader.end()
        except FrameError as exc:
            self._fail(MuxLost(f"the node's command program broke the channel: {exc}"))
        except (OSError, asyncssh.Error) as exc:
            self._fail(MuxLost(_describe(exc)))
        except Exception as exc:  # never a hang: every pending command hears of it
            self._fail(MuxLost(f"the command channel failed: {exc!r}"))
            raise
        else:
            self._fail(await self._ended(process, reader))

    async def _read_said(self, process: asyncssh.SSHClientProcess[Any]) -> None:
        """The program's stderr, drained so it never stalls the channel; its end kept."""
        with _suppress():
            while data := await process.stderr.read(1 << 16):
                self._said = (self._said + data)[-2000:]

    async def _ended(self, process: asyncssh.SSHClientProcess[Any],
                     reader: FrameReader) -> Exception:
        """Why the channel ended: the program never started (MuxUnavailable: nothing ran),
        or it ended under its commands (MuxLost)."""
        with _suppress():
            await asyncio.wait_for(process.wait_closed(), 10)
        status = process.exit_status
        said = bytes(self._said).decode(errors="replace").strip()
        if self.conn.is_closed() or status is None:
            return MuxLost("the connection closed")
        words = f"exit {status}" + (f": {said[-300:]}" if said else "")
        if not reader.greeted:
            return MuxUnavailable(f"python3 did not start on the node ({words})")
        return MuxLost(f"the node's command program ended ({words})")

    def _dispatch(self, frame: Frame) -> None:
        if frame.kind == FAULT:
            raise FrameError("it refused a frame: " + frame.payload.decode(errors="replace"))
        cmd = self._commands.get(frame.ident)
        if cmd is None:
            return  # killed: its last words are dropped
        if frame.kind == EXIT:
            status = exit_status(frame)
            del self._commands[frame.ident]
            cmd.finish(status)
        else:
            cmd.took(frame.kind, frame.payload)

    def _fail(self, exc: Exception) -> None:
        """Every pending command ends with `exc`; the channel is closed (the program lets
        its running commands finish and then exits)."""
        if self._failure is None:
            self._failure = exc
        for cmd in self._commands.values():
            if not cmd.future.done():
                cmd.future.set_exception(self._failure)
        self._commands.clear()
        if self._process is not None:
            self._process.close()


def _suppress() -> contextlib.suppress:
    """Reading a channel that may end any way at all (its outcome is judged elsewhere)."""
    return contextlib.suppress(OSError, asyncssh.Error, TimeoutError)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
