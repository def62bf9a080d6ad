"""HTTP plumbing shared by both services: JSON errors, request body limit, key comparison."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JsonResponse(Response):
    """JSON rendered by orjson (fast, and keeps Chinese text as UTF-8)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A failure with an HTTP status and a message that names the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than the limit of {limit} bytes (MAX_REQUEST_BYTES).")


def error_body(message: str) -> dict[str, Any]:
    return {"detail": message}


def install_error_handler(
    app: FastAPI, shape: Callable[[Request, str], dict[str, Any]] = lambda _, message: error_body(message)
) -> None:
    """Answer every ApiError as JSON; `shape` lets a service add the fields its clients read."""

    async def handle(request: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, ApiError)
        return JsonResponse(shape(request, exc.message), status_code=exc.status)

    app.add_exception_handler(ApiError, handle)


class BodyLimitMiddleware:
    """Refuses bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
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

    async def _refuse(self, send: Send) -> None:
        response = JsonResponse(error_body(BodyTooLarge(self.limit).message), status_code=413)
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def keys_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so a wrong key leaks nothing through timing."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
