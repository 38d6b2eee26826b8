"""benchmarks/relay.py on loopback: bytes pass unchanged, in order, each way at least the
delay later (a lower bound only: a slow machine may add, never take away), and a new
connection waits one round trip first (the TCP handshake of a real link)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def relay_module():
    path = ROOT / "benchmarks" / "relay.py"
    spec = importlib.util.spec_from_file_location("omw_bench_relay", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def exchange(delay: float) -> tuple[list[bytes], list[float]]:
    relay_mod = relay_module()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = relay_mod.DelayRelay({"x": ("127.0.0.1", port)}, delay)
    ports = await relay.start()
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["x"])
    got, marks = [], []
    for i in range(3):
        sent = time.perf_counter()
        payload = bytes([i]) * (70000 + i)  # more than one chunk
        writer.write(payload)
        await writer.drain()
        got.append(await reader.readexactly(len(payload)))
        marks.append(time.perf_counter() - sent)
    marks[0] = time.perf_counter() - start - sum(marks[1:])  # the connect included
    writer.close()
    await relay.close()
    server.close()
    return got, marks


def test_bytes_pass_unchanged_and_each_round_trip_costs_the_delay_twice():
    got, marks = asyncio.run(exchange(0.05))
    assert got == [bytes([i]) * (70000 + i) for i in range(3)]
    assert marks[0] >= 0.2 - 0.005  # handshake round trip + the first exchange
    assert all(m >= 0.1 - 0.005 for m in marks[1:])


def test_route_syntax():
    relay_mod = relay_module()
    assert relay_mod.parse_route("n1=198.18.0.11:22") == ("n1", ("198.18.0.11", 22))
    with pytest.raises(Exception, match="NAME=HOST:PORT"):
        relay_mod.parse_route("n1=198.18.0.11")
