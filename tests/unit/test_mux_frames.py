"""The command channel's frames (remote.mux), pure: encode/decode, pieces, bad input."""

from __future__ import annotations

import ast
import base64
import re
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omwizard.remote import mux
from omwizard.remote.mux import (
    EOF,
    ERR,
    EXIT,
    FAULT,
    FROM_NODE,
    HEADER,
    HELLO,
    IN,
    KILL,
    OUT,
    START,
    TO_NODE,
    Frame,
    FrameError,
    FrameReader,
    LineSplitter,
    encode,
    exit_status,
    request,
)


def test_a_frame_round_trips() -> None:
    data = encode(OUT, 7, b"\x00\xffbinary\n") + encode(EXIT, 7, mux.STATUS.pack(-9))
    frames = FrameReader(FROM_NODE).feed(data)
    assert frames == [Frame(OUT, 7, b"\x00\xffbinary\n"), Frame(EXIT, 7, b"\xff\xff\xff\xf7")]
    assert exit_status(frames[1]) == -9


@given(st.lists(st.tuples(st.sampled_from(sorted(FROM_NODE)), st.integers(0, 2**32 - 1),
                          st.binary(max_size=300)), max_size=8),
       st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_frames_survive_any_cut_of_the_stream(frames: list[tuple[int, int, bytes]],
                                              cuts: list[int]) -> None:
    """The channel hands the reader pieces of any size: the frames come out whole, in order."""
    stream = HELLO + b"".join(encode(k, i, p) for k, i, p in frames)
    reader = FrameReader(FROM_NODE, hello=HELLO)
    got: list[Frame] = []
    at = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        got += reader.feed(stream[at:at + cut])
        at += cut
        if at >= len(stream):
            break
    got += reader.feed(stream[at:])
    reader.end()
    assert got == [Frame(k, i, p) for k, i, p in frames]
    assert reader.greeted and reader.noise == b""


def test_a_request_is_start_stdin_in_chunks_then_eof() -> None:
    stdin = bytes(range(256)) * 2049  # over two chunks
    frames = FrameReader(TO_NODE).feed(request(3, "cat > /tmp/x", stdin))
    assert [f.kind for f in frames] == [START, IN, IN, IN, EOF]
    assert {f.ident for f in frames} == {3}
    assert frames[0].payload == b"cat > /tmp/x"
    assert b"".join(f.payload for f in frames[1:-1]) == stdin
    assert all(len(f.payload) <= mux.STDIN_CHUNK for f in frames)
    # the first command's wire went in argv: its request is its stdin and EOF only
    assert [f.kind for f in FrameReader(TO_NODE).feed(request(1, None, None))] == [EOF]


def test_a_login_scripts_chatter_before_the_greeting_is_skipped() -> None:
    reader = FrameReader(FROM_NODE, hello=HELLO)
    assert reader.feed(b"Welcome to node 1\n" + HELLO[:4]) == []
    assert not reader.greeted
    assert reader.feed(HELLO[4:] + encode(ERR, 1, b"e")) == [Frame(ERR, 1, b"e")]
    assert reader.noise == b"Welcome to node 1\n"


def test_bad_input_is_an_error_never_a_wait() -> None:
    with pytest.raises(FrameError, match="unknown frame kind"):
        FrameReader(FROM_NODE).feed(encode(START, 1, b"x"))  # a request is not an answer
    with pytest.raises(FrameError, match="over the limit"):
        FrameReader(FROM_NODE).feed(HEADER.pack(OUT, 1, mux.MAX_PAYLOAD + 1))
    with pytest.raises(FrameError, match="over the limit"):
        encode(IN, 1, bytes(mux.MAX_PAYLOAD + 1))
    with pytest.raises(FrameError, match="no greeting"):
        FrameReader(FROM_NODE, hello=HELLO).feed(b"x" * (mux.NOISE_LIMIT + 100))
    cut = FrameReader(FROM_NODE)
    assert cut.feed(encode(OUT, 1, b"hello")[:-2]) == []
    with pytest.raises(FrameError, match="ended inside a frame"):
        cut.end()
    with pytest.raises(FrameError, match="exit frame of 2 bytes"):
        exit_status(Frame(EXIT, 1, b"\x00\x01"))


def test_lines_come_whole_as_a_stream_iterator_gives_them() -> None:
    split = LineSplitter()
    assert split.feed(b"list") == []
    assert split.feed(b"ening on eth0\nsecond\nthi") == ["listening on eth0", "second"]
    assert split.feed("rd é\n".encode()) == ["third é"]
    assert split.feed(b"\n\xff end") == [""]
    assert split.flush() == ["\ufffd end"]
    assert split.flush() == []


def test_the_node_program_is_python_3_6_and_speaks_these_kinds() -> None:
    ast.parse(mux.PROGRAM, feature_version=(3, 6))
    assert "f\"" not in mux.PROGRAM and "f'" not in mux.PROGRAM  # no f-strings (3.6 has
    # them, but keep the program plain) and every kind it names is one of ours
    program_kinds = {int(k) for k in re.findall(r"\b(\d{2,3})\b", mux.PROGRAM)
                     if 60 <= int(k) <= 125}
    assert program_kinds == set(TO_NODE | FROM_NODE)
    assert {START, IN, EOF, KILL} == {83, 73, 69, 75}
    assert {OUT, ERR, EXIT, FAULT} == {111, 101, 120, 70}
    assert repr(HELLO) in mux.PROGRAM and str(mux.MAX_PAYLOAD) in mux.PROGRAM


def test_the_first_wire_rides_in_argv_quoted() -> None:
    line = mux.program_command("echo 'it''s' $HOME")
    words = shlex.split(line)
    assert words[:5] == ["exec", "python3", "-I", "-c", mux.PROGRAM]
    assert base64.b64decode(words[5]).decode() == "echo 'it''s' $HOME"
    assert shlex.split(mux.program_command(None)) == words[:5]
