"""Which OCR model serves a request: the PP-OCRv5 model Immich's admin setting names
(`PP-OCRv5_mobile` or `PP-OCRv5_server`, optionally behind a language prefix such as `CH__` or
`EN__`), or the models bundled in the rapidocr wheel.

The v5 files are looked for in OCR_MODEL_DIR in the stock Immich ML server's own cache layout
(`<name without prefix>/detection/model.onnx`, `<name>/recognition/model.onnx`), so its model
cache can be reused, and fetched there from RapidOCR's model hub when they are missing and
OCR_AUTO_DOWNLOAD allows (each file checked by the sha256 rapidocr lists). When the asked model
cannot be had, the bundled one serves, and says so: never silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# rapidocr's downloader logs a failed fetch at ERROR; the caller says it once, at WARNING, with
# what serves instead (offline is an expected state, not an error).
_download_log = logging.getLogger(f"{__name__}.download")
_download_log.setLevel(logging.CRITICAL)

# Immich's model names: the sizes its admin setting offers, and the default it sends.
SIZES = ("mobile", "server")
VERSION = "PP-OCRv5"
# OCR_SERVE_MODEL's name for the wheel's bundled models.
BUNDLED_NAME = "bundled"


@dataclass(frozen=True)
class OcrModel:
    """The files one OCR engine is built from: `detection` and `recognition` None are the
    wheel's bundled models. `asked` is the name Immich asked for ('' for none), and `missing`
    why that model is not the one served."""

    asked: str = ""
    detection: Path | None = None
    recognition: Path | None = None
    missing: str | None = None

    @property
    def bundled(self) -> bool:
        return self.detection is None


BUNDLED = OcrModel()


def language_and_base(name: str) -> tuple[str, str]:
    """`CH__PP-OCRv5_server` -> ("ch", "PP-OCRv5_server"); no prefix is Chinese and English."""
    prefix, _, base = name.rpartition("__")
    return (prefix.lower() or "ch"), base


def choose(name: str, root: Path, auto_download: bool) -> OcrModel:
    """The model for Immich's model `name` ('' = none asked, or `bundled`: the bundled one)."""
    if not name or name == BUNDLED_NAME:
        return BUNDLED
    language, base = language_and_base(name)
    version, _, size = base.partition("_")
    if version != VERSION or size not in SIZES:
        return OcrModel(name, missing=f"{name} is not a model this service knows ({VERSION}_mobile or _server)")
    detection = root / base / "detection" / "model.onnx"
    recognition = root / name / "recognition" / "model.onnx"
    missing = [path for path in (detection, recognition) if not path.is_file()]
    if missing and auto_download:
        try:
            _download(language, size, detection, recognition)
        except Exception as exc:  # rapidocr's hub client raises many kinds (offline: a connection error)
            return OcrModel(name, missing=f"{name} is not in {root} and could not be fetched: {exc}"[:600])
    elif missing:
        return OcrModel(name, missing=f"{name} is not in {root} ({missing[0]} is missing; OCR_AUTO_DOWNLOAD is off)")
    return OcrModel(name, detection, recognition)


def _download(language: str, size: str, detection: Path, recognition: Path) -> None:
    """Fetch the missing files from RapidOCR's model hub, checked by the sha256 it lists."""
    from rapidocr.inference_engine.base import FileInfo, InferSession
    from rapidocr.utils.download_file import DownloadFile, DownloadFileInput
    from rapidocr.utils.typings import EngineType, LangDet, LangRec, ModelType, OCRVersion, TaskType

    model_type = ModelType.MOBILE if size == "mobile" else ModelType.SERVER
    for path, task, lang in (
        (detection, TaskType.DET, LangDet.CH),
        (recognition, TaskType.REC, LangRec(language)),
    ):
        if path.is_file():
            continue
        info = InferSession.get_model_url(FileInfo(EngineType.ONNXRUNTIME, OCRVersion.PPOCRV5, task, lang, model_type))
        path.parent.mkdir(parents=True, exist_ok=True)
        DownloadFile.run(
            DownloadFileInput(file_url=info["model_dir"], sha256=info["SHA256"], save_path=path, logger=_download_log)
        )
