"""Waiting for a condition, never for a guessed delay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    detail: Callable[[], str] = lambda: "",
) -> T:
    """Poll `condition` until it returns something truthy (returned); a timeout names `what`,
    followed by `detail()` (a log, for example)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}\n{detail()}".rstrip())
        time.sleep(interval)


def a_step_begun_after_now(health: Callable[[], dict[str, Any]], loop: str, timeout: float) -> None:
    """Wait until a step of the background `loop` that began after this call has ended (read
    from /health's `loops`): two steps end after now, and the second began after now."""
    for _ in range(2):
        since = datetime.now(timezone.utc)

        def ended(since: datetime = since) -> bool:
            last = health()["loops"][loop]["lastSuccess"]
            return last is not None and datetime.fromisoformat(last) > since

        eventually(ended, timeout, f"a step of the {loop} loop", interval=0.02)
