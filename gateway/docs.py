"""What the gateway's routes take and answer, for its OpenAPI document (docs/openapi-gateway.json).

/predict is served outside FastAPI's routing (gateway.predict), so its whole path item is written
here. Its CLIP model names are those that fit the model the AI service serves: the document is
built once that is known (before, it lists every name Immich's table holds).
"""

from __future__ import annotations

from typing import Any

from aio_common import openapi as o
from aio_common import protocol as p
from aio_common import protocol_docs as pd
from gateway.immich.dto import MAX_SAFE_INTEGER, SmartSearch

# Immich's credentials, in the forms Immich takes (the gateway passes them on to Immich).
IMMICH_SCHEMES: dict[str, o.Schema] = {
    "ImmichApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "ImmichBearer": {"type": "http", "scheme": "bearer"},
    "ImmichCookie": {"type": "apiKey", "in": "cookie", "name": "immich_access_token"},
}
# Immich's own error answer, passed back as Immich gave it (a refused credential, a bad field).
IMMICH_ERROR: o.Schema = {
    "type": "object",
    "required": ["message", "statusCode"],
    "properties": {
        "message": {"anyOf": [{"type": "string"}, o.string_array("What is wrong")]},
        "statusCode": {"type": "integer"},
        "error": {"type": "string"},
    },
}
EITHER_ERROR: o.Schema = {"anyOf": [o.ERROR, IMMICH_ERROR]}
IMMICH_CREDENTIALS: list[dict[str, list[str]]] = [{name: []} for name in IMMICH_SCHEMES]


def _entry(names: list[str]) -> o.Schema:
    return {**pd.ENTRY, "properties": {**pd.ENTRY["properties"], "modelName": {"enum": names}}}


FACES_TASK: o.Schema = {
    "type": "object",
    "required": [p.DETECTION],
    "additionalProperties": False,
    "properties": {p.DETECTION: pd.ENTRY, p.RECOGNITION: pd.ENTRY},
    "description": "Answered by the stock Immich ML server",
}
FACES_ANSWER: o.Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["boundingBox", "embedding", "score"],
        "properties": {
            "boundingBox": {"type": "object", "additionalProperties": {"type": "number"}},
            "embedding": pd.VECTOR_LITERAL,
            "score": {"type": "number"},
        },
    },
}
TEXT = {"type": "string", "minLength": 1, "maxLength": 1000, "description": "At most the AI's MAX_TEXT_CHARS"}


def predict_path(names: list[str]) -> dict[str, Any]:
    """The /predict path item, for the CLIP model names that fit the served model."""
    entry = _entry(names)
    image_entries = pd.entries({p.CLIP: pd.clip_task(p.VISUAL, entry), p.OCR: pd.OCR_TASK, p.FACES: FACES_TASK})
    text_entries = pd.entries({p.CLIP: pd.clip_task(p.TEXTUAL, entry)}, required=[p.CLIP])
    answer = {
        **pd.PREDICT_ANSWER,
        "properties": {**pd.PREDICT_ANSWER["properties"], p.FACES: FACES_ANSWER},
    }
    return {
        "post": {
            "summary": "Immich's ML endpoint: OCR and CLIP to the AI service, faces to the stock server",
            "description": "Set Immich's machine learning URL to this service. A request's tasks are sent "
            "to their backends (concurrently) and the answers merged. CLIP model names must fit the "
            "dimension of the model the AI service serves (GET /health lists them).",
            "operationId": "predict",
            **pd.predict_body(image_entries, text_entries, TEXT),
            "responses": {
                **o.ok(answer, pd.PREDICT_EXAMPLE),
                **o.errors(400, 413, 422, 502, 503, 504),
            },
        }
    }


_SEARCH_SCHEMA = SmartSearch.model_json_schema(ref_template="#/components/schemas/{model}")
# The filter tree's parts, for the document's components.
SEARCH_PARTS: dict[str, o.Schema] = _SEARCH_SCHEMA.pop("$defs")
SEARCH_BODY: o.Schema = {
    **_SEARCH_SCHEMA,
    "description": "Immich's SmartSearchDto. `ocr:words` searches the OCR word index, `clip:words` "
    "Immich's CLIP ranking alone, plain words both (fused). With Immich's `ocr` field (or 3.2's "
    "`filter.ocr`), Immich's CLIP ranking of the word index's matches. Fields not listed pass to Immich.",
}
SEARCH_BODY["properties"]["ocr"] = {"type": "string"}
SEARCH_BODY["properties"]["query"] = {"type": "string", "minLength": 1}
# Words, or an example asset (forwarded to Immich as it is).
SEARCH_BODY["required"] = []
SEARCH_BODY["anyOf"] = [{"required": ["query"]}, {"required": ["queryAssetId"]}]
SEARCH_ANSWER: o.Schema = {
    "type": "object",
    "required": ["albums", "assets"],
    "properties": {
        "albums": {"type": "object"},
        "assets": {
            "type": "object",
            "required": ["total", "count", "items", "nextPage"],
            "properties": {
                "total": {"type": "integer"},
                "count": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "object", "required": ["id"]}},
                "nextPage": {"type": ["string", "null"]},
            },
        },
    },
}
SEARCH = {
    "summary": "Immich's smart search, with `ocr:` and `clip:` prefixes and mixed ranking",
    "responses": {
        **o.ok(SEARCH_ANSWER, {"albums": {}, "assets": {"total": 0, "count": 0, "items": [], "nextPage": None}}),
        **o.errors(400, 401, 403, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **o.json_body(SEARCH_BODY, {"query": "ocr:发票", "page": 1, "size": 100}),
        "security": IMMICH_CREDENTIALS,
    },
}

METADATA_BODY: o.Schema = {
    "type": "object",
    "description": "Immich's MetadataSearchDto. With `ocr` (or 3.2's `filter.ocr`), Immich's OCR search "
    "type, answered from the OCR word index in Immich's date order; without it, or with filters the index "
    "does not apply, passed to Immich.",
    "properties": {
        "ocr": {"type": "string"},
        "page": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER},
        "size": {"type": "integer", "minimum": 1, "maximum": 1000},
        "order": {"enum": ["asc", "desc"]},
        "withExif": {"type": "boolean"},
    },
}
METADATA_SEARCH = {
    "summary": "Immich's metadata search; its OCR search type answered from the OCR word index",
    "responses": {
        **o.ok(SEARCH_ANSWER, {"albums": {}, "assets": {"total": 0, "count": 0, "items": [], "nextPage": None}}),
        **o.errors(400, 401, 403, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **o.json_body(METADATA_BODY, {"ocr": "发票", "page": 1, "withExif": True}, required=False),
        "security": IMMICH_CREDENTIALS,
    },
}

REPROCESS_BODY: o.Schema = {
    "type": "object",
    "properties": {"ocr": {"type": "boolean", "default": True}, "clip": {"type": "boolean", "default": True}},
    "not": {
        "required": ["ocr", "clip"],
        "properties": {"ocr": {"const": False}, "clip": {"const": False}},
    },
}
REPROCESS = {
    "summary": "Re-process one asset's OCR text and/or CLIP vector (its owner or an admin)",
    "status_code": 202,
    "responses": {
        202: {
            "description": "Reset, and Immich's queues started (or pending: already running)",
            "content": {
                o.JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["assetId", "queued", "pending", "kept"],
                        "properties": {
                            "assetId": {"type": "string"},
                            "queued": o.string_array("Immich queues started now"),
                            "pending": o.string_array("Queues started later (they were running)"),
                            "kept": {
                                "type": "object",
                                "description": "Results kept, by queue, with the reason: Immich's job cannot redo "
                                "them for a photo edited in its editor",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    }
                }
            },
        },
        **o.errors(401, 403, 404, 409, 422, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **o.json_body(REPROCESS_BODY, {"ocr": True, "clip": False}, required=False),
        "security": IMMICH_CREDENTIALS,
    },
}
