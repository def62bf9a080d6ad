"""Immich-shaped machine-learning requests: the entries Immich's server sends, and the body."""

from __future__ import annotations

from typing import Any

from aio_common.protocol import predict_body

OCR_ENTRIES = {
    "ocr": {
        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}},
    }
}
FACE_ENTRIES = {
    "facial-recognition": {
        "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
        "recognition": {"modelName": "buffalo_l"},
    }
}


def clip_entries(kind: str, model: str = "RN50__openai") -> dict[str, Any]:
    options = {"language": "zh-CN"} if kind == "textual" else {}
    return {"clip": {kind: {"modelName": model, "options": options}}}


def immich_request(entries: Any, *, image: bytes | None = None, text: str | None = None) -> dict[str, Any]:
    """httpx keyword arguments for a /predict request shaped like the one Immich's server sends."""
    body, content_type = predict_body(entries, image=image, text=text)
    return {"content": body, "headers": {"content-type": content_type}}
