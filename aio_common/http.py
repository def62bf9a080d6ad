"""HTTP plumbing shared by both services: JSON errors, request body limit, key comparison."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aio_common.errors import Answered, ApiError, TooLarge

log = logging.getLogger(__name__)


class JsonResponse(Response):
    """JSON rendered by orjson (fast, and keeps Chinese text as UTF-8)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class BodyTooLarge(TooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the limit of {limit} bytes (MAX_REQUEST_BYTES).")


def error_body(message: str) -> dict[str, Any]:
    return {"detail": message}


# The JSON body of an error, by request path: a service whose clients read other fields (MT
# Photos reads `msg`) gives its own, used by every error it answers, the body limit's included.
Shape = Callable[[str, str], dict[str, Any]]


def default_shape(path: str, message: str) -> dict[str, Any]:
    return error_body(message)


def unexpected_error(path: str, exc: BaseException) -> str:
    """Log an error nobody foresaw (with its traceback) and name it for the client."""
    log.error("unexpected error", exc_info=exc, extra={"path": path})
    return f"Internal error ({type(exc).__name__}); it is logged. Please report it."


def install_error_handlers(app: FastAPI, shape: Shape = default_shape) -> None:
    """Answer every ApiError, and any unexpected exception (as a logged 500), in one JSON shape;
    another server's own answer (Answered) as it came."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if isinstance(exc, Answered):
            return Response(exc.content, status_code=exc.status, media_type=exc.content_type)
        return JsonResponse(shape(request.url.path, exc.message), status_code=exc.status)

    async def unexpected(request: Request, exc: Exception) -> JsonResponse:
        return JsonResponse(shape(request.url.path, unexpected_error(request.url.path, exc)), status_code=500)

    app.add_exception_handler(ApiError, handle)
    app.add_exception_handler(Exception, unexpected)


class BodyLimitMiddleware:
    """Refuses bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int, shape: Shape = default_shape) -> None:
        self.app = app
        self.limit = limit
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        response = JsonResponse(self.shape(scope["path"], BodyTooLarge(self.limit).message), status_code=413)
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


# MT Photos' well-known default key: both services start with it and warn (the AI service
# refuses it where its port is published).
DEFAULT_KEY = "mt_photos_ai_extra"


def keys_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so a wrong key leaks nothing through timing."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
