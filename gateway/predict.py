"""POST /predict, the call Immich makes for every photo, served on the bare ASGI interface.

It sits in front of FastAPI's exception, routing and dependency layers: a profile under load put
a third of the gateway's CPU there, more than reading, checking and forwarding the body cost.
Everything else (/ping, /health, search) stays on FastAPI.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from aio_common import protocol
from aio_common.errors import ApiError, BadRequest
from aio_common.forms import parse_form, text_field
from aio_common.http import JsonResponse, error_body, unexpected_error
from aio_common.metrics import predict_task, set_task
from gateway.backends import BackendReply
from gateway.parts import Parts
from gateway.task_router import TaskRouter

PATH = "/predict"


class PredictEndpoint:
    """ASGI middleware that answers POST /predict itself and passes every other request on.
    It sits inside BodyLimitMiddleware, whose 413 surfaces here as an ApiError from `receive`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            refused = JsonResponse(error_body("Method Not Allowed"), status_code=405, headers={"allow": "POST"})
            await refused(scope, receive, send)
            return
        parts: Parts = scope["app"].state.parts
        content_type = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
        try:
            body = await _body(receive)
            if body is None:
                return  # the client went away; nobody is left to answer
            reply = await predict(parts.tasks, body, content_type, scope)
        except ApiError as exc:
            reply = BackendReply(exc.status, orjson.dumps(error_body(exc.message)), "application/json")
        except Exception as exc:  # the error boundary of this route: a logged JSON 500, never plain text
            reply = BackendReply(500, orjson.dumps(error_body(unexpected_error(PATH, exc))), "application/json")
        headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.content)).encode()),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.content})


async def _body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def predict(tasks: TaskRouter, body: bytes, content_type: str, scope: Scope) -> BackendReply:
    """Check the request as the stock server would, then route it; the body is forwarded as received."""
    form = parse_form(body, content_type)
    entries = protocol.parse_entries(form.get("entries"))
    set_task(scope, predict_task(entries, "image" in form or "text" not in form))
    payload: dict[str, Any] = {}
    if "image" in form:  # Form.__contains__: a look-up, never a copy of the image
        payload["image"] = form.view("image")  # copied only if the request must be split
    elif "text" in form:
        payload["text"] = text_field(form, "text")
    elif "assetId" not in form:
        raise BadRequest("Either image or text must be provided.")
    if not payload:
        # A newer Immich sends only an assetId for models that fetch the asset themselves.
        return await tasks.stock_ml.post(PATH, content=body, content_type=content_type)
    return await tasks.predict(entries, body, content_type, payload)
