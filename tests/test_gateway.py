"""The gateway over real HTTP: routing, merging, replicas, the dimension guard and every failure."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time

import httpx
import orjson
import pytest

from aio_common.protocol import predict_body
from gateway.app import create_app
from gateway.settings import Settings
from testing.images import text_image
from testing.ml import FACE_ENTRIES, OCR_ENTRIES, clip_entries, immich_request
from testing.servers import free_port, serve
from testing.standins import Behaviour, fake_ai, stock_immich_ml
from testing.waiting import eventually

LINES = ["增值税电子普通发票", "Hello World 2024"]


@contextlib.contextmanager
def gateway(**settings):
    values = {"health_interval": 0.2, "read_timeout": 5.0, "connect_timeout": 1.0, **settings}
    with serve(create_app(Settings(**values))) as url, httpx.Client(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + 5
        # Wait for the first round of backend checks (and the AI service's /info) to finish.
        while time.monotonic() < deadline and not client.get("/health").json()["loops"]["backends"]["lastSuccess"]:
            time.sleep(0.05)
        yield client


@contextlib.contextmanager
def standin(factory, behaviour=None):
    behaviour = behaviour or Behaviour()
    with serve(factory(behaviour)) as url:
        yield url, behaviour


def predict(client, entries, **payload):
    return client.post("/predict", **immich_request(entries, **payload))


def replicas(client: httpx.Client, backend: str = "mt-photos-ai") -> list[dict]:
    return client.get("/health").json()["backends"][backend]["replicas"]


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_ping_root_and_health_need_no_backend():
    with gateway(mt_photos_api=dead_url(), immich_api=dead_url()) as client:
        ping = client.get("/ping")
        assert ping.text == "pong" and ping.headers["content-type"].startswith("text/plain")
        assert "message" in client.get("/").json()
        health = client.get("/health").json()
        assert health["backends"]["mt-photos-ai"]["healthy"] is False
        assert "failed" in health["backends"]["mt-photos-ai"]["replicas"][0]["lastError"]


def test_ocr_and_clip_end_to_end_through_the_real_ai_service(ai_url):
    with standin(stock_immich_ml) as (immich_url, _), gateway(mt_photos_api=ai_url, immich_api=immich_url) as client:
        image = text_image(LINES)
        ocr = predict(client, OCR_ENTRIES, image=image.data)
        assert ocr.status_code == 200 and ocr.json()["ocr"]["text"] == LINES
        textual = predict(client, clip_entries("textual", "RN50__openai"), text="猫在沙发上").json()
        assert len(orjson.loads(textual["clip"])) == 1024
        health = client.get("/health").json()["clip"]
        assert health["dimension"] == 1024 and health["immichModelName"] == "RN50__openai"


def test_faces_go_to_the_stock_server_with_the_same_bytes():
    image = text_image(LINES)
    with standin(stock_immich_ml) as (immich_url, stock), standin(fake_ai) as (ai_url, ai):
        with gateway(mt_photos_api=ai_url, immich_api=immich_url) as client:
            body = predict(client, FACE_ENTRIES, image=image.data).json()
    assert body["facial-recognition"][0]["score"] == 0.81 and body["imageWidth"] == 1440
    assert ai.received == []
    sent = stock.received[0]
    assert sent.entries == FACE_ENTRIES and sent.image_sha256 == hashlib.sha256(image.data).hexdigest()
    assert (sent.image_filename, sent.image_type) == ("blob", "application/octet-stream")


def test_a_multi_task_request_is_split_and_merged():
    image = text_image(LINES)
    entries = {**clip_entries("visual", "ViT-B-16__openai"), **FACE_ENTRIES}
    with standin(stock_immich_ml) as (immich_url, stock), standin(fake_ai) as (ai_url, ai):
        with gateway(mt_photos_api=ai_url, immich_api=immich_url, mt_photos_api_key="k1") as client:
            response = predict(client, entries, image=image.data)
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"clip", "facial-recognition", "imageHeight", "imageWidth"}
    assert ai.received[0].entries == clip_entries("visual", "ViT-B-16__openai")
    assert ai.received[0].headers["api-key"] == "k1"
    assert stock.received[0].entries == FACE_ENTRIES
    digest = hashlib.sha256(image.data).hexdigest()
    assert ai.received[0].image_sha256 == stock.received[0].image_sha256 == digest


def test_a_part_that_fails_fails_the_whole_request():
    entries = {**clip_entries("visual", "ViT-B-16__openai"), **FACE_ENTRIES}
    with standin(stock_immich_ml, Behaviour(status=500)) as (immich_url, _), standin(fake_ai) as (ai_url, _):
        with gateway(mt_photos_api=ai_url, immich_api=immich_url) as client:
            response = predict(client, entries, image=text_image(LINES).data)
    assert response.status_code == 502 and "immich-ml" in response.json()["detail"]


def test_dimension_guard_names_the_names_that_fit():
    with standin(fake_ai) as (ai_url, ai), gateway(mt_photos_api=ai_url, immich_api=dead_url()) as client:
        siglip2 = predict(client, clip_entries("textual", "ViT-B-16-SigLIP2__webli"), text="猫")
        refused = predict(client, clip_entries("textual", "ViT-L-14__openai"), text="猫")
        while_refused = client.get("/health").json()["clip"]
        accepted = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
        prefixed = predict(client, clip_entries("textual", "immich-app/ViT-B-16__openai"), text="猫")
        health = client.get("/health").json()["clip"]
    assert refused.status_code == 422
    assert "ViT-B-16__openai" in refused.json()["detail"] and "768" in refused.json()["detail"]
    assert siglip2.status_code == 422 and "768" in siglip2.json()["detail"]
    assert accepted.status_code == 200 and prefixed.status_code == 200 and len(ai.received) == 2
    # The reason is shown until a CLIP request passes.
    assert while_refused["refused"] == refused.json()["detail"] and "refused" not in health


def test_a_name_not_in_immichs_table_is_refused_unless_declared():
    entries = clip_entries("textual", "ViT-Future-99__webli")
    with standin(fake_ai) as (ai_url, ai):
        with gateway(mt_photos_api=ai_url, immich_api=dead_url()) as client:
            unknown = predict(client, entries, text="猫")
        with gateway(
            mt_photos_api=ai_url, immich_api=dead_url(), clip_extra_models="ViT-Future-99__webli:512"
        ) as client:
            declared = predict(client, entries, text="猫")
    assert unknown.status_code == 422
    assert "CLIP_EXTRA_MODELS" in unknown.json()["detail"] and "ViT-B-16__openai" in unknown.json()["detail"]
    assert declared.status_code == 200 and len(ai.received) == 1


def test_the_first_request_after_the_ai_service_starts_is_guarded():
    """A gateway started before its AI service: the first CLIP request, arriving the moment the
    AI service answers, is checked against the served dimension (read then, not 10 s later)."""
    port = free_port()
    settings = {"mt_photos_api": f"http://127.0.0.1:{port}", "immich_api": dead_url(), "health_interval": 60}
    with serve(create_app(Settings(**settings))) as url, httpx.Client(base_url=url, timeout=30) as client:
        not_yet = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
        with serve(fake_ai(Behaviour()), port=port):
            wrong = predict(client, clip_entries("textual", "ViT-L-14__openai"), text="猫")
            right = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
    assert not_yet.status_code == 503 and "cannot be checked" in not_yet.json()["detail"]
    assert wrong.status_code == 422 and "768" in wrong.json()["detail"]
    assert right.status_code == 200 and len(orjson.loads(right.json()["clip"])) == 512


def test_a_replica_restarted_with_another_model_is_never_served_under_the_old_dimension():
    behaviour = Behaviour()
    with standin(fake_ai, behaviour) as (ai_url, _):
        with gateway(mt_photos_api=ai_url, immich_api=dead_url(), health_interval=60) as client:
            before = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
            behaviour.dimension, behaviour.model = 768, "ViT-L-14"  # restarted with CLIP_MODEL=ViT-L-14
            stale = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
            after = predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
            now_fits = predict(client, clip_entries("textual", "ViT-L-14__openai"), text="猫")
    assert before.status_code == 200 and len(orjson.loads(before.json()["clip"])) == 512
    assert stale.status_code == 502 and "768-dimensional" in stale.json()["detail"]
    assert after.status_code == 422 and "ViT-L-14__openai" in after.json()["detail"]
    assert now_fits.status_code == 200 and len(orjson.loads(now_fits.json()["clip"])) == 768


def test_clip_never_falls_back_but_ocr_may():
    with standin(stock_immich_ml) as (immich_url, stock):
        with gateway(mt_photos_api=dead_url(), immich_api=immich_url, ocr_fallback=True) as client:
            ocr = predict(client, OCR_ENTRIES, image=text_image(LINES).data)
            clip = predict(client, clip_entries("textual"), text="猫")
        assert ocr.status_code == 200 and ocr.json()["ocr"]["text"] == ["stock"]
        assert clip.status_code == 503 and "mt-photos-ai" in clip.json()["detail"]
        assert [r.entries for r in stock.received] == [OCR_ENTRIES]
        with gateway(mt_photos_api=dead_url(), immich_api=immich_url) as client:
            assert predict(client, OCR_ENTRIES, image=text_image(LINES).data).status_code == 503


def test_ocr_can_be_routed_to_the_stock_server():
    with standin(stock_immich_ml) as (immich_url, stock), standin(fake_ai) as (ai_url, ai):
        with gateway(mt_photos_api=ai_url, immich_api=immich_url, ocr_backend="immich") as client:
            assert predict(client, OCR_ENTRIES, image=text_image(LINES).data).json()["ocr"]["text"] == ["stock"]
    assert ai.received == [] and len(stock.received) == 1


def test_a_failed_replica_is_retried_once_on_another():
    with standin(fake_ai, Behaviour(status=500)) as (bad_url, bad), standin(fake_ai) as (good_url, good):
        with gateway(mt_photos_api=f"{bad_url},{good_url}", immich_api=dead_url()) as client:
            answers = [predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫") for _ in range(4)]
    assert all(a.status_code == 200 for a in answers)
    assert len(good.received) == 4 and 1 <= len(bad.received) <= 4


def test_unhealthy_replicas_get_no_requests():
    with standin(fake_ai, Behaviour(ping_status=503)) as (sick_url, sick), standin(fake_ai) as (well_url, well):
        with gateway(mt_photos_api=f"{sick_url},{well_url}", immich_api=dead_url()) as client:
            eventually(lambda: not replicas(client)[0]["healthy"], 10, "the sick replica is marked down", interval=0.05)
            for _ in range(5):
                predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫")
            health = client.get("/health").json()["backends"]["mt-photos-ai"]["replicas"]
    assert sick.received == [] and len(well.received) == 5
    assert [r["healthy"] for r in health] == [False, True]


def test_a_flapping_replica_comes_back():
    behaviour = Behaviour(ping_status=503)
    with standin(fake_ai, behaviour) as (url, _), gateway(mt_photos_api=url, immich_api=dead_url()) as client:
        eventually(lambda: not replicas(client)[0]["healthy"], 10, "the replica is marked down", interval=0.05)
        behaviour.ping_status = 200
        eventually(lambda: replicas(client)[0]["healthy"], 10, "the replica is marked up again", interval=0.05)


async def test_requests_go_to_the_least_busy_replica():
    slow, fast = Behaviour(delay=1.0), Behaviour()
    with standin(fake_ai, slow) as (slow_url, _), standin(fake_ai, fast) as (fast_url, _):
        with gateway(mt_photos_api=f"{slow_url},{fast_url}", immich_api=dead_url()) as client:
            async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
                request = immich_request(clip_entries("textual", "ViT-B-16__openai"), text="猫")
                first = asyncio.create_task(http.post("/predict", **request))
                # The first request is in flight on one replica (the stand-ins record on arrival).
                await asyncio.to_thread(
                    eventually, lambda: slow.received or fast.received, 10, "the first request arrived", interval=0.01
                )
                others = [await http.post("/predict", **request) for _ in range(3)]
                await first
    assert all(r.status_code == 200 for r in others)
    # Whichever replica took the slow first request, the next three avoided it while busy
    # or took the fast one: the slow replica never got more than the first plus one.
    assert len(slow.received) <= 2 and len(fast.received) >= 2


def test_failure_statuses():
    text = {"text": "猫"}
    entries = clip_entries("textual", "ViT-B-16__openai")
    with gateway(mt_photos_api=dead_url(), immich_api=dead_url()) as client:
        refused = predict(client, entries, **text)
        assert refused.status_code == 503 and "mt-photos-ai" in refused.json()["detail"]
        assert "Connect call failed" in refused.json()["detail"]
    with standin(fake_ai, Behaviour(delay=3)) as (url, _), gateway(mt_photos_api=url, read_timeout=0.5) as client:
        started = time.monotonic()
        slow = predict(client, entries, **text)
        assert slow.status_code == 504 and "timed out" in slow.json()["detail"]
        assert time.monotonic() - started < 2.5
    with standin(fake_ai, Behaviour(status=500)) as (url, _), gateway(mt_photos_api=url) as client:
        failed = predict(client, entries, **text)
        assert failed.status_code == 502 and "replica failed (500)" in failed.json()["detail"]
    # The AI service's 503 (a model it cannot load now) is a 503, with its reason, and /health
    # shows it with its time until the replica next answers well.
    behaviour = Behaviour(status=503)
    with standin(fake_ai, behaviour) as (url, _), gateway(mt_photos_api=url) as client:
        unavailable = predict(client, entries, **text)
        assert unavailable.status_code == 503 and "replica failed (503)" in unavailable.json()["detail"]
        [replica] = client.get("/health").json()["backends"]["mt-photos-ai"]["replicas"]
        assert "replica failed (503)" in replica["lastError"] and replica["lastErrorAt"]
        behaviour.status = 200
        assert predict(client, entries, **text).status_code == 200
        [replica] = client.get("/health").json()["backends"]["mt-photos-ai"]["replicas"]
        assert replica["lastError"] is None and replica["lastErrorAt"] is None
    with standin(fake_ai, Behaviour(status=422)) as (url, _), gateway(mt_photos_api=url) as client:
        passed = predict(client, entries, **text)
        assert passed.status_code == 422 and passed.json() == {"detail": "replica failed (422)"}


def test_client_faults():
    with standin(fake_ai) as (url, ai), gateway(mt_photos_api=url, max_request_bytes=1_000_000) as client:
        assert predict(client, "nope", text="x").status_code == 422
        assert predict(client, {"clip": {"textual": {}}}, text="x").status_code == 422
        neither = predict(client, OCR_ENTRIES)
        assert neither.status_code == 400 and "image or text" in neither.json()["detail"]
        big = predict(client, OCR_ENTRIES, image=b"\0" * 1_100_000)
        assert big.status_code == 413 and "MAX_REQUEST_BYTES" in big.json()["detail"]
        # Without a Content-Length the limit holds while the body streams in.
        body, content_type = predict_body(OCR_ENTRIES, image=b"\0" * 1_100_000)
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        streamed = client.post("/predict", content=pieces, headers={"content-type": content_type})
        assert streamed.status_code == 413 and "MAX_REQUEST_BYTES" in streamed.json()["detail"]
        not_a_form = client.post("/predict", content=b"{}", headers={"content-type": "application/json"})
        assert not_a_form.status_code == 400 and "multipart/form-data" in not_a_form.json()["detail"]
    assert ai.received == []


def test_a_client_that_leaves_mid_body_costs_nothing():
    with standin(fake_ai) as (url, ai), gateway(mt_photos_api=url) as client:
        host, port = client.base_url.host, client.base_url.port
        with socket.create_connection((host, port)) as raw:
            raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
            raw.sendall(b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")
        assert predict(client, clip_entries("textual", "ViT-B-16__openai"), text="猫").status_code == 200
    assert len(ai.received) == 1


def test_asset_id_requests_pass_to_the_stock_server():
    with standin(stock_immich_ml) as (immich_url, stock), gateway(immich_api=immich_url) as client:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="entries"\r\n\r\n'
            + orjson.dumps(FACE_ENTRIES)
            + b'\r\n--b\r\nContent-Disposition: form-data; name="assetId"\r\n\r\nabc\r\n--b--\r\n'
        )
        response = client.post("/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 200 and stock.received[0].entries == FACE_ENTRIES


@pytest.mark.parametrize("path", ["/ping", "/health"])
async def test_fast_routes_do_not_wait_on_a_slow_backend(path):
    with standin(fake_ai, Behaviour(delay=3)) as (url, ai), gateway(mt_photos_api=url) as client:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
            slow = asyncio.create_task(http.post("/predict", **immich_request(OCR_ENTRIES, image=b"x")))
            for _ in range(250):  # until the slow request is in flight
                if ai.received:
                    break
                await asyncio.sleep(0.02)
            started = time.monotonic()
            assert (await http.get(path)).status_code == 200
            assert time.monotonic() - started < 1.0
            assert not slow.done()
            await slow


def test_a_backend_answering_garbage_is_a_502_naming_it():
    entries = {**clip_entries("visual", "ViT-B-16__openai"), **FACE_ENTRIES}
    with standin(stock_immich_ml, Behaviour(raw_answer=b"<html>oops</html>")) as (immich_url, _):
        with standin(fake_ai) as (ai_url, _), gateway(mt_photos_api=ai_url, immich_api=immich_url) as client:
            response = predict(client, entries, image=text_image(LINES).data)
    assert response.status_code == 502 and response.headers["content-type"] == "application/json"
    assert "immich-ml" in response.json()["detail"] and "not a JSON object" in response.json()["detail"]


def test_health_details_only_for_local_callers_or_with_the_key():
    app = create_app(Settings(mt_photos_api=dead_url(), immich_api=dead_url(), mt_photos_api_key="secret"))
    with serve(app) as url:
        local = httpx.get(f"{url}/health").json()
    assert "loops" in local and local["backends"]["mt-photos-ai"]["replicas"]
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 4000))  # a caller from elsewhere

    async def remote(headers: dict[str, str]) -> dict:
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return (await c.get("/health", headers=headers)).json()

    up_or_down = asyncio.run(remote({}))
    assert set(up_or_down) == {"backends", "ocrSearch"} and set(up_or_down["backends"]) == {"mt-photos-ai", "immich-ml"}
    assert all(isinstance(v, bool) for v in [*up_or_down["backends"].values(), up_or_down["ocrSearch"]])
    assert "loops" in asyncio.run(remote({"api-key": "secret"}))
