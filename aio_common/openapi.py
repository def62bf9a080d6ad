"""Pieces of the OpenAPI documents both services publish: the error answers, multipart and JSON
request bodies, the api-key scheme, and the document's final touches.

Most routes read their bodies themselves (a multipart parser that never copies an image, orjson),
so FastAPI cannot infer what they take; each route states it with these helpers instead, and
tests hold the documents to what the running services do (`docs/`, the fuzzing campaign).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

JSON = "application/json"
Schema = dict[str, Any]

API_KEY = "ApiKey"
API_KEY_SCHEME: Schema = {
    "type": "apiKey",
    "in": "header",
    "name": "api-key",
    "description": "The shared key (API_AUTH_KEY on the AI service, MT_PHOTOS_API_KEY on the gateway).",
}
KEY_REQUIRED: list[dict[str, list[str]]] = [{API_KEY: []}]

ERROR: Schema = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "What is wrong, and the fix where there is one"}},
}

# Why each status is answered, for the documents (what the errors module's STATUS gives each fault).
REASONS = {
    400: "Not the request this route takes: not a form, a missing field, malformed JSON",
    401: "The key (or Immich's credentials) is missing or wrong",
    403: "Immich refused the caller",
    404: "Not found",
    405: "Method not allowed",
    409: "The resource's present state does not allow it",
    413: "The body, image or text is over a limit (MAX_REQUEST_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE)",
    422: "Well formed, but a value the route cannot use (entries, model names, an undecodable image)",
    502: "A backend answered with a server error or outside its protocol",
    503: "Busy, or something needed is not there now (a model, a backend, the database): try again",
    504: "A backend did not answer within READ_TIMEOUT",
}
EXAMPLES = {
    400: "Either image or text must be provided.",
    401: "Invalid API key",
    403: "Forbidden",
    404: "Asset 6f1d1c8e-0000-4000-8000-000000000000 not found.",
    405: "Method Not Allowed",
    409: "Nothing re-processed: the photo was edited in Immich's editor: ... Remove the edit first.",
    413: "Request body is larger than the limit of 67108864 bytes (MAX_REQUEST_BYTES).",
    422: "Invalid request format: entries.clip.visual.modelName: Field required.",
    502: "mt-photos-ai at http://mt-photos-ai:8060 failed with 500: ...",
    503: "The AI service is busy: 66 requests in progress; try again.",
    504: "mt-photos-ai at http://mt-photos-ai:8060 timed out.",
}


def errors(*codes: int, schema: Schema = ERROR, example: Callable[[str], Any] | None = None) -> dict[int | str, Any]:
    """The documented error answers `codes`, in one JSON shape (`schema`)."""
    shape = example or (lambda message: {"detail": message})
    return {
        code: {
            "description": REASONS[code],
            "content": {JSON: {"schema": schema, "example": shape(EXAMPLES[code])}},
        }
        for code in codes
    }


def ok(
    schema: Schema, example: Any = None, description: str = "Success", media_type: str = JSON
) -> dict[int | str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {200: {"description": description, "content": {media_type: content}}}


def json_body(schema: Schema, example: Any, *, required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {JSON: {"schema": schema, "example": example}}}}


def multipart_body(schema: Schema, encoding: dict[str, Any]) -> dict[str, Any]:
    """A multipart/form-data body; `encoding` gives each part's content type (images, JSON)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema, "encoding": encoding}},
        }
    }


def string_array(description: str) -> Schema:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def install(
    app: FastAPI,
    *,
    version: str,
    schemes: dict[str, Schema],
    components: dict[str, Schema] | None = None,
    extra_paths: Callable[[], dict[str, Any]] = dict,
    post_bodies: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Publish the document with the security `schemes`, `components` (schemas the bodies refer
    to), `extra_paths` (routes served outside
    FastAPI's routing, built at each request: they may follow what the service learnt) and
    `post_bodies` (request bodies that depend on settings)."""

    def document() -> dict[str, Any]:
        schema = get_openapi(title=app.title, version=version, description=app.description, routes=app.routes)
        schema["paths"].update(extra_paths())
        for path, body in (post_bodies or {}).items():
            schema["paths"][path]["post"].update(body)
        schema.setdefault("components", {})["securitySchemes"] = schemes
        schema["components"].setdefault("schemas", {}).update(components or {})
        return schema

    app.openapi = document  # type: ignore[method-assign]
