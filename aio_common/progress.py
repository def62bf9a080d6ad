"""Progress of long work (the index backfill, re-processing every asset): done / total, rate and
time left. On a terminal one line is redrawn in place; elsewhere (a container's log) a plain
log line is written every LOG_EVERY_S seconds and at the end."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

LOG_EVERY_S = 10.0
DRAW_EVERY_S = 0.25


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        *,
        log: logging.Logger,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = max(total, 0)
        self.unit = unit
        self.done = 0
        self._log = log
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._clock = clock
        self._started = self._last = self._clock()

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def update(self, done: int) -> None:
        self.done = done
        now = self._clock()
        if now - self._last >= (DRAW_EVERY_S if self._tty else LOG_EVERY_S):
            self._last = now
            self._report(final=False)

    def finish(self) -> None:
        self._report(final=True)

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = self.done / elapsed
        shown = f"{self.label}: {self.done:,}"
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f", {_duration(left / rate)} left" if rate > 0 and left else ""
            shown += f"/{self.total:,} {self.unit} ({min(self.done / self.total, 1):.0%}){eta}"
        else:
            shown += f" {self.unit}"
        return f"{shown}, {rate:,.0f} {self.unit}/s"

    def _report(self, *, final: bool) -> None:
        if self._tty:
            self._stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
            self._stream.flush()
        else:
            self._log.info(self.line())


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
