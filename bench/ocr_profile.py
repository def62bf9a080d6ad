"""Where the time of one OCR request on a photo goes, ours and the stock Immich ML server's.

Ours: the AI service in its own process, asked over HTTP with Immich's /predict request; its
stages come from its own metrics (`aio_ai_inference_duration_seconds` by stage, read before and
after each request), the rest of the request's time (the multipart body, the answer, HTTP) is
what the client saw beyond them. Stock: immich_ml's own classes run stage by stage in its own
venv (bench/stock_ocr_stages.py), and its server at `--stock-url` for the whole request.
Medians per photo over the photo set (bench/photo_scenes.py), c=1.

Run: `.venv/bin/python -m bench.ocr_profile --stock-url http://127.0.0.1:3103`
(the stock server and venv: `../shared/vendor/immich/ml/setup.sh v3.1.0` and `start.sh v3.1.0`)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.ocr_vs_stock import Sample, ours_env, read
from bench.photo_scenes import scenes
from mt_photos_ai.metrics import OCR_STAGES
from testing.servers import server_process

ROUNDS = 3
STOCK = Path("/tmp/stockml")
STAGES = "aio_ai_inference_duration_seconds_sum"


def stage_sums(client: httpx.Client, url: str) -> dict[str, float]:
    answer = client.get(f"{url}/metrics")
    answer.raise_for_status()
    return {
        sample.labels["stage"]: sample.value * 1000
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == STAGES and sample.labels.get("model") == "ocr"
    }


def whole_request(client: httpx.Client, url: str, sample: Sample) -> float:
    """Milliseconds of one /predict, as the side-by-side bench sends it."""
    return read(client, url, sample)[0] * 1000


def ours(photos: list[Sample], work: Path) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    with server_process("mt_photos_ai", ours_env(work), "HTTP_PORT") as (url, _), httpx.Client(timeout=120) as client:
        for sample in photos:
            whole_request(client, url, sample)  # warm-up
        for _ in range(ROUNDS):
            for sample in photos:
                before = stage_sums(client, url)
                total = whole_request(client, url, sample)
                after = stage_sums(client, url)
                spent = {stage: after[stage] - before.get(stage, 0.0) for stage in after}
                spent["HTTP, body and answer"] = total - sum(spent.values())
                spent["whole request"] = total
                for stage, value in spent.items():
                    times.setdefault(stage, []).append(value)
    return {stage: statistics.median(values) for stage, values in times.items()}


def stock(photos: list[Sample], url: str, work: Path) -> dict[str, float]:
    files = []
    for i, sample in enumerate(photos):
        path = work / f"photo-{i}.jpg"
        path.write_bytes(sample.data)
        files.append(str(path))
    version = "v3.1.0"
    env = {
        **os.environ,
        "PYTHONPATH": str(STOCK / f"src-{version}" / "machine-learning"),
        "MACHINE_LEARNING_CACHE_FOLDER": str(STOCK / "cache"),
    }
    python = STOCK / f"venv-{version}" / "bin" / "python"
    script = Path(__file__).with_name("stock_ocr_stages.py")
    done = subprocess.run(
        [str(python), str(script), str(ROUNDS), *files], env=env, capture_output=True, text=True, check=True
    )
    stages: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    with httpx.Client(timeout=120) as client:
        for sample in photos:
            whole_request(client, url, sample)
        totals = [whole_request(client, url, sample) for _ in range(ROUNDS) for sample in photos]
    stages["whole request"] = statistics.median(totals)
    counted = sum(stages.get(stage, 0.0) for stage in OCR_STAGES)
    stages["HTTP, body and answer"] = stages["whole request"] - counted
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stock-url", required=True, help="the stock Immich ML server, e.g. http://127.0.0.1:3103")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocr-profile-"))
    photos = [Sample(scene.name, scene.data, scene.lines, "photo") for scene in scenes()]
    mine = ours(photos, work)
    theirs = stock(photos, args.stock_url.rstrip("/"), work)
    print(f"\nmedian ms per photo, {len(photos)} photos x {ROUNDS} rounds, c=1\n")
    print("| stage | ours | stock Immich ML |\n|---|---|---|")
    order = [*OCR_STAGES, "HTTP, body and answer", "whole request"]
    rows = sorted({*mine, *theirs}, key=lambda name: (order.index(name.split(":")[0]), name))
    for stage in rows:
        cells = [f"{table[stage]:.0f}" if stage in table else "" for table in (mine, theirs)]
        print(f"| {stage} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
