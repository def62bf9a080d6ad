"""The AI service gives its working memory back once idle (IDLE_MEMORY_RELEASE_S), and only then."""

from __future__ import annotations

import asyncio
import threading

import httpx
import psutil

from aio_common.protocol import predict_body
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings
from testing.images import text_image
from testing.ml import OCR_ENTRIES
from testing.servers import server_process
from testing.waiting import eventually

KEY = {"api-key": "mt_photos_ai_extra"}
LINES = ["增值税电子普通发票", "Hello World 2024", "北京市朝阳区建国路88号", "欢迎光临"]
MIB = 2**20


def releases(client: httpx.Client, url: str) -> float:
    for line in client.get(f"{url}/metrics").text.splitlines():
        if line.startswith("aio_ai_memory_releases_total "):
            return float(line.split()[1])
    raise AssertionError("aio_ai_memory_releases_total is not in /metrics")


def read(client: httpx.Client, url: str, image: bytes) -> list[str]:
    body, content_type = predict_body(OCR_ENTRIES, image=image)
    response = client.post(f"{url}/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    texts: list[str] = response.json()["ocr"]["text"]
    return texts


def test_the_idle_service_gives_ocr_working_memory_back_and_reads_the_same(ppocrv5_dir):
    env = {
        "PRELOAD": "ocr",
        "IDLE_MEMORY_RELEASE_S": "0.5",
        "OCR_MODEL_DIR": str(ppocrv5_dir),
        "OCR_AUTO_DOWNLOAD": "false",
    }
    image = text_image(LINES, size=(1440, 1080), font_size=44).data
    with (
        server_process("mt_photos_ai", env, "HTTP_PORT") as (url, pid),
        httpx.Client(timeout=60, headers=KEY) as client,
    ):
        process = psutil.Process(pid)
        # The release after the preload comes first, so the one awaited below follows the read.
        eventually(lambda: releases(client, url) >= 1, 30, "the release after the preload")
        before = releases(client, url)
        texts = read(client, url, image)
        busy = process.memory_info().rss
        eventually(lambda: releases(client, url) > before, 30, "a release after the read")
        idle = process.memory_info().rss
        # The detector's arena alone holds about 200 MiB after a 1440 px preview.
        assert busy - idle > 100 * MIB, f"{busy / MIB:.0f} MiB busy, {idle / MIB:.0f} MiB idle"
        assert "增值税电子普通发票" in texts
        assert read(client, url, image) == texts


def test_nothing_is_released_while_a_request_runs_and_once_per_idle_spell():
    runtime = Runtime(Settings(idle_memory_release_s=0))
    started, finish = threading.Event(), threading.Event()

    def work(_: object) -> None:
        started.set()
        finish.wait(30)

    async def scenario() -> list[bool]:
        running = asyncio.create_task(runtime.run(runtime.slot("ocr"), work))
        await asyncio.to_thread(started.wait, 30)
        during = runtime.release_idle_memory()
        finish.set()
        await running
        return [during, runtime.release_idle_memory(), runtime.release_idle_memory()]

    try:
        # Nothing ran before: nothing to give back; then not while it runs, once after, no more.
        assert runtime.release_idle_memory() is False
        assert asyncio.run(scenario()) == [False, True, False]
    finally:
        runtime.shutdown()
