"""The AI service over real HTTP: Immich's /predict, the MT Photos API, auth and every bad input."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from testing.images import encode, text_image
from testing.ml import OCR_ENTRIES, clip_entries, immich_request
from testing.servers import serve

KEY = {"api-key": "mt_photos_ai_extra"}
LINES = ["增值税电子普通发票", "Hello World 2024"]


@pytest.fixture(scope="module")
def client(ai_url):
    with httpx.Client(base_url=ai_url, timeout=60) as c:
        yield c


def predict(client, entries, **payload):
    request = immich_request(entries, **payload)
    return client.post("/predict", content=request["content"], headers={**KEY, **request["headers"]})


def test_ping_and_root_are_open(client):
    assert client.get("/ping").text == "pong"
    assert "message" in client.get("/").json()
    assert client.get("/", headers={"accept": "text/html"}).text.startswith("<!doctype html>")


def test_ocr_answer_in_immich_format(client):
    image = text_image(LINES)
    response = predict(client, OCR_ENTRIES, image=image.data)
    assert response.status_code == 200
    body = response.json()
    assert body["imageWidth"] == 1440 and body["imageHeight"] == 960
    ocr = body["ocr"]
    assert ocr["text"] == LINES
    assert len(ocr["box"]) == 8 * len(LINES) == 8 * len(ocr["boxScore"]) == 8 * len(ocr["textScore"])
    assert all(0 <= v <= 1 for v in ocr["box"])
    left, top, right, bottom = image.boxes[0]
    x1, y1, _, _, x3, y3, _, _ = ocr["box"][:8]
    assert x1 * 1440 <= left + 6 and x3 * 1440 >= right - 6 and y1 * 960 <= top + 6 and y3 * 960 >= bottom - 6


def test_ocr_of_an_image_without_text_is_four_empty_lists(client):
    response = predict(client, OCR_ENTRIES, image=encode(Image.new("RGB", (640, 480), "white")))
    assert response.json() == {
        "ocr": {"text": [], "box": [], "boxScore": [], "textScore": []},
        "imageHeight": 480,
        "imageWidth": 640,
    }


def test_clip_visual_and_textual(client):
    image = text_image(LINES)
    visual = predict(client, clip_entries("visual"), image=image.data).json()
    vector = np.array(orjson.loads(visual["clip"]))
    assert isinstance(visual["clip"], str) and vector.shape == (1024,)
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-4)
    assert (visual["imageWidth"], visual["imageHeight"]) == (1440, 960)
    textual = predict(client, clip_entries("textual"), text="猫在沙发上").json()
    assert set(textual) == {"clip"} and len(orjson.loads(textual["clip"])) == 1024


def test_ocr_options_of_newer_immich_releases(client):
    """2.3+: any maxResolution >= 1 (clamped by the engine) and language-prefixed model names."""
    lines = ["增值税发票"]
    image = text_image(lines, size=(400, 120), font_size=40).data
    for model, resolution in (("CH__PP-OCRv5_server", 10_000), ("LATIN__PP-OCRv5_mobile", 736), ("x", 1)):
        entries = {
            "ocr": {
                "detection": {"modelName": model, "options": {"minScore": 0.5, "maxResolution": resolution}},
                "recognition": {"modelName": model, "options": {"minScore": 0.8}},
            }
        }
        response = predict(client, entries, image=image)
        assert response.status_code == 200, response.text
        if resolution > 1:  # at 1 px the detector sees a 32 px image: whatever it finds is fine
            assert response.json()["ocr"]["text"] == lines
    assert client.get("/info", headers=KEY).json()["ocr"]["maxDetectionSide"] == 4096


def test_several_tasks_in_one_request(client):
    entries = {**OCR_ENTRIES, **clip_entries("visual")}
    body = predict(client, entries, image=text_image(LINES).data).json()
    assert body["ocr"]["text"] == LINES and len(orjson.loads(body["clip"])) == 1024


def test_mt_photos_routes(client):
    assert client.post("/check", headers=KEY).json()["result"] == "pass"
    assert client.post("/check").json()["result"] == "pass"  # open, as the API defines it
    assert client.post("/check", headers={"api-key": "wrong"}).status_code == 401
    ocr = client.post("/ocr", headers=KEY, files={"file": ("a.jpg", text_image(LINES).data)}).json()["result"]
    assert ocr["texts"] == LINES
    assert all(isinstance(s, str) and float(s) > 0.5 for s in ocr["scores"])
    box = ocr["boxes"][0]
    assert set(box) == {"x", "y", "width", "height"} and all(isinstance(v, str) for v in box.values())
    assert float(box["x"]) == pytest.approx(80, abs=10) and 300 < float(box["width"]) < 500
    assert str(round(float(box["x"]), 2)) == box["x"]
    image_vector = client.post("/clip/img", headers=KEY, files={"file": ("a.jpg", text_image(LINES).data)}).json()
    assert len(image_vector["result"]) == 1024
    assert all(len(v.split(".")[1]) == 16 for v in image_vector["result"])
    text_vector = client.post("/clip/txt", headers=KEY, json={"text": "一只猫"}).json()["result"]
    assert len(text_vector) == 1024


def test_restart_answers_then_reloads(client):
    import time

    before = client.get("/info", headers=KEY).json()
    assert client.post("/restart_v2", headers=KEY).json() == {"result": "pass"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = client.get("/info", headers=KEY).json()
        if after["clip"]["loadedAt"] != before["clip"]["loadedAt"] and after["ocr"]["loaded"]:
            break
        time.sleep(0.1)
    # Both preloaded models were loaded again after the answer.
    assert after["clip"]["loadedAt"] > before["clip"]["loadedAt"]
    assert after["ocr"]["loadedAt"] > before["ocr"]["loadedAt"]
    assert client.post("/clip/txt", headers=KEY, json={"text": "猫"}).status_code == 200


def test_info_names_model_dimension_and_device(client):
    info = client.get("/info", headers=KEY).json()
    assert info["clip"]["model"] == "RN50" and info["clip"]["dimension"] == 1024
    assert info["device"] == "cpu" and info["ocr"]["loaded"] is True
    assert client.get("/info").status_code == 401


@pytest.mark.parametrize("path", ["/predict", "/info", "/ocr", "/clip/img", "/clip/txt", "/restart", "/restart_v2"])
def test_inference_routes_need_the_key(client, path):
    method = client.get if path == "/info" else client.post
    response = method(path, headers={"api-key": "nope"})
    assert response.status_code == 401 and "Invalid API key" in response.text


def bad(response, status: int, words: str):
    assert response.status_code == status, response.text
    assert words.lower() in response.json()["detail"].lower()


def test_bad_entries(client):
    image = text_image(LINES).data
    bad(predict(client, "not json", image=image), 422, "not JSON")
    bad(predict(client, {"clip": {"visual": {"options": {}}}}, image=image), 422, "modelName")
    bad(predict(client, {}, image=image), 422, "no task")
    bad(predict(client, {"clip": {"sideways": {"modelName": "x"}}}, image=image), 422, "sideways")
    bad(predict(client, {"ocr": {"recognition": {"modelName": "x"}}}, image=image), 400, "detection")
    for detection, named in (({"minScore": 2}, "minScore"), ({"maxResolution": 0}, "maxResolution")):
        entries = {"ocr": {**OCR_ENTRIES["ocr"], "detection": {"modelName": "x", "options": detection}}}
        bad(predict(client, entries, image=image), 422, named)
    response = client.post("/predict", headers=KEY, files={"image": ("blob", image)})
    bad(response, 422, "entries")


def test_faces_are_refused_with_a_pointer(client):
    entries = {"facial-recognition": {"detection": {"modelName": "buffalo_l"}}}
    bad(predict(client, entries, image=text_image(LINES).data), 422, "clip and ocr tasks only")


def test_bad_images_and_texts(client):
    bad(predict(client, OCR_ENTRIES), 400, "Either image or text")
    bad(predict(client, OCR_ENTRIES, image=b""), 400, "empty")
    bad(predict(client, OCR_ENTRIES, image=b"definitely not an image"), 422, "decode")
    jpeg = text_image(LINES).data
    bad(predict(client, OCR_ENTRIES, image=jpeg[: len(jpeg) // 2]), 422, "decode")
    bomb = encode(Image.new("L", (5000, 5000)), "PNG")  # 25 MP in a few kB
    bad(predict(client, OCR_ENTRIES, image=bomb), 413, "MAX_IMAGE_PIXELS")
    wide = encode(Image.new("L", (10001, 10)), "PNG")
    bad(predict(client, OCR_ENTRIES, image=wide), 413, "10000 px")
    bad(predict(client, clip_entries("textual"), text="字" * 201), 422, "MAX_TEXT_CHARS")
    bad(predict(client, clip_entries("textual"), text=""), 422, "empty")
    bad(predict(client, OCR_ENTRIES, text="hello"), 422, "need an 'image'")
    bad(client.post("/clip/txt", headers=KEY, content=b"{"), 422, "JSON")
    bad(client.post("/clip/txt", headers=KEY, json={"txt": "x"}), 422, "text")
    bad(client.post("/ocr", headers=KEY, files={"other": ("a", b"x")}), 400, "'file'")
    mt = client.post("/ocr", headers=KEY, files={"file": ("a.jpg", b"garbage")})
    assert mt.status_code == 422 and mt.json()["result"] == [] and "decode" in mt.json()["msg"]


def test_body_over_the_limit_is_refused_in_each_apis_shape(client):
    response = predict(client, OCR_ENTRIES, image=b"\0" * (9 * 1024 * 1024))
    bad(response, 413, "MAX_REQUEST_BYTES")
    assert set(response.json()) == {"detail"}
    mt = client.post("/ocr", headers=KEY, files={"file": ("a.jpg", b"\0" * (9 * 1024 * 1024))})
    assert mt.status_code == 413 and mt.json()["result"] == [] and "MAX_REQUEST_BYTES" in mt.json()["msg"]


def test_missing_weights_give_503_while_ocr_works(ai_settings, tmp_path):
    from mt_photos_ai.app import create_app

    settings = ai_settings.model_copy(update={"clip_model": "ViT-B-16", "clip_download_root": tmp_path})
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        response = predict(c, clip_entries("textual", "ViT-B-16__openai"), text="猫")
        bad(response, 503, str(tmp_path / "clip_cn_vit-b-16.pt"))
        assert c.post("/clip/txt", headers=KEY, json={"text": "猫"}).status_code == 503
        assert predict(c, OCR_ENTRIES, image=text_image(LINES).data).json()["ocr"]["text"] == LINES
        assert c.get("/info", headers=KEY).json()["clip"]["error"]


def test_auth_can_be_turned_off(ai_settings):
    from mt_photos_ai.app import create_app

    with serve(create_app(ai_settings)) as url:
        assert httpx.post(f"{url}/clip/txt", json={"text": "猫"}).status_code == 401
    with serve(create_app(ai_settings.model_copy(update={"api_auth_required": False}))) as url:
        answer = httpx.post(f"{url}/clip/txt", json={"text": "猫"}, timeout=60)
        assert answer.status_code == 200 and len(answer.json()["result"]) == 1024


def test_the_ocr_model_immich_asks_for_is_served_or_the_fallback_is_named(ai_settings, ppocrv5_dir, caplog):
    """PP-OCRv5 mobile from OCR_MODEL_DIR when Immich asks for it; a model that is not there is
    answered by the bundled one, said once at WARNING and in /info (and so in the gateway's
    /health), never silently."""
    from mt_photos_ai.app import create_app

    settings = ai_settings.model_copy(update={"ocr_model_dir": ppocrv5_dir})
    image = text_image(["增值税电子普通发票"]).data

    def asking(model: str) -> dict:
        return {
            "ocr": {
                "detection": {"modelName": model, "options": {"minScore": 0.5, "maxResolution": 736}},
                "recognition": {"modelName": model, "options": {"minScore": 0.8}},
            }
        }

    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        v5 = predict(c, asking("PP-OCRv5_mobile"), image=image)
        info = c.get("/info", headers=KEY).json()["ocr"]
        assert v5.json()["ocr"]["text"] == ["增值税电子普通发票"]
        assert info["asked"] == "PP-OCRv5_mobile" and info["fallback"] is None
        assert info["models"][0] == "PP-OCRv5 det mobile" and info["models"][-1] == "PP-OCRv5 rec mobile"
        with caplog.at_level(logging.WARNING, logger="mt_photos_ai.runtime"):
            for _ in range(2):
                server = predict(c, asking("PP-OCRv5_server"), image=image)
                assert server.json()["ocr"]["text"] == ["增值税电子普通发票"]
        info = c.get("/info", headers=KEY).json()["ocr"]
        assert info["asked"] == "PP-OCRv5_server" and "PP-OCRv5_server is not in" in info["fallback"]
        assert not info["models"][0].startswith("PP-OCRv5")
        warnings = [r.getMessage() for r in caplog.records if "serving the bundled" in r.getMessage()]
        assert len(warnings) == 1 and "PP-OCRv5_server" in warnings[0]
        # MT Photos names no model: it gets whichever serves.
        assert c.post("/ocr", headers=KEY, files={"file": ("a.jpg", image)}).json()["result"]["texts"]


def test_ocr_serve_model_answers_every_ocr_request_whatever_immich_asks(ai_settings, ppocrv5_dir):
    """OCR_SERVE_MODEL=bundled: the wheel's stronger models read Immich's requests that name
    PP-OCRv5_mobile; /info says what was asked and what serves instead, and no fallback."""
    from mt_photos_ai.app import create_app

    settings = ai_settings.model_copy(update={"ocr_model_dir": ppocrv5_dir, "ocr_serve_model": "bundled"})
    image = text_image(["增值税电子普通发票"]).data
    entries = {
        "ocr": {
            "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
            "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}},
        }
    }
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert predict(c, entries, image=image).json()["ocr"]["text"] == ["增值税电子普通发票"]
        info = c.get("/info", headers=KEY).json()["ocr"]
        assert info["asked"] == "PP-OCRv5_mobile" and info["serveModel"] == "bundled" and info["fallback"] is None
        assert not info["models"][0].startswith("PP-OCRv5")  # the wheel's (PP-OCRv6 small with rapidocr 3.10)
