"""Shared by the benchmarks: timing and figures (servers come from `testing`)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def load(call: Callable[[], Awaitable[None]], concurrency: int, requests: int) -> tuple[list[float], float]:
    """Run `requests` calls with `concurrency` in flight; (latencies in ms, requests per second)."""
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, requests / (time.perf_counter() - started)


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):7.2f} ms  p99 {percentile(latencies, 0.99):7.2f} ms  (n={len(latencies)})"
    )
