"""Supervised background loops: one step repeated forever, never dying silently.

A step that raises is retried after an exponential backoff (the interval doubled per consecutive
failure, up to `max_backoff`). An `expected` failure (another service not up yet, or down) is one
WARNING line each time its message changes; any other is logged with its traceback. The last
success and the last error (until the next success) are kept for /health; `wake()` runs the next
step now; `stop()` cancels the loop and waits for it to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Loop:
    name: str
    step: Callable[[], Awaitable[Any]]
    interval: float
    max_backoff: float = 300.0
    expected: tuple[type[BaseException], ...] = ()
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _woken: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def wake(self) -> None:
        """Run the next step without waiting out the interval."""
        self._woken.set()

    def delay(self) -> float:
        """Seconds until the next step: the interval, doubled per consecutive failure."""
        if not self.failures:
            return self.interval
        return min(self.max_backoff, self.interval * (1 << min(self.failures, 20)))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop outlives any one failure
                self.failures += 1
                error = f"{type(exc).__name__}: {exc}"
                retry = {"retry_in_s": round(self.delay(), 1)}
                if not isinstance(exc, self.expected):
                    log.exception("background loop %s failed; retrying", self.name, extra=retry)
                elif error != self.last_error:
                    log.warning("%s waits: %s", self.name, exc, extra=retry)
                self.last_error = error
                self.last_error_at = datetime.now(timezone.utc)
            else:
                if self.failures:
                    log.info("%s recovered", self.name)
                self.failures = 0
                self.last_success = datetime.now(timezone.utc)
                self.last_error = self.last_error_at = None
            log.debug("loop step", extra={"loop": self.name, "seconds": round(time.monotonic() - started, 3)})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.delay())
            self._woken.clear()

    def state(self) -> dict[str, Any]:
        return {
            "running": self._task is not None and not self._task.done(),
            "lastSuccess": self.last_success.isoformat() if self.last_success else None,
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at.isoformat() if self.last_error_at else None,
            "consecutiveFailures": self.failures,
        }


class Loops:
    """The loops of one service, started and stopped together."""

    def __init__(self) -> None:
        self.loops: list[Loop] = []

    def add(
        self,
        name: str,
        step: Callable[[], Awaitable[Any]],
        interval: float,
        max_backoff: float = 300.0,
        expected: tuple[type[BaseException], ...] = (),
    ) -> Loop:
        loop = Loop(name, step, interval, max_backoff, expected)
        self.loops.append(loop)
        return loop

    def start(self) -> None:
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        await asyncio.gather(*(loop.stop() for loop in self.loops))

    def state(self) -> dict[str, Any]:
        return {loop.name: loop.state() for loop in self.loops}
