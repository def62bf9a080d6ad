"""Dependencies shared by the routers: settings, runtime, API key check, form parsing."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from aio_common.http import ApiError, keys_equal
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def require_key(request: Request) -> None:
    settings = settings_of(request)
    if settings.api_auth_required and not keys_equal(request.headers.get("api-key"), settings.api_auth_key):
        raise ApiError(401, "Invalid API key")


async def read_form(request: Request) -> FormData:
    # Text parts are bounded by the body limit; MAX_TEXT_CHARS is checked per field after.
    return await request.form(max_part_size=settings_of(request).max_request_bytes)


async def file_bytes(form: FormData, field: str) -> bytes | None:
    part = form.get(field)
    if part is None:
        return None
    if not isinstance(part, UploadFile):
        raise ApiError(422, f"'{field}' must be sent as a file part (with a filename), not as a text field.")
    return await part.read()


def checked_text(text: object, settings: Settings) -> str:
    if not isinstance(text, str):
        raise ApiError(422, "'text' must be a string.")
    if not text.strip():
        raise ApiError(422, "'text' is empty.")
    if len(text) > settings.max_text_chars:
        raise ApiError(
            422, f"'text' has {len(text)} characters; the limit is {settings.max_text_chars} (MAX_TEXT_CHARS)."
        )
    return text
