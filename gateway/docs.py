"""What the gateway's routes take and answer, for its OpenAPI document (docs/openapi-gateway.json).

/predict is served outside FastAPI's routing (gateway.predict), so its whole path item is written
here. Its CLIP model names are those that fit the model the AI service serves: the document is
built once that is known (before, it lists every name Immich's table holds).
"""

from __future__ import annotations

from typing import Any

from aio_common import openapi, protocol, protocol_docs
from gateway.immich.dto import MetadataSearch, SmartSearch
from gateway.reprocess.bodies import ReprocessAnswer, ReprocessRequest

# Immich's credentials, in the forms Immich takes (the gateway passes them on to Immich).
IMMICH_SCHEMES: dict[str, openapi.Schema] = {
    "ImmichApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "ImmichBearer": {"type": "http", "scheme": "bearer"},
    "ImmichCookie": {"type": "apiKey", "in": "cookie", "name": "immich_access_token"},
}
# Immich's own error answer, passed back as Immich gave it (a refused credential, a bad field).
IMMICH_ERROR: openapi.Schema = {
    "type": "object",
    "required": ["message", "statusCode"],
    "properties": {
        "message": {"anyOf": [{"type": "string"}, openapi.string_array("What is wrong")]},
        "statusCode": {"type": "integer"},
        "error": {"type": "string"},
    },
}
EITHER_ERROR: openapi.Schema = {"anyOf": [openapi.ERROR, IMMICH_ERROR]}
IMMICH_CREDENTIALS: list[dict[str, list[str]]] = [{name: []} for name in IMMICH_SCHEMES]


def _entry(names: list[str]) -> openapi.Schema:
    return {**protocol_docs.ENTRY, "properties": {**protocol_docs.ENTRY["properties"], "modelName": {"enum": names}}}


FACES_TASK: openapi.Schema = {
    "type": "object",
    "required": [protocol.DETECTION],
    "additionalProperties": False,
    "properties": {protocol.DETECTION: protocol_docs.ENTRY, protocol.RECOGNITION: protocol_docs.ENTRY},
    "description": "Answered by the stock Immich ML server",
}
FACES_ANSWER: openapi.Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["boundingBox", "embedding", "score"],
        "properties": {
            "boundingBox": {"type": "object", "additionalProperties": {"type": "number"}},
            "embedding": protocol_docs.VECTOR_LITERAL,
            "score": {"type": "number"},
        },
    },
}
TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": protocol.DEFAULT_MAX_TEXT_CHARS,
    "description": "At most the AI's MAX_TEXT_CHARS",
}


def predict_path(names: list[str]) -> dict[str, Any]:
    """The /predict path item, for the CLIP model names that fit the served model."""
    entry = _entry(names)
    image_entries = protocol_docs.entries(
        {
            protocol.CLIP: protocol_docs.clip_task(protocol.VISUAL, entry),
            protocol.OCR: protocol_docs.OCR_TASK,
            protocol.FACES: FACES_TASK,
        }
    )
    text_entries = protocol_docs.entries(
        {protocol.CLIP: protocol_docs.clip_task(protocol.TEXTUAL, entry)}, required=[protocol.CLIP]
    )
    answer = {
        **protocol_docs.PREDICT_ANSWER,
        "properties": {**protocol_docs.PREDICT_ANSWER["properties"], protocol.FACES: FACES_ANSWER},
    }
    return {
        "post": {
            "summary": "Immich's ML endpoint: OCR and CLIP to the AI service, faces to the stock server",
            "description": "Set Immich's machine learning URL to this service. A request's tasks are sent "
            "to their backends (concurrently) and the answers merged. CLIP model names must fit the "
            "dimension of the model the AI service serves (GET /health lists them).",
            "operationId": "predict",
            **protocol_docs.predict_body(image_entries, text_entries, TEXT),
            "responses": {
                **openapi.ok(answer, protocol_docs.PREDICT_EXAMPLE),
                **openapi.errors(400, 413, 422, 502, 503, 504),
            },
        }
    }


_SEARCH_SCHEMA = SmartSearch.model_json_schema(ref_template="#/components/schemas/{model}")
# The filter tree's parts, for the document's components.
SEARCH_PARTS: dict[str, openapi.Schema] = _SEARCH_SCHEMA.pop("$defs")
SEARCH_BODY: openapi.Schema = {
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
SEARCH_ANSWER: openapi.Schema = {
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
        **openapi.ok(SEARCH_ANSWER, {"albums": {}, "assets": {"total": 0, "count": 0, "items": [], "nextPage": None}}),
        **openapi.errors(400, 401, 403, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **openapi.json_body(SEARCH_BODY, {"query": "ocr:发票", "page": 1, "size": 100}),
        "security": IMMICH_CREDENTIALS,
    },
}

METADATA_BODY: openapi.Schema = {
    **MetadataSearch.model_json_schema(),
    "description": "Immich's MetadataSearchDto. With `ocr` (or 3.2's `filter.ocr`), Immich's OCR search "
    "type, answered from the OCR word index in Immich's date order; without it, or with filters the index "
    "does not apply, passed to Immich.",
    "required": [],
}
METADATA_SEARCH = {
    "summary": "Immich's metadata search; its OCR search type answered from the OCR word index",
    "responses": {
        **openapi.ok(SEARCH_ANSWER, {"albums": {}, "assets": {"total": 0, "count": 0, "items": [], "nextPage": None}}),
        **openapi.errors(400, 401, 403, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **openapi.json_body(METADATA_BODY, {"ocr": "发票", "page": 1, "withExif": True}, required=False),
        "security": IMMICH_CREDENTIALS,
    },
}

REPROCESS_BODY: openapi.Schema = {
    **ReprocessRequest.model_json_schema(),
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
            "content": {openapi.JSON: {"schema": ReprocessAnswer.model_json_schema()}},
        },
        **openapi.errors(401, 403, 404, 409, 422, 502, 503, 504, schema=EITHER_ERROR),
    },
    "openapi_extra": {
        **openapi.json_body(REPROCESS_BODY, {"ocr": True, "clip": False}, required=False),
        "security": IMMICH_CREDENTIALS,
    },
}
