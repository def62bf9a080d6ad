"""CLIP on a CUDA device: images per second at concurrency 1, 8 and 64, with and without dynamic
micro-batching, and how far fp16 autocast vectors are from fp32 ones (cosine).

Randomly initialised ViT-B-16 (the compute of the real weights); the service's own runtime and
task layer, in this process. Needs a CUDA device: `bash bench/gpu.sh` on such a machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings
from mt_photos_ai.tasks import Tasks
from testing.checkpoints import create_random_checkpoint
from testing.images import text_image

CONCURRENCY = (1, 8, 64)
REQUESTS = 512


async def images_per_second(tasks: Tasks, image: bytes, concurrency: int) -> float:
    remaining = REQUESTS

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await tasks.embed_image(image)

    await asyncio.gather(*(client() for _ in range(8)))  # warm-up
    remaining = REQUESTS
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return REQUESTS / (time.perf_counter() - started)


async def throughput(root: Path, image: bytes) -> None:
    for wait_ms in (0.0, 5.0):
        settings = Settings(
            clip_model="ViT-B-16",
            clip_download_root=root,
            clip_auto_download=False,
            device="cuda",
            runtime="torch",
            clip_batch_wait_ms=wait_ms,
            request_threads=4,
            max_queued_requests=256,
        )
        runtime = Runtime(settings)
        await runtime.load(["clip"])
        tasks = Tasks(settings, runtime)
        label = f"batching {'on (5 ms, up to 32)' if wait_ms else 'off'}"
        for concurrency in CONCURRENCY:
            rate = await images_per_second(tasks, image, concurrency)
            print(f"{label:28s} concurrency {concurrency:3d}: {rate:8.1f} images/s")
        runtime.shutdown()


def agreement(root: Path) -> None:
    from mt_photos_ai.clip_models import MODELS
    from mt_photos_ai.sessions.torch import load_model

    model = load_model(MODELS["ViT-B-16"], root, "cuda", auto_download=False).float()
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.normal(size=(64, 3, 224, 224)).astype(np.float32)).cuda()
    ids = torch.randint(1, 21128, (64, 52), device="cuda")
    ids[:, 20:] = 0
    results = {}
    for name, context in (("fp32", contextlib.nullcontext()), ("fp16", torch.autocast("cuda", dtype=torch.float16))):
        with torch.inference_mode(), context:
            results[name] = (model.encode_image(pixels).float(), model.encode_text(ids).float())
    for kind, index in (("image", 0), ("text", 1)):
        a, b = results["fp32"][index], results["fp16"][index]
        cosine = torch.nn.functional.cosine_similarity(a, b).cpu().numpy()
        print(f"fp16 autocast vs fp32, {kind}: cosine min {cosine.min():.6f}, mean {cosine.mean():.6f}")


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run bench/gpu.sh on a machine with one")
    print(f"device: {torch.cuda.get_device_name()}")
    image = text_image(["增值税电子普通发票", "Hello World 2024"], size=(1440, 1080)).data
    with tempfile.TemporaryDirectory() as root:
        create_random_checkpoint("ViT-B-16", Path(root))
        asyncio.run(throughput(Path(root), image))
        agreement(Path(root))


if __name__ == "__main__":
    main()
