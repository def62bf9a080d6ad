"""One URL in front of several servers, as a Kubernetes Service is: each new TCP connection goes
to the next ready endpoint in turn (kube-proxy chooses per connection, never per request), and
a connection whose endpoint is gone is closed at once, as an endpoint that died resets it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from testing.servers import free_port


@dataclass
class Endpoints:
    """The servers behind the Service (URLs); a test edits `ready` as a rollout would."""

    ready: list[str]
    _turn: int = 0

    def next(self) -> str | None:
        if not self.ready:
            return None
        self._turn += 1
        return self.ready[self._turn % len(self.ready)]


@contextlib.contextmanager
def service(endpoints: Endpoints) -> Iterator[str]:
    """Serve `endpoints` behind one URL on 127.0.0.1; yields it."""
    loop = asyncio.new_event_loop()
    port = free_port()
    started = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def connection(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        chosen = endpoints.next()
        try:
            if chosen is None:
                raise ConnectionRefusedError
            target = urlsplit(chosen)
            upstream_reader, upstream_writer = await asyncio.open_connection(target.hostname, target.port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    stop = asyncio.Event()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port)
        started.set()
        async with server:
            await stop.wait()
            server.close()
        piping = asyncio.all_tasks() - {asyncio.current_task()}  # connections still open
        for task in piping:
            task.cancel()
        await asyncio.gather(*piping, return_exceptions=True)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the service proxy did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
