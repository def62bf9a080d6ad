"""/metrics on both services, over real HTTP: the figures move when requests are made."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app as create_gateway
from mt_photos_ai.app import create_app as create_ai
from testing.images import text_image
from testing.immich_db import immich_world
from testing.ml import OCR_ENTRIES, clip_entries, immich_request
from testing.servers import free_port, serve
from testing.standins import Behaviour, stock_immich_ml
from tests.test_ocr_search import add, gateway, search, settings_for

KEY = {"api-key": "mt_photos_ai_extra"}


def scrape(client: httpx.Client | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics answer, by name and labels."""
    answer = client.get("/metrics") if isinstance(client, httpx.Client) else httpx.get(client)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_ai_service_counts_requests_inference_stages_and_models(ai_settings):
    settings = ai_settings.model_copy(update={"request_threads": 1, "max_queued_requests": 1})
    with serve(create_ai(settings)) as url, httpx.Client(base_url=url, timeout=60, headers=KEY) as client:
        before = scrape(client)
        assert value(before, "aio_ai_model_loaded", model="ocr") == 0
        assert value(before, "process_resident_memory_bytes") > 50e6
        image = text_image(["增值税电子普通发票"]).data
        assert client.post("/predict", **immich_request(OCR_ENTRIES, image=image)).status_code == 200
        assert client.post("/predict", **immich_request(clip_entries("textual"), text="猫")).status_code == 200
        assert client.post("/clip/img", files={"file": ("a.png", image)}).status_code == 200
        assert client.post("/predict", **immich_request({}, image=image)).status_code == 422
        after = scrape(client)

    requests = "aio_ai_http_requests_total"
    route = {"route": "/predict", "method": "POST"}
    assert (
        value(after, requests, **route, task="ocr", status="200")
        == value(before, requests, **route, task="ocr", status="200") + 1
    )
    assert value(after, requests, **route, task="clip-text", status="200") >= 1
    assert value(after, requests, route="/clip/img", method="POST", task="clip-image", status="200") >= 1
    assert value(after, requests, **route, task="", status="422") >= 1  # refused before a task was known
    seconds = "aio_ai_http_request_duration_seconds_count"
    assert value(after, seconds, **route, task="ocr") > value(before, seconds, **route, task="ocr")
    stages = "aio_ai_inference_duration_seconds_count"
    for model, stage in (
        ("ocr", "decode"),
        ("ocr", "detect"),
        ("ocr", "crop"),
        ("ocr", "recognize"),
        ("clip", "decode"),
        ("clip", "preprocess"),
    ):
        assert value(after, stages, model=model, stage=stage) == value(before, stages, model=model, stage=stage) + 1
    assert (
        value(after, stages, model="clip", stage="forward") == value(before, stages, model="clip", stage="forward") + 2
    )
    assert value(after, "aio_ai_model_loaded", model="ocr") == 1
    assert value(after, "aio_ai_model_loaded", model="clip") == 1
    assert value(after, "aio_ai_model_load_duration_seconds_count", model="ocr") >= 1
    assert value(after, "aio_ai_pool_busy") == 0 and value(after, "aio_ai_pool_queued") == 0


async def test_ai_service_counts_refused_requests_and_failed_loads(ai_settings, tmp_path):
    settings = ai_settings.model_copy(
        update={"request_threads": 1, "max_queued_requests": 1, "clip_download_root": tmp_path}
    )
    with serve(create_ai(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=KEY) as client:
            before = scrape(f"{url}/metrics")
            image = text_image(["发票"] * 6, size=(1600, 1200)).data
            answers = await asyncio.gather(
                *(client.post("/predict", **immich_request(OCR_ENTRIES, image=image)) for _ in range(6))
            )
            assert {a.status_code for a in answers} == {200, 503}
            missing = await client.post("/clip/txt", json={"text": "猫"})
            assert missing.status_code == 503
            after = scrape(f"{url}/metrics")
    refused = sum(a.status_code == 503 for a in answers)
    assert value(after, "aio_ai_pool_refused_total") == value(before, "aio_ai_pool_refused_total") + refused
    failures = "aio_ai_model_load_failures_total"
    assert value(after, failures, model="clip") == value(before, failures, model="clip") + 1


def test_metrics_on_a_port_of_their_own_or_off(ai_settings):
    port = free_port()
    with serve(create_ai(ai_settings.model_copy(update={"metrics_port": port}))) as url:
        assert httpx.get(f"{url}/metrics").status_code == 404
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert ("aio_ai_pool_busy", frozenset()) in samples
    with serve(create_ai(ai_settings.model_copy(update={"metrics": False}))) as url:
        assert httpx.get(f"{url}/metrics").status_code == 404


def test_gateway_counts_predict_by_task_and_backend(ai_url):
    behaviour = Behaviour()
    with serve(stock_immich_ml(behaviour)) as immich_url:
        settings = settings_for(None, "http://127.0.0.1:9", mt_photos_api=ai_url, immich_api=immich_url)
        with serve(create_gateway(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not client.get("/health").json()["backends"]["mt-photos-ai"]:
                time.sleep(0.05)
            before = scrape(client)
            image = text_image(["发票"]).data
            faces = {
                "facial-recognition": {
                    "detection": {"modelName": "buffalo_l"},
                    "recognition": {"modelName": "buffalo_l"},
                }
            }
            assert client.post("/predict", **immich_request(OCR_ENTRIES, image=image)).status_code == 200
            assert client.post("/predict", **immich_request(faces, image=image)).status_code == 200
            made_up = client.post("/predict", **immich_request({"made-up": {"x": {"modelName": "y"}}}, image=image))
            assert made_up.status_code == 422  # the stock server's answer to a task it does not know
            after = scrape(client)

    predict = "aio_gateway_predict_requests_total"
    ocr = {"task": "ocr", "backend": "mt-photos-ai", "status": "200"}
    assert value(after, predict, **ocr) == value(before, predict, **ocr) + 1
    faces_label = {"task": "facial-recognition", "backend": "immich-ml", "status": "200"}
    assert value(after, predict, **faces_label) == value(before, predict, **faces_label) + 1
    assert value(after, predict, task="other", backend="immich-ml", status="422") >= 1  # no label from a request
    assert value(after, "aio_gateway_replica_up", backend="mt-photos-ai", replica=ai_url) == 1
    http = "aio_gateway_http_requests_total"
    assert value(after, http, route="/predict", method="POST", task="ocr", status="200") >= 1
    assert value(after, "aio_gateway_predict_duration_seconds_count", task="ocr", backend="mt-photos-ai") >= 1


async def test_gateway_counts_searches_and_watches_the_index(release):
    alice = str(uuid.uuid4())
    async with immich_world(release, {alice: "alice-key"}) as world:
        await add(world, alice, ["增值税电子普通发票"])
        async with gateway(world.database, world.url) as client:
            before = await _ascrape(client)
            assert (await search(client, "ocr:发票", key="alice-key")).status_code == 200
            assert (await search(client, "ocr:发票", key="wrong")).status_code == 401
            assert (await search(client, "clip:猫", key="alice-key")).status_code == 200
            await add(world, alice, ["发票 2"])
            after = await _until(client, lambda s: value(s, "aio_gateway_index_rows") >= 2)

    searches = "aio_gateway_searches_total"
    assert value(after, searches, kind="ocr", status="200") == value(before, searches, kind="ocr", status="200") + 1
    assert value(after, searches, kind="ocr", status="401") >= 1
    assert value(after, searches, kind="clip", status="200") >= 1
    assert value(after, "aio_gateway_search_duration_seconds_count", kind="ocr") >= 2
    assert value(after, "aio_gateway_index_sync_duration_seconds_count") > 0
    assert value(after, "aio_gateway_index_last_sync_timestamp_seconds") > time.time() - 60
    assert value(after, "aio_gateway_index_lag_seconds") < 60


async def _ascrape(client: httpx.AsyncClient):
    answer = await client.get("/metrics")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


async def _until(client: httpx.AsyncClient, condition, timeout: float = 15):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition(samples := await _ascrape(client)):
        assert asyncio.get_running_loop().time() < deadline, "metrics never showed it"
        await asyncio.sleep(0.1)
    return samples
