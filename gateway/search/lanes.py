"""Batches of a long index pass applied on several database connections at once, so a backfill
uses every core the database has (folding the text and parsing it with zhparser are CPU work).

Each asset always goes to the same lane, and a lane applies its parts in the order they came,
so one asset's writes keep feed order: a later read of its text never loses to an earlier one.
A batch is done when every lane has committed its part.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

from gateway.pg import Connection

Apply = Callable[[Connection, list[uuid.UUID]], Awaitable[int]]


class Lanes:
    def __init__(self, conns: Sequence[Connection], apply: Apply) -> None:
        self._conns = conns
        self._apply = apply
        self._tails: list[asyncio.Task[int] | None] = [None] * len(conns)
        self._running: set[asyncio.Task[int]] = set()

    def submit(self, ids: list[uuid.UUID]) -> asyncio.Future[list[int]]:
        """Start applying `ids`; the future holds each lane's rows written."""
        parts: list[list[uuid.UUID]] = [[] for _ in self._conns]
        for asset_id in ids:
            parts[asset_id.int % len(parts)].append(asset_id)
        tasks = []
        for lane, part in enumerate(parts):
            task = asyncio.create_task(self._run(lane, self._tails[lane], part))
            self._tails[lane] = task
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            tasks.append(task)
        batch = asyncio.gather(*tasks)
        # The caller awaits batches in order and the first failure ends the pass: the batches
        # after it fail too, quietly (read here, so asyncio does not report them as lost).
        batch.add_done_callback(lambda done: done.cancelled() or done.exception())
        return batch

    async def _run(self, lane: int, previous: asyncio.Task[int] | None, part: list[uuid.UUID]) -> int:
        if previous is not None:
            await previous  # a failed part stops the parts after it on its lane
        if not part:
            return 0
        conn = self._conns[lane]
        async with conn.transaction():
            return await self._apply(conn, part)

    async def close(self) -> None:
        """Stop what is still running (after a failure), before the connections go back."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
