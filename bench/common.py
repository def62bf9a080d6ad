"""Shared by the benchmarks: servers in their own processes, timing, and figures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx

from tests.helpers import free_port


@contextlib.contextmanager
def server_process(module: str, env: dict[str, str], port_setting: str) -> Iterator[tuple[str, int]]:
    """Run `python -m module` with `env` on a free port; yields (URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env={**os.environ, **env, port_setting: str(port), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{module} did not start")
        time.sleep(0.1)
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


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
