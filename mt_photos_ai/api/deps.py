"""What the routers share: the service's parts, the API key check, form parsing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import Request

from aio_common.errors import Unauthorized
from aio_common.forms import Form, parse_form
from aio_common.http import keys_equal
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings
from mt_photos_ai.tasks import Tasks


@dataclass(frozen=True)
class Service:
    settings: Settings
    runtime: Runtime
    tasks: Tasks


def service_of(request: Request) -> Service:
    return cast(Service, request.app.state.service)


def require_key(request: Request) -> None:
    settings = service_of(request).settings
    if settings.api_auth_required and not keys_equal(request.headers.get("api-key"), settings.api_auth_key):
        raise Unauthorized("Invalid API key")


def refuse_wrong_key(request: Request) -> None:
    """For the open /check: no key is needed, but a wrong one is refused, so the connection
    test of an MT Photos client still tells its user that the key is wrong."""
    if request.headers.get("api-key") is not None:
        require_key(request)


async def read_form(request: Request) -> Form:
    return parse_form(await request.body(), request.headers.get("content-type", ""))
