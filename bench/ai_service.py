"""AI service overhead and responsiveness.

In one run, alternating: OCR of a 1440 px preview with Chinese and English text, CLIP visual of
that preview and CLIP textual of a Chinese query, each through HTTP (/predict on a real uvicorn
server in its own process) vs the same engines called directly in another process of their own.
The direct side runs them on the service's runtime (the same settings, loading and inference
threads; decode included), so the ratio is what HTTP and the routes add. A call on a process's
main thread is not the baseline: a service cannot run inference on its event loop's thread, and
OCR took 30-60% longer on a worker thread than on the main thread of one process once CLIP was
loaded (5-10% without it): glibc gives the main thread a heap arena of its own.
Then /ping latency while OCR requests saturate both cores, and the service's resident memory
with both models loaded. CLIP uses a randomly initialised ViT-B-16 (the default
model; the same compute as the real weights). Run: `.venv/bin/python -m bench.ai_service`
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil

from aio_common.protocol import predict_body
from bench.common import percentile, summary
from mt_photos_ai.app import build_runtime
from mt_photos_ai.engines.clip import create_random_checkpoint
from mt_photos_ai.engines.ocr import OcrOptions
from mt_photos_ai.images import decode_image
from mt_photos_ai.settings import Settings
from testing.images import text_image
from testing.ml import OCR_ENTRIES, clip_entries
from testing.servers import server_process

ROUNDS = {"ocr": 16, "clip visual": 16, "clip textual": 30}
LINES = ["增值税电子普通发票", "Hello World 2024", "北京市朝阳区建国路88号", "咖啡 Coffee ¥28.00", "欢迎光临"]


def engine_worker(conn: Connection, env: dict[str, str], image: bytes, query: str) -> None:
    """The baseline: the same engines on the service's own runtime (loaded and run on its
    inference threads), called directly instead of through HTTP; times each call."""
    os.environ.update(env)
    settings = Settings()
    limits = {"max_pixels": settings.max_image_pixels, "max_side": settings.max_image_side}
    calls: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "ocr": ("ocr", lambda engine: engine.read(decode_image(image, **limits).image, OcrOptions())),
        "clip visual": (
            "clip",
            lambda engine: engine.encode_images([decode_image(image, min_side=engine.resolution, **limits).image]),
        ),
        "clip textual": ("clip", lambda engine: engine.encode_texts([query])),
    }

    async def serve() -> None:
        runtime = build_runtime(settings)
        await runtime.load(settings.preload)
        conn.send("ready")
        while (task := conn.recv()) is not None:
            slot, work = calls[task]
            started = time.perf_counter()
            await runtime.run(slot, work)
            conn.send((time.perf_counter() - started) * 1000)
        runtime.shutdown()

    asyncio.run(serve())


def main() -> None:
    image = text_image(LINES, size=(1440, 1080), font_size=44).data
    query = "一只猫在沙发上睡觉"
    requests = {
        "ocr": predict_body(OCR_ENTRIES, image=image),
        "clip visual": predict_body(clip_entries("visual", "ViT-B-16__openai"), image=image),
        "clip textual": predict_body(clip_entries("textual", "ViT-B-16__openai"), text=query),
    }
    with tempfile.TemporaryDirectory() as root:
        create_random_checkpoint("ViT-B-16", Path(root))
        env = {"CLIP_MODEL": "ViT-B-16", "CLIP_DOWNLOAD_ROOT": root, "DEVICE": "cpu", "PRELOAD": "clip,ocr"}
        spawn = multiprocessing.get_context("spawn")
        conn, child_end = spawn.Pipe()
        worker = spawn.Process(target=engine_worker, args=(child_end, env, image, query))
        worker.start()
        assert conn.recv() == "ready"

        def direct(task: str) -> float:
            conn.send(task)
            return conn.recv()

        with server_process("mt_photos_ai", env, "HTTP_PORT") as (url, pid), httpx.Client(timeout=120) as client:
            headers = {"api-key": "mt_photos_ai_extra"}

            def over_http(task: str) -> float:
                body, content_type = requests[task]
                started = time.perf_counter()
                response = client.post(
                    f"{url}/predict", content=body, headers={**headers, "content-type": content_type}
                )
                assert response.status_code == 200, response.text
                return (time.perf_counter() - started) * 1000

            for task, rounds in ROUNDS.items():
                over_http(task)
                direct(task)  # warm-up both
                http_times, direct_times = [], []
                for round_ in range(rounds):
                    pairs = [(over_http, http_times), (direct, direct_times)]
                    for call, sink in pairs if round_ % 2 else pairs[::-1]:  # each goes first half the time
                        # Both processes hold thread pools that spin a while after work: let
                        # them settle so neither side runs against the other's spinning threads.
                        time.sleep(0.3)
                        sink.append(call(task))
                ratio = statistics.median(http_times) / statistics.median(direct_times)
                print(f"\n{task}")
                print(f"  HTTP  : {summary(http_times)}")
                print(f"  direct: {summary(direct_times)}")
                print(f"  ratio HTTP / direct (medians): {ratio:.3f}")
            conn.send(None)
            worker.join()
            rss = psutil.Process(pid).memory_info().rss / 2**20
            print(f"\nservice resident memory with both models loaded: {rss:.0f} MiB")
            asyncio.run(ping_under_load(url, headers, requests["ocr"]))


async def ping_under_load(url: str, headers: dict[str, str], ocr_request: tuple[bytes, str]) -> None:
    body, content_type = ocr_request
    busy = True
    async with httpx.AsyncClient(timeout=120) as client:

        async def saturate() -> None:
            while busy:
                await client.post(f"{url}/predict", content=body, headers={**headers, "content-type": content_type})

        loaders = [asyncio.create_task(saturate()) for _ in range(4)]
        await asyncio.sleep(2)  # let inference occupy both cores
        pings = []
        for _ in range(100):
            started = time.perf_counter()
            response = await client.get(f"{url}/ping")
            pings.append((time.perf_counter() - started) * 1000)
            assert response.text == "pong"
            await asyncio.sleep(0.05)
        busy = False
        await asyncio.gather(*loaders)
    print(f"\n/ping while 4 OCR requests run at once: {summary(pings)}  max {max(pings):.2f} ms")
    under = sum(p < 50 for p in pings) / len(pings)
    print(f"  share of pings under 50 ms: {under:.0%}; p95 {percentile(pings, 0.95):.2f} ms")


if __name__ == "__main__":
    main()
