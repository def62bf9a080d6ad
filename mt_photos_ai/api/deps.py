"""Dependencies shared by the routers: settings, runtime, API key check, form parsing."""

from __future__ import annotations

from fastapi import Request

from aio_common.errors import Invalid, Unauthorized
from aio_common.forms import Form, parse_form
from aio_common.http import keys_equal
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def require_key(request: Request) -> None:
    settings = settings_of(request)
    if settings.api_auth_required and not keys_equal(request.headers.get("api-key"), settings.api_auth_key):
        raise Unauthorized("Invalid API key")


def refuse_wrong_key(request: Request) -> None:
    """For the open /check: no key is needed, but a wrong one is refused, so the connection
    test of an MT Photos client still tells its user that the key is wrong."""
    if request.headers.get("api-key") is not None:
        require_key(request)


async def read_form(request: Request) -> Form:
    return parse_form(await request.body(), request.headers.get("content-type", ""))


def checked_text(text: object, settings: Settings) -> str:
    if not isinstance(text, str):
        raise Invalid("'text' must be a string.")
    if not text.strip():
        raise Invalid("'text' is empty.")
    if len(text) > settings.max_text_chars:
        raise Invalid(f"'text' has {len(text)} characters; the limit is {settings.max_text_chars} (MAX_TEXT_CHARS).")
    return text
