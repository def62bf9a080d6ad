"""The torch-free install (`pip install .[ai-cpu]`): a real virtual environment without torch or
cn-clip serves every route, with CLIP from the files exported by the full install."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from mt_photos_ai.clip_models import MODELS
from mt_photos_ai.sessions.onnx import OnnxFiles
from testing.images import text_image
from testing.ml import OCR_ENTRIES, clip_entries, immich_request
from testing.servers import server_process

CPU_PYTHON = Path(__file__).parent.parent / ".venv-cpu" / "bin" / "python"
KEY = {"api-key": "mt_photos_ai_extra"}
LINES = ["增值税电子普通发票", "Hello World 2024"]

pytestmark = pytest.mark.skipif(
    not CPU_PYTHON.exists(),
    reason="the torch-free install is made by `make install` (a .venv-cpu with `pip install -e .[ai-cpu]`)",
)


def test_the_install_has_no_torch():
    probe = "import importlib.util as u; print([m for m in ('torch', 'cn_clip', 'torchvision') if u.find_spec(m)])"
    done = subprocess.run([str(CPU_PYTHON), "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_route_answers_without_torch(clip_root, clip_engine):
    # clip_engine's first load exported RN50 to clip_root/onnx/RN50: copied there, as the README says.
    env = {
        "CLIP_MODEL": "RN50",
        "CLIP_DOWNLOAD_ROOT": str(clip_root),
        "PRELOAD": "clip,ocr",
        "CLIP_AUTO_DOWNLOAD": "false",
    }
    image = text_image(LINES).data
    with server_process("mt_photos_ai", env, "HTTP_PORT", python=str(CPU_PYTHON)) as (url, _):
        with httpx.Client(base_url=url, timeout=120, headers=KEY) as client:
            info = client.get("/info").json()
            ocr = client.post("/predict", **_merge(immich_request(OCR_ENTRIES, image=image)))
            visual = client.post("/predict", **_merge(immich_request(clip_entries("visual"), image=image)))
            textual = client.post("/predict", **_merge(immich_request(clip_entries("textual"), text="一只猫")))
            mt_ocr = client.post("/ocr", files={"file": ("a.jpg", image)})
            mt_image = client.post("/clip/img", files={"file": ("a.jpg", image)})
            mt_text = client.post("/clip/txt", json={"text": "一只猫"})
            check = client.post("/check")
            restart = client.post("/restart_v2")
            assert client.get("/ping").text == "pong" and "message" in client.get("/").json()
    assert info["clip"]["runtime"] == "onnx" and info["clip"]["loaded"] is True and info["device"] == "cpu"
    assert info["versions"]["torch"] is None and info["versions"]["cn-clip"] is None
    assert ocr.json()["ocr"]["text"] == LINES and mt_ocr.json()["result"]["texts"] == LINES
    vector = np.array(textual.json()["clip"].strip("[]").split(","), float)
    assert float(vector @ clip_engine.encode_texts(["一只猫"])[0]) >= 0.9999
    assert len(mt_text.json()["result"]) == len(mt_image.json()["result"]) == 1024
    assert visual.json()["imageWidth"] == 1440
    assert check.json()["result"] == restart.json()["result"] == "pass"


def test_an_older_export_is_served_with_a_warning(clip_root, clip_engine, tmp_path, capfd):
    model = MODELS["RN50"]
    files = OnnxFiles(tmp_path, model)
    shutil.copytree(OnnxFiles(clip_root, model).directory, files.directory)
    (tmp_path / model.weights).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip_root / model.weights, tmp_path / model.weights)
    config = json.loads(files.config.read_text())
    files.config.write_text(json.dumps({**config, "format": config["format"] - 1}))
    env = {"CLIP_MODEL": "RN50", "CLIP_DOWNLOAD_ROOT": str(tmp_path), "PRELOAD": "clip", "CLIP_AUTO_DOWNLOAD": "false"}
    with server_process("mt_photos_ai", env, "HTTP_PORT", python=str(CPU_PYTHON)) as (url, _):
        with httpx.Client(base_url=url, timeout=120, headers=KEY) as client:
            text = client.post("/clip/txt", json={"text": "一只猫"}).json()["result"]
    vector = np.array(text, float)
    assert float(vector @ clip_engine.encode_texts(["一只猫"])[0]) >= 0.9999
    warnings = [line for line in capfd.readouterr().err.splitlines() if "serving them as they are" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "export-onnx" in warnings[0]
    assert json.loads(files.config.read_text())["format"] == config["format"] - 1  # left as it was


def _merge(request: dict) -> dict:
    return {"content": request["content"], "headers": {**KEY, **request["headers"]}}
