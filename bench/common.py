"""Shared by the benchmarks: timing and figures (servers come from `testing`)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.synchronize import Event

import httpx
from PIL import Image

from testing.images import encode


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


async def throughput(
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], concurrency: int, requests: int
) -> float:
    """Requests per second of `send` (each answer must be a success) at `concurrency`."""
    async with httpx.AsyncClient(timeout=120) as client:

        async def call() -> None:
            (await send(client)).raise_for_status()

        _, per_second = await load(call, concurrency, requests)
    return per_second


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):7.2f} ms  p99 {percentile(latencies, 0.99):7.2f} ms  (n={len(latencies)})"
    )


def _thumbnail_loop(stop: Event) -> None:
    """What Immich's thumbnail jobs do, in a loop: decode a 12 MP photo, make a preview and a
    thumbnail, encode both."""
    photo = encode(Image.effect_noise((4000, 3000), 64).convert("RGB"), "JPEG", quality=90)
    while not stop.is_set():
        image = Image.open(io.BytesIO(photo))
        image.load()
        preview = image.copy()
        preview.thumbnail((1440, 1440))
        thumbnail = preview.copy()
        thumbnail.thumbnail((250, 250))
        encode(preview, "JPEG", quality=80)
        encode(thumbnail, "WEBP", quality=80)


@contextlib.contextmanager
def thumbnail_jobs(wanted: bool) -> Iterator[Callable[[], None]]:
    """`--busy`: yields a function that starts a process doing Immich's thumbnail work beside
    the measurement (when `wanted`); it stops when the block ends."""
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=_thumbnail_loop, args=(stop,), daemon=True) if wanted else None
    try:
        yield (busy.start if busy else lambda: None)
    finally:
        if busy and busy.is_alive():
            stop.set()
            busy.join(10)
