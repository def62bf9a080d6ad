from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# cn-clip's hub download must fail at once here (no internet), through its real code path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def clip_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP_DOWNLOAD_ROOT holding a randomly initialised cn-clip RN50 checkpoint (the smallest)."""
    from mt_photos_ai.engines.clip import create_random_checkpoint

    root = tmp_path_factory.mktemp("clip")
    create_random_checkpoint("RN50", root)
    return root


@pytest.fixture(scope="session")
def ai_settings(clip_root: Path):
    from mt_photos_ai.settings import Settings

    return Settings(
        clip_model="RN50",
        clip_download_root=clip_root,
        clip_auto_download=False,
        device="cpu",
        max_request_bytes=8 * 1024 * 1024,
        max_image_pixels=20_000_000,
        max_text_chars=200,
    )


@pytest.fixture(scope="session")
def ai_url(ai_settings) -> Iterator[str]:
    """The real AI service (RapidOCR + cn-clip RN50) on a real uvicorn server."""
    from mt_photos_ai.app import create_app
    from tests.helpers import serve

    with serve(create_app(ai_settings.model_copy(update={"preload": ["ocr", "clip"]}))) as url:
        yield url


@pytest.fixture(scope="session")
def ocr_engine():
    from mt_photos_ai.engines.ocr import OcrEngine

    return OcrEngine("cpu")


@pytest.fixture(scope="session")
def clip_engine(clip_root: Path):
    from mt_photos_ai.engines.clip import ClipEngine

    return ClipEngine("RN50", clip_root, "cpu", auto_download=False)
