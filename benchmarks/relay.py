#!/usr/bin/env python3
"""A delaying TCP relay: what a link with a round trip of 2 x delay does to omwizard.

Each route listens on 127.0.0.1 (a port of its own) and relays to one node's sshd. Every
chunk is held `delay` seconds in each direction, in order, so a round trip costs 2 x delay
whatever the bandwidth; a new connection also waits one round trip first (the TCP handshake
a real link would cost). The benchmark starts it as a subprocess (no GIL shared with the
engine it measures):

    python3 benchmarks/relay.py --delay-ms 50 n1=198.18.0.11:22 n2=198.18.0.12:22
    # prints one line: READY {"n1": 40123, "n2": 40125}; serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

CHUNK = 65536


class DelayRelay:
    """Routes name -> (host, port), each served on a loopback port with a fixed delay."""

    def __init__(self, routes: dict[str, tuple[str, int]], delay: float) -> None:
        self.routes = routes
        self.delay = delay
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self) -> dict[str, int]:
        for name, target in self.routes.items():
            server = await asyncio.start_server(self._handler(target), "127.0.0.1", 0)
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        return self.ports

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    def _handler(self, target: tuple[str, int]) -> Callable[
            [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._connection(reader, writer, target)
            except asyncio.CancelledError:  # the relay is closing: end quietly
                writer.close()
        return handle

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          target: tuple[str, int]) -> None:
        await asyncio.sleep(2 * self.delay)  # the TCP handshake's round trip
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Forward src to dst, each chunk `delay` after it was read, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if dst.can_write_eof():
                        dst.write_eof()
                    else:
                        dst.close()
                    return
                dst.write(data)
                await dst.drain()

        sender = asyncio.ensure_future(send())
        try:
            while data := await src.read(CHUNK):
                queue.put_nowait((loop.time() + self.delay, data))
        except OSError:
            pass
        queue.put_nowait((loop.time() + self.delay, None))
        try:
            await sender
        except OSError:
            pass
        finally:
            dst.close()


def parse_route(text: str) -> tuple[str, tuple[str, int]]:
    name, _, target = text.partition("=")
    host, _, port = target.rpartition(":")
    if not name or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=HOST:PORT")
    return name, (host, int(port))


async def serve(routes: dict[str, tuple[str, int]], delay: float) -> None:
    relay = DelayRelay(routes, delay)
    ports = await relay.start()
    print("READY " + json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    await relay.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("routes", nargs="+", type=parse_route, help="NAME=HOST:PORT")
    args = parser.parse_args(argv)
    asyncio.run(serve(dict(args.routes), args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
