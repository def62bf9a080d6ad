"""Stand-ins for what cannot run here, faithful to the protocol facts (see shared reference).

`stock_immich_ml`: the stock Immich ML server (/ping, /predict answering faces as it does).
`fake_ai`: a fast AI service replica whose behaviour a test sets (status, delay, health, model).
`stock_immich_server`: Immich's API of a given release (versions, credentials, jobs, tags).
All record what they receive, so tests can check what the gateway sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from PIL import Image
from pydantic import ValidationError

from aio_common import protocol
from gateway.immich.dto import MetadataSearch, SmartSearch


@dataclass
class Received:
    entries: dict[str, Any]
    image_sha256: str | None
    image_filename: str | None
    image_type: str | None
    text: str | None
    headers: dict[str, str]


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    ping_status: int = 200
    dimension: int = 512
    model: str = "ViT-B-16"
    # A 200 answer with this body instead of the protocol's (a broken backend).
    raw_answer: bytes | None = None
    received: list[Received] = field(default_factory=list)


class Refused(Exception):
    """The stand-in answers with the failure status its behaviour asks for."""


async def _receive(request: Request, behaviour: Behaviour, who: str) -> tuple[Received, bytes | None]:
    """Record the request, wait the behaviour's delay, then fail if it says so."""
    form = await request.form()
    image = form.get("image")
    data = await image.read() if image is not None and not isinstance(image, str) else None
    received = Received(
        entries=orjson.loads(form["entries"]),
        image_sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
        image_filename=getattr(image, "filename", None),
        image_type=getattr(image, "content_type", None),
        text=form.get("text") if isinstance(form.get("text"), str) else None,
        headers=dict(request.headers),
    )
    behaviour.received.append(received)
    await asyncio.sleep(behaviour.delay)
    if behaviour.status != 200:
        raise Refused(f"{who} failed ({behaviour.status})")
    return received, data


def _ml_server(behaviour: Behaviour) -> FastAPI:
    """An ML server whose /ping answers as the test says."""
    app = FastAPI()

    @app.get("/")
    async def root():
        return {"message": "Immich ML"}  # the stock server's answer

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping():
        return PlainTextResponse("pong", status_code=behaviour.ping_status)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Exception):
        return JSONResponse({"detail": str(exc)}, behaviour.status)

    return app


# The tasks and model types the stock server's request model takes; anything else is its 422.
STOCK_TYPES = {
    protocol.FACES: {protocol.DETECTION, protocol.RECOGNITION},
    protocol.CLIP: {protocol.VISUAL, protocol.TEXTUAL},
    protocol.OCR: {protocol.DETECTION, protocol.RECOGNITION},
}


def stock_immich_ml(behaviour: Behaviour) -> FastAPI:
    app = _ml_server(behaviour)

    @app.post("/predict")
    async def predict(request: Request):
        received, data = await _receive(request, behaviour, "stock server")
        for task, types in received.entries.items():
            if task not in STOCK_TYPES or not isinstance(types, dict) or not set(types) <= STOCK_TYPES[task]:
                return JSONResponse({"detail": f"Invalid request format: {task}"}, 422)
        if protocol.DETECTION not in received.entries.get(protocol.FACES, {protocol.DETECTION: None}):
            return JSONResponse({"detail": "facial recognition needs a detection model"}, 400)
        if behaviour.raw_answer is not None:
            return PlainTextResponse(behaviour.raw_answer)
        try:
            width, height = Image.open(io.BytesIO(data)).size if data else (0, 0)
        except OSError:  # the stock server's gap: an undecodable image is its 500
            return PlainTextResponse("Internal Server Error", 500)
        answer: dict[str, Any] = {}
        if protocol.FACES in received.entries:
            answer[protocol.FACES] = [
                {
                    "boundingBox": {"x1": 10.0, "y1": -5.0, "x2": 90.0, "y2": 100.0},
                    "embedding": protocol.embedding_literal([0.01] * 512),
                    "score": 0.81,
                }
            ]
        if protocol.OCR in received.entries:
            answer[protocol.OCR] = {
                "text": ["stock"],
                "box": [0, 0, 1, 0, 1, 1, 0, 1],
                "boxScore": [0.9],
                "textScore": [0.9],
            }
        if data is not None:
            answer.update(imageHeight=height, imageWidth=width)
        return answer

    return app


def fake_ai(behaviour: Behaviour) -> FastAPI:
    app = _ml_server(behaviour)

    @app.get("/info")
    async def info():
        return {"clip": {"model": behaviour.model, "dimension": behaviour.dimension}}

    @app.post("/predict")
    async def predict(request: Request):
        received, _ = await _receive(request, behaviour, "replica")
        if behaviour.raw_answer is not None:
            return PlainTextResponse(behaviour.raw_answer)
        answer: dict[str, Any] = {"imageHeight": 10, "imageWidth": 20} if received.image_sha256 else {}
        if protocol.CLIP in received.entries:
            answer[protocol.CLIP] = protocol.embedding_literal([0.5] * behaviour.dimension)
        if protocol.OCR in received.entries:
            answer[protocol.OCR] = {
                "text": ["fake"],
                "box": [0, 0, 1, 0, 1, 1, 0, 1],
                "boxScore": [0.9],
                "textScore": [0.9],
            }
        return answer

    return app


@dataclass
class ImmichServer:
    """State of the stand-in Immich API of one release: users by credential, assets' owners,
    partners, the queues it runs, and what it received."""

    version: str = "3.2.2"
    # The scratch database the release's tag API writes to (DELETE /api/tags/{id}/assets).
    database: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # credential -> UserAdminResponseDto
    owners: dict[str, str] = field(default_factory=dict)  # asset id -> owner id
    partners: set[tuple[str, str]] = field(default_factory=set)  # (shared by, shared with)
    forwarded: list[dict[str, Any]] = field(default_factory=list)
    asset_calls: int = 0
    # What Immich's CLIP search ranks, best first, for any query; and how long it takes.
    clip_ranking: list[str] = field(default_factory=list)
    search_delay: float = 0.0
    # True: Immich's ML server fails the query's CLIP encoding, and Immich answers as it does.
    clip_down: bool = False
    # Job commands received: (route, queue, body, caller's user id); the status the jobs route
    # answers; queues already running (a start answers 400, as Immich does).
    jobs: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)
    jobs_status: int = 200
    jobs_delay: float = 0.0
    running: set[str] = field(default_factory=set)
    untagged: list[tuple[str, list[str], str]] = field(default_factory=list)  # (tag, asset ids, caller)

    @property
    def release(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))

    @property
    def major(self) -> int:
        return self.release[0]

    def add_user(self, user_id: str, api_key: str, is_admin: bool = False) -> None:
        self.users[api_key] = {"id": user_id, "email": f"{user_id[:8]}@example.com", "isAdmin": is_admin}

    def started(self) -> list[str]:
        """Queues started through the job route (the one that starts anything)."""
        return [queue for route, queue, body, _ in self.jobs if route == "jobs" and body.get("command") == "start"]


UNAUTHORIZED = {"message": "Authentication required", "error": "Unauthorized", "statusCode": 401}


def stock_immich_server(state: ImmichServer) -> FastAPI:
    """Immich's API as far as the gateway uses it, with the behaviour of `state.version`."""
    app = FastAPI()

    def caller(request: Request) -> dict[str, Any] | None:
        """Every credential form Immich accepts: cookie, x-api-key, bearer, the mobile apps'
        x-immich-user-token, x-immich-session-token, and ?apiKey= / ?sessionKey=."""
        bearer = request.headers.get("authorization", "")
        for credential in (
            request.headers.get("x-api-key"),
            request.cookies.get("immich_access_token"),
            bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None,
            request.headers.get("x-immich-user-token"),
            request.headers.get("x-immich-session-token"),
            request.query_params.get("apiKey"),
            request.query_params.get("sessionKey"),
        ):
            if credential and credential in state.users:
                return state.users[credential]
        return None

    @app.get("/api/server/version")
    async def version():
        major, minor, patch = (int(part) for part in state.version.split("."))
        return {"major": major, "minor": minor, "patch": patch, "prerelease": None}

    @app.get("/api/users/me")
    async def me(request: Request):
        user = caller(request)
        return user if user else JSONResponse(UNAUTHORIZED, 401)

    @app.get("/api/assets/{asset_id}")
    async def asset(asset_id: str, request: Request):
        state.asset_calls += 1
        user = caller(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, 401)
        owner = state.owners.get(asset_id)
        if owner is None or (owner != user["id"] and (owner, user["id"]) not in state.partners):
            return JSONResponse({"message": "Not found or no asset.read access", "statusCode": 400}, 400)
        # GET /api/assets/{id} always carries exifInfo (a search only with withExif).
        return {
            "id": asset_id,
            "ownerId": owner,
            "type": "IMAGE",
            "originalFileName": f"{asset_id[:8]}.jpg",
            "exifInfo": {"city": None},
        }

    def admin_of(request: Request) -> dict[str, Any] | JSONResponse:
        user = caller(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, 401)
        if not user["isAdmin"]:
            return JSONResponse({"message": "Forbidden", "statusCode": 403}, 403)
        return user

    @app.put("/api/jobs/{queue}")
    async def job(queue: str, request: Request):
        user = admin_of(request)
        if isinstance(user, JSONResponse):
            return user
        await asyncio.sleep(state.jobs_delay)
        if state.jobs_status != 200:
            return JSONResponse({"message": "jobs unavailable"}, state.jobs_status)
        body = orjson.loads(await request.body())
        if body.get("command") == "start" and queue in state.running:
            return JSONResponse({"message": "Job is already running", "statusCode": 400}, 400)
        state.jobs.append(("jobs", queue, body, user["id"]))
        return {"jobCounts": {"active": 0, "waiting": 1}, "queueStatus": {"isActive": True, "isPaused": False}}

    @app.put("/api/queues/{queue}")
    async def queue_update(queue: str, request: Request):
        """3.x: pauses or resumes a queue; a start command is accepted and does nothing."""
        if state.major < 3:
            return JSONResponse({"message": "Cannot PUT /api/queues", "statusCode": 404}, 404)
        user = admin_of(request)
        if isinstance(user, JSONResponse):
            return user
        state.jobs.append(("queues", queue, orjson.loads(await request.body()), user["id"]))
        return {"name": queue, "isPaused": False}

    @app.delete("/api/tags/{tag_id}/assets")
    async def untag(tag_id: str, request: Request):
        """Only the tag's owner may untag; Immich removes tag_asset rows and the stored tag value."""
        user = caller(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, 401)
        ids = [uuid.UUID(a) for a in orjson.loads(await request.body())["ids"]]
        conn = await asyncpg.connect(state.database)
        try:
            tag = await conn.fetchrow('SELECT "userId", value FROM tag WHERE id = $1', uuid.UUID(tag_id))
            if tag is None or str(tag["userId"]) != user["id"]:
                return JSONResponse({"message": "Not found or no tag.asset access", "statusCode": 400}, 400)
            asset_col, tag_col = ("assetId", "tagId") if state.release >= (2, 3) else ("assetsId", "tagsId")
            await conn.execute(
                f'DELETE FROM tag_asset WHERE "{tag_col}" = $1 AND "{asset_col}" = ANY($2::uuid[])',
                uuid.UUID(tag_id),
                ids,
            )
            if state.release >= (2, 5):  # the stored list, and `tags` locked (updateLockedColumns)
                await conn.execute(
                    'UPDATE asset_exif SET tags = array_remove(tags, $2::varchar), "lockedProperties" ='
                    " (SELECT array_agg(DISTINCT p) FROM unnest(\"lockedProperties\" || '{tags}'::varchar[]) p)"
                    ' WHERE "assetId" = ANY($1::uuid[])',
                    ids,
                    tag["value"],
                )
        finally:
            await conn.close()
        state.untagged.append((tag_id, [str(i) for i in ids], user["id"]))
        return [{"id": str(i), "success": True} for i in ids]

    @app.get("/api/server/ping")
    async def server_ping(request: Request):
        return {"res": "pong", "host": request.headers.get("host")}

    @app.post("/api/search/metadata")
    async def metadata(request: Request):
        """Records what reaches it; validates MetadataSearchDto's typed fields as Immich does;
        answers with no assets (Immich's own matching is not stood in)."""
        body = await request.body()
        state.forwarded.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        if caller(request) is None:
            return JSONResponse(UNAUTHORIZED, 401)
        try:
            data = orjson.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("not an object")
            MetadataSearch.model_validate({"ocr": "", **data}).filters()
        except (ValueError, ValidationError):  # orjson's error is a ValueError
            return JSONResponse({"message": ["Bad Request"], "statusCode": 400}, 400)
        assets = {"total": 0, "count": 0, "items": [], "facets": [], "nextPage": None}
        empty = {"albums": {"total": 0, "count": 0, "items": [], "facets": []}, "assets": assets}
        return JSONResponse(empty, headers={"x-immich-answer": "yes"})

    @app.post("/api/search/smart")
    async def smart(request: Request):
        body = await request.body()
        state.forwarded.append({"query": request.url.query, "headers": dict(request.headers), "body": body})
        user = caller(request)
        if user is None:
            return JSONResponse(UNAUTHORIZED, 401)
        await asyncio.sleep(state.search_delay)
        if state.clip_down:  # the real server's answer when /predict fails (3.1.0 and 2.7.5)
            failed = {"message": "Failed to search smart", "error": "Internal Server Error", "statusCode": 500}
            return JSONResponse({**failed, "correlationId": uuid.uuid4().hex[:8]}, 500)
        # Immich validates SmartSearchDto (class-validator): a bad field is its 400; a search
        # needs words or an example asset.
        try:
            data = orjson.loads(body)
            if isinstance(data, dict) and "query" not in data and "queryAssetId" in data:
                data = {**data, "query": "by example"}
            dto = SmartSearch.model_validate(data)
            if "ocr" in data and not isinstance(data["ocr"], str):
                raise ValueError("ocr must be a string")
        except (ValueError, ValidationError):  # orjson's error is a ValueError
            return JSONResponse({"message": ["Bad Request"], "statusCode": 400}, 400)
        if not dto.query:
            return JSONResponse({"message": ["query should not be empty"], "statusCode": 400}, 400)
        page, size = dto.page, dto.size
        ranked = state.clip_ranking[(page - 1) * size : page * size]
        more = len(state.clip_ranking) > page * size
        items = [
            {"id": a, "ownerId": state.owners.get(a), "type": "IMAGE", "originalFileName": "clip.jpg"} for a in ranked
        ]
        assets = {"total": len(items), "count": len(items), "items": items, "facets": []}
        if state.major >= 3:
            assets["nextCursor"] = None
        return JSONResponse(
            {
                "albums": {"total": 0, "count": 0, "items": [], "facets": []},
                "assets": {**assets, "nextPage": str(page + 1) if more else None},
            },
            headers={"x-immich-answer": "yes"},
        )

    return app
