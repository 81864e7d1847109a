"""A slow peer: a TCP proxy in front of a server (the simulator's Modbus server, a broker) that delays every answer."""

from __future__ import annotations

import asyncio
import random
from contextlib import suppress


class SlowProxy:
    """Forwards requests at once and each answer after `delay_s` (a range), keeping their order."""

    def __init__(self, upstream_port: int, delay_s: tuple[float, float] = (0.10, 0.15), seed: int = 1) -> None:
        self.upstream_port, self.delay_s = upstream_port, delay_s
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    async def __aenter__(self) -> "SlowProxy":
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        answers: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for coro in (self._pump(reader, up_writer), self._collect(up_reader, answers, loop),
                     self._deliver(answers, writer, loop)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _collect(self, reader: asyncio.StreamReader, answers: asyncio.Queue, loop) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(4096):
                await answers.put((loop.time() + self._rng.uniform(*self.delay_s), data))

    @staticmethod
    async def _deliver(answers: asyncio.Queue, writer: asyncio.StreamWriter, loop) -> None:
        with suppress(ConnectionError):
            while True:
                due, data = await answers.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
