"""Where inference runs: a bounded thread pool, lazy or eager model loading, idle unloading.

The event loop never runs a model: routes hand work to `Runtime.run`, which refuses new work
with 503 once `REQUEST_THREADS + MAX_QUEUED_REQUESTS` requests are already waiting or running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from aio_common.errors import ApiError, Busy, ModelUnavailable
from mt_photos_ai.settings import Settings

log = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R")

# After a failed load (missing weights), requests answer the remembered error this long
# before the next load is tried, so a burst of jobs does not retry a slow download each time.
RETRY_LOAD_AFTER_S = 60.0


class ModelSlot(Generic[E]):
    """One engine: loaded on first use (in a worker thread), unloadable, load errors remembered."""

    def __init__(self, name: str, factory: Callable[[], E], unavailable: type[Exception]) -> None:
        self.name = name
        self._factory = factory
        self._unavailable = unavailable
        self._lock = threading.Lock()
        self._engine: E | None = None
        self._failure: tuple[float, str] | None = None
        self.last_used = 0.0

    @property
    def current(self) -> E | None:
        """The loaded engine, or None; never loads."""
        return self._engine

    @property
    def error(self) -> str | None:
        return self._failure[1] if self._failure else None

    def get(self) -> E:
        self.last_used = time.monotonic()
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                if self._failure and time.monotonic() - self._failure[0] < RETRY_LOAD_AFTER_S:
                    raise ModelUnavailable(self._failure[1])
                started = time.monotonic()
                try:
                    self._engine = self._factory()
                except self._unavailable as exc:
                    self._failure = (time.monotonic(), str(exc))
                    log.error("model %s unavailable", self.name, extra={"error": str(exc)})
                    raise ModelUnavailable(str(exc)) from None
                self._failure = None
                log.info("model %s loaded", self.name, extra={"seconds": round(time.monotonic() - started, 2)})
            return self._engine

    def unload(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine = None
                log.info("model %s unloaded", self.name)
            self._failure = None


class Runtime:
    def __init__(self, settings: Settings, slots: dict[str, ModelSlot[Any]]) -> None:
        self.settings = settings
        self.slots = slots
        self._executor = ThreadPoolExecutor(settings.request_threads, thread_name_prefix="inference")
        self._capacity = settings.request_threads + settings.max_queued_requests
        self._pending = 0

    async def run(self, slot: str, work: Callable[[Any], R]) -> R:
        """Run `work(engine)` on the pool; 503 at once when the pool and its queue are full."""
        if self._pending >= self._capacity:
            raise Busy(f"The AI service is busy: {self._pending} requests in progress; try again.")
        self._pending += 1
        try:
            model = self.slots[slot]
            return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: work(model.get()))
        finally:
            self._pending -= 1

    async def load(self, names: list[str]) -> None:
        for name in names:
            try:
                await self.run(name, lambda engine: None)
            except ApiError as exc:
                log.warning("preload of %s failed", name, extra={"error": exc.message})

    def unload_all(self) -> None:
        for slot in self.slots.values():
            slot.unload()

    async def unload_idle_forever(self) -> None:
        ttl = self.settings.model_ttl
        while True:
            await asyncio.sleep(max(1.0, ttl / 4))
            now = time.monotonic()
            for slot in self.slots.values():
                if slot.current is not None and now - slot.last_used > ttl:
                    slot.unload()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
