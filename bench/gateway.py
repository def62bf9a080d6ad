"""Gateway overhead: /predict through the gateway vs straight to a stand-in backend.

Both paths are measured in the same run, alternating, at concurrency 1 and 32, against a
stand-in that answers at once (the gateway's cost laid bare) and one that takes 30 ms like an
inference; figures are the gateway's added latency (p50, p99), its throughput as a share of the
direct path, its CPU time per request, and its resident memory under that load.
The instant stand-in runs twice: with client, gateway and stand-in sharing every core (the
gateway's CPU then comes out of the others' share, so throughput falls by its cost), and with
the gateway on a core of its own, as in a deployment where it is a container beside the others.
Run: `.venv/bin/python -m bench.gateway`
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
from collections.abc import Iterator

import aiohttp
import numpy as np
import psutil
from PIL import Image, ImageDraw, ImageFilter

from aio_common.protocol import predict_body
from bench.common import load, summary
from testing.ml import OCR_ENTRIES
from testing.servers import server_process

ROUNDS = 3
REQUESTS = {1: 300, 32: 1500}
# (stand-in delay in ms, gateway on a core of its own)
SCENARIOS = ((0, False), (0, True), (30, False))


def preview() -> bytes:
    """A photo-like JPEG of Immich's preview size (1440 px long side): smooth gradients and
    shapes with mild sensor noise, about 300 kB like a real preview (pure noise would be 850 kB)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1080, 0:1440]
    image = Image.fromarray(
        np.stack([x / 1440 * 200 + 30, y / 1080 * 150 + 50, (x + y) / 2520 * 180 + 40], -1).astype("uint8")
    )
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        left, top = rng.integers(0, 1300), rng.integers(0, 1000)
        size = rng.integers(20, 300, 2)
        draw.ellipse((left, top, left + size[0], top + size[1]), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(2))).astype(np.int16)
    pixels += rng.normal(0, 6, pixels.shape).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


async def run() -> None:
    body, content_type = predict_body(OCR_ENTRIES, image=preview())
    print(f"request body: {len(body) / 1024:.0f} KiB (OCR entries + a 1440x1080 photo-like JPEG)")
    for delay, own_core in SCENARIOS:
        cores = "the gateway on a core of its own" if own_core else "all sharing every core"
        print(f"\n=== stand-in backend answering after {delay} ms; {cores} ===")
        await scenario(body, content_type, delay, own_core)


async def scenario(body: bytes, content_type: str, delay: int, own_core: bool) -> None:
    with server_process("bench.standin_backend", {"DELAY_MS": str(delay)}, "PORT") as (backend, backend_pid):
        env = {"MT_PHOTOS_API": backend, "IMMICH_API": backend, "DB_PORT": "1", "HEALTH_INTERVAL": "5"}
        gateway_server = server_process("gateway", env, "PORT")
        with gateway_server as (gateway, gateway_pid), pinned(gateway_pid, backend_pid, own_core):
            memory = psutil.Process(gateway_pid)
            peak = 0
            # aiohttp as the load generator: httpx alone costs more than the gateway does.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as client:

                def caller(url: str):
                    async def call() -> None:
                        headers = {"content-type": content_type}
                        async with client.post(f"{url}/predict", data=body, headers=headers) as response:
                            assert response.status == 200, await response.text()
                            await response.read()

                    return call

                for concurrency, requests in REQUESTS.items():
                    direct: list[float] = []
                    through: list[float] = []
                    rates = {"direct": [], "gateway": []}
                    await load(caller(gateway), concurrency, 50)  # warm-up
                    cpu = 0.0
                    for _ in range(ROUNDS):
                        for name, url, sink in (("direct", backend, direct), ("gateway", gateway, through)):
                            before = sum(memory.cpu_times()[:2])
                            latencies, rate = await load(caller(url), concurrency, requests // ROUNDS)
                            if name == "gateway":
                                cpu += sum(memory.cpu_times()[:2]) - before
                            sink.extend(latencies)
                            rates[name].append(rate)
                            peak = max(peak, memory.memory_info().rss)
                    added = statistics.median(through) - statistics.median(direct)
                    share = statistics.median(rates["gateway"]) / statistics.median(rates["direct"])
                    print(f"\nconcurrency {concurrency}")
                    print(f"  direct : {summary(direct)}  {statistics.median(rates['direct']):7.1f} req/s")
                    print(f"  gateway: {summary(through)}  {statistics.median(rates['gateway']):7.1f} req/s")
                    print(f"  added at p50: {added:.2f} ms; gateway throughput = {share:.1%} of direct")
                    print(f"  gateway CPU per request: {cpu / len(through) * 1000:.2f} ms")
            print(f"\ngateway resident memory, peak under load: {peak / 2**20:.0f} MiB")


@contextlib.contextmanager
def pinned(gateway_pid: int, backend_pid: int, own_core: bool) -> Iterator[None]:
    """Give the gateway the last core and the client (this process) and the stand-in the rest."""
    if not own_core:
        yield
        return
    everything = os.sched_getaffinity(0)
    if len(everything) < 2:
        raise RuntimeError("the own-core scenario needs at least two cores")
    gateway_core = max(everything)
    for pid in (0, backend_pid):
        os.sched_setaffinity(pid, everything - {gateway_core})
    os.sched_setaffinity(gateway_pid, {gateway_core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, everything)


if __name__ == "__main__":
    asyncio.run(run())
