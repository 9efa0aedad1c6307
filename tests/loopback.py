"""An HTTP/1.1 server on loopback in a thread of its own (its own event loop), so that the service's
FHIR client meets real sockets whatever loop the test runs in. Subclasses answer one request at a
time per connection (keep-alive) in `_request`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self


class LoopbackServer:
    def __init__(self) -> None:
        self.open_connections = 0
        self.connections_made = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @contextmanager
    def running(self) -> Iterator[Self]:
        ready = threading.Event()
        thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        thread.start()
        assert ready.wait(10), f"{type(self).__name__} did not start"
        try:
            yield self
        finally:
            assert self._loop is not None and self._stop is not None
            self._loop.call_soon_threadsafe(self._stop.set)
            thread.join(10)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            self.open_connections += 1
            self.connections_made += 1
            try:
                while await self._request(reader, writer):
                    pass
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                self.open_connections -= 1
                connections.discard(task)
                writer.close()

        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(connections):  # a handler still stalling
                task.cancel()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is over."""
        raise NotImplementedError
