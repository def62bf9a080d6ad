"""CLIP side by side with upstream mt-photos-ai, over the MT Photos API (/clip/img, /clip/txt).

Ours: the AI service as `make run` starts it (the torch-free install when `.venv-cpu` exists),
serving ViT-B-16 from `--clip-root` (default: a randomly initialised checkpoint in a temporary
folder; the compute is that of real weights). Upstream: the server at `--upstream-url`,
serving ViT-B-16 too; started from the same checkpoint (its ONNX files made by cn-clip's own
`cn_clip/deploy/pytorch_to_onnx.py`, or its torch server with the checkpoint in cn-clip's cache),
the vectors agree (cosine printed). Both get the same requests, alternating:
- image embeddings of 1440 px JPEG previews (the size MT Photos and Immich send);
- text embeddings of short Chinese queries.
Reported: c=1 median latency of each and c=2 image throughput, ours as a ratio of upstream's.
`--busy` runs the measurement beside a process doing Immich's thumbnail jobs.

Run: `.venv/bin/python -m bench.clip_vs_upstream --upstream-url http://127.0.0.1:8060 [--busy]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.common import throughput, thumbnail_jobs
from mt_photos_ai.clip_models import MODELS
from mt_photos_ai.sessions.onnx import OnnxFiles
from testing.checkpoints import create_random_checkpoint
from testing.images import encode, text_image
from testing.servers import server_process

CPU_PYTHON = Path(__file__).parent.parent / ".venv-cpu" / "bin" / "python"
MODEL = "ViT-B-16"
QUERIES = ["一只猫在沙发上睡觉", "海边的日落", "生日蛋糕和蜡烛", "雪山下的湖"]
ROUNDS = 12


def previews() -> list[bytes]:
    """1440 px JPEGs: a noisy photo-like one (its JPEG is as costly to decode as a photo's) and a
    document."""
    noisy = Image.effect_noise((1440, 1080), 48).convert("RGB")
    return [encode(noisy, "JPEG", quality=85), text_image(["增值税电子普通发票", "Hello World"], size=(1440, 960)).data]


def embed_image(client: httpx.Client, url: str, key: str, data: bytes) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    answer = client.post(
        f"{url}/clip/img", files={"file": ("preview.jpg", data, "image/jpeg")}, headers={"api-key": key}
    )
    seconds = time.perf_counter() - started
    return seconds, _vector(answer)


def embed_text(client: httpx.Client, url: str, key: str, text: str) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    answer = client.post(f"{url}/clip/txt", json={"text": text}, headers={"api-key": key})
    seconds = time.perf_counter() - started
    return seconds, _vector(answer)


def _vector(answer: httpx.Response) -> np.ndarray:
    answer.raise_for_status()
    result = answer.json()["result"]
    if not result:
        raise RuntimeError(f"no vector: {answer.text[:300]}")
    vector = np.array([float(value) for value in result], np.float64)
    return vector / np.linalg.norm(vector)


async def image_throughput(url: str, key: str, data: bytes, concurrency: int, requests: int) -> float:
    def send(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        files = {"file": ("preview.jpg", data, "image/jpeg")}
        return client.post(f"{url}/clip/img", files=files, headers={"api-key": key})

    return await throughput(send, concurrency, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream-url", required=True, help="upstream mt-photos-ai, e.g. http://127.0.0.1:8060")
    parser.add_argument("--upstream-key", default="mt_photos_ai_extra", help="its API_AUTH_KEY")
    parser.add_argument("--clip-root", type=Path, help="ours: CLIP_DOWNLOAD_ROOT (default: a random checkpoint)")
    parser.add_argument("--busy", action="store_true", help="beside a process doing Immich's thumbnail jobs")
    args = parser.parse_args()
    if args.clip_root is None:
        args.clip_root = Path(tempfile.mkdtemp(prefix="clip-vs-upstream-"))
        print(f"a randomly initialised {MODEL} in {args.clip_root} (give upstream the same for equal vectors)")
        create_random_checkpoint(MODEL, args.clip_root)
    checkpoint = args.clip_root / MODELS[MODEL].weights
    if not checkpoint.exists():
        parser.error(f"{checkpoint} is missing")
    env = {"CLIP_MODEL": MODEL, "CLIP_DOWNLOAD_ROOT": str(args.clip_root), "CLIP_AUTO_DOWNLOAD": "false"}
    python = str(CPU_PYTHON) if CPU_PYTHON.exists() else sys.executable
    if not OnnxFiles(args.clip_root, MODELS[MODEL]).made_from(checkpoint):
        # The torch-free install cannot export: the full one makes the ONNX files first (once).
        subprocess.run([sys.executable, "-m", "mt_photos_ai", "export-onnx"], env={**os.environ, **env}, check=True)
    ours_key = "mt_photos_ai_extra"
    images, upstream = previews(), args.upstream_url.rstrip("/")
    with (
        thumbnail_jobs(args.busy) as start_busy,
        server_process("mt_photos_ai", {**env, "PRELOAD": "clip"}, "HTTP_PORT", python=python) as (ours, _),
        httpx.Client(timeout=120) as client,
    ):
        systems = {"ours": (ours, ours_key), "upstream": (upstream, args.upstream_key)}
        vectors: dict[str, list[np.ndarray]] = {name: [] for name in systems}
        for name, (url, key) in systems.items():  # warm, and the vectors to compare
            vectors[name] = [embed_image(client, url, key, data)[1] for data in images]
            vectors[name] += [embed_text(client, url, key, text)[1] for text in QUERIES]
        cosines = [float(a @ b) for a, b in zip(vectors["ours"], vectors["upstream"], strict=True)]
        start_busy()
        times: dict[str, dict[str, list[float]]] = {name: {"image": [], "text": []} for name in systems}
        for round_number in range(ROUNDS):
            order = list(systems.items()) if round_number % 2 == 0 else list(reversed(systems.items()))
            for name, (url, key) in order:
                for data in images:
                    times[name]["image"].append(embed_image(client, url, key, data)[0])
                for text in QUERIES[:2]:
                    times[name]["text"].append(embed_text(client, url, key, text)[0])
        rates = {
            name: asyncio.run(image_throughput(url, key, images[0], 2, 16)) for name, (url, key) in systems.items()
        }
    median = {name: {kind: statistics.median(v) * 1000 for kind, v in kinds.items()} for name, kinds in times.items()}
    print(f"\n{'beside thumbnail jobs' if args.busy else 'quiet host'}, {ROUNDS} rounds, alternating; ours: {python}")
    print(f"vectors, cosine ours vs upstream: min {min(cosines):.4f} (about 1 when both serve the same checkpoint)\n")
    print("| | ours | upstream mt-photos-ai | ours / upstream |\n|---|---|---|---|")
    for kind, label in (("image", "image embedding, 1440 px JPEG, c=1 median"), ("text", "text embedding, c=1 median")):
        o, u = median["ours"][kind], median["upstream"][kind]
        print(f"| {label} | {o:.0f} ms | {u:.0f} ms | {o / u:.2f} |")
    mine, theirs = rates["ours"], rates["upstream"]
    print(f"| images, c=2 throughput | {mine:.2f}/s | {theirs:.2f}/s | {mine / theirs:.2f} |")


if __name__ == "__main__":
    main()
