"""Where inference runs: a bounded thread pool, one typed slot per model (loaded on first use or
at start, unloaded when idle), and admission that refuses work rather than queueing it forever.

The event loop never runs a model: tasks hand work to `Runtime.run`, which refuses new work
with 503 once `REQUEST_THREADS + MAX_QUEUED_REQUESTS` requests are already waiting or running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

from aio_common.errors import ApiError, Busy, ModelUnavailable
from mt_photos_ai import metrics
from mt_photos_ai.engines.clip import ClipEngine, load_clip
from mt_photos_ai.engines.ocr import OcrEngine, OcrLoader
from mt_photos_ai.memory import return_free_heap
from mt_photos_ai.sessions import ClipUnavailable
from mt_photos_ai.settings import Preloadable, Settings

log = logging.getLogger(__name__)

R = TypeVar("R")


class Engine(Protocol):
    def release(self) -> None: ...


E = TypeVar("E", bound=Engine)

# After a failed load, requests answer the remembered error this long before the next load is
# tried, so a burst of jobs does not retry a slow download each time.
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
        self.loaded_at: float | None = None  # time.time() of the last load
        self.load_seconds: float | None = None

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
                    metrics.MODEL_LOAD_FAILURES.labels(self.name).inc()
                    log.error("model %s unavailable", self.name, extra={"error": str(exc)})
                    raise ModelUnavailable(str(exc)) from None
                self._failure = None
                return_free_heap()  # what loading freed: the parsed files, unpacked weights
                self.loaded_at, self.load_seconds = time.time(), time.monotonic() - started
                metrics.MODEL_LOAD_SECONDS.labels(self.name).observe(self.load_seconds)
                metrics.MODEL_LOADED.labels(self.name).set(1)
                log.info("model %s loaded", self.name, extra={"seconds": round(self.load_seconds, 2)})
            return self._engine

    def unload(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                engine.release()
                engine = None  # the last reference but those of requests still running
                return_free_heap()
                metrics.MODEL_LOADED.labels(self.name).set(0)
                metrics.MODEL_UNLOADS.labels(self.name).inc()
                log.info("model %s unloaded", self.name)
            self._failure = None

    def state(self) -> dict[str, Any]:
        return {
            "loaded": self._engine is not None,
            "loadedAt": self.loaded_at,
            "loadSeconds": self.load_seconds,
            "error": self.error,
        }


class _Admitted:
    """One admitted request: queued until a thread takes it, then busy. A request whose caller
    left (cancelled, disconnected) before a thread took it is dropped, never run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "queued"
        metrics.POOL_QUEUED.inc()

    def run(self, work: Callable[[], R]) -> R:
        with self._lock:
            if self._state != "queued":
                raise asyncio.CancelledError
            self._state = "busy"
        metrics.POOL_QUEUED.dec()
        metrics.POOL_BUSY.inc()
        try:
            return work()
        finally:
            metrics.POOL_BUSY.dec()

    def abandon(self) -> None:
        with self._lock:
            if self._state != "queued":
                return
            self._state = "abandoned"
        metrics.POOL_QUEUED.dec()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        device = settings.resolved_device
        self.clip: ModelSlot[ClipEngine] = ModelSlot("clip", lambda: load_clip(settings), ClipUnavailable)
        self.ocr_loader = OcrLoader(settings)
        self.ocr: ModelSlot[OcrEngine] = ModelSlot("ocr", self.ocr_loader.load, RuntimeError)
        threads = settings.request_threads
        if device == "cuda" and settings.clip_batch_wait_ms > 0:
            threads += settings.clip_batch_size  # requests wait on a shared pass: let a batch fill
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="inference")
        self._capacity = threads + settings.max_queued_requests
        self._pending = 0
        # When the last request finished, while its working memory is still held; else None.
        self._idle_since: float | None = None

    def slot(self, name: Preloadable) -> ModelSlot[Any]:
        return self.clip if name == "clip" else self.ocr

    def ocr_for(self, asked: str | None) -> ModelSlot[OcrEngine]:
        """The OCR slot, serving Immich's model name `asked` (None: the one it serves now). A
        new name unloads the engine; the next use loads the new one (Immich asks one name at a
        time: its admin setting)."""
        if self.ocr_loader.ask(asked):
            self.ocr.unload()
        return self.ocr

    async def run(self, slot: ModelSlot[E], work: Callable[[E], R]) -> R:
        """Run `work(engine)` on the pool; 503 at once when the pool and its queue are full."""
        if self._pending >= self._capacity:
            metrics.POOL_REFUSED.inc()
            raise Busy(f"The AI service is busy: {self._pending} requests in progress; try again.")
        self._pending += 1
        admitted = _Admitted()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: admitted.run(lambda: work(slot.get()))
            )
        finally:
            self._pending -= 1
            admitted.abandon()
            if self._pending == 0:
                self._idle_since = time.monotonic()

    async def load(self, names: Iterable[Preloadable]) -> None:
        for name in names:
            try:
                await self.run(self.slot(name), lambda engine: None)
            except ApiError as exc:
                log.warning("preload of %s failed", name, extra={"error": exc.message})

    def unload_all(self) -> None:
        for slot in (self.clip, self.ocr):
            slot.unload()

    def unload_idle(self) -> None:
        """One pass of the MODEL_TTL loop: unload the models idle longer than the TTL."""
        now = time.monotonic()
        for slot in (self.clip, self.ocr):
            if slot.current is not None and now - slot.last_used > self.settings.model_ttl:
                slot.unload()

    def release_idle_memory(self) -> bool:
        """One pass of the IDLE_MEMORY_RELEASE_S loop: once no request has run for that long,
        shrink OCR's arenas and return the heap's free pages (the next request allocates what
        it needs again). True when it released."""
        idle_since = self._idle_since
        if self._pending or idle_since is None:
            return False
        if time.monotonic() - idle_since < self.settings.idle_memory_release_s:
            return False
        self._idle_since = None
        if (ocr := self.ocr.current) is not None:
            ocr.release_working_memory()
        return_free_heap()
        metrics.MEMORY_RELEASES.inc()
        return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.unload_all()
