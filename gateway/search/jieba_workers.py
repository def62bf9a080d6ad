"""jieba in worker processes: the gateway's event loop never runs it, nor loads its dictionary
(about a second, much of it holding the GIL), and a backfill splits on every core.

One long-lived worker per gateway process serves queries and the batches of ordinary syncing
(its dictionary stays loaded, about 70 MB); the batches of a long pass (a backfill) are split
over a pool of INDEX_WORKERS processes that lives only during such a pass, so it costs memory
only then.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

from gateway.search.tokenize import QueryRun, jieba_documents, jieba_query, load_jieba

CHUNK = 250

_started = threading.Lock()
_resident: ProcessPoolExecutor | None = None


def _pool(size: int) -> ProcessPoolExecutor:
    # spawn: no fork of a process that runs threads
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"), initializer=load_jieba)


def _resident_worker() -> ProcessPoolExecutor:
    """The one long-lived worker of this process (stopped at exit by concurrent.futures)."""
    global _resident
    with _started:
        if _resident is None:
            _resident = _pool(1)
        return _resident


class JiebaWorkers:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._one = _resident_worker()
        self._many: ProcessPoolExecutor | None = None

    async def query(self, text: str) -> list[QueryRun]:
        return await asyncio.get_running_loop().run_in_executor(self._one, jieba_query, text)

    async def documents(self, texts: list[str], *, spread: bool) -> list[tuple[str, str]]:
        """jieba's documents of `texts`, with their grams: on the query worker, or over the pool
        when `spread` (a long pass: starting the pool costs a second per process, worth it only
        then)."""
        loop = asyncio.get_running_loop()
        if not spread or self.workers <= 1:
            return await loop.run_in_executor(self._one, jieba_documents, texts)
        if self._many is None:
            self._many = _pool(self.workers)
        chunks = [texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK)]
        done = await asyncio.gather(*(loop.run_in_executor(self._many, jieba_documents, c) for c in chunks))
        return [document for chunk in done for document in chunk]

    def idle(self) -> None:
        """No large batch is coming (a pass ended): let the pool's processes go."""
        if self._many is not None:
            self._many.shutdown(wait=False, cancel_futures=True)
            self._many = None
