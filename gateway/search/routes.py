"""POST /api/search/smart, in front of Immich's own:

- `ocr:words`: answered from the OCR word index (ranked, permission-checked through Immich);
- `clip:words`: Immich's CLIP ranking alone (the prefix stripped, then forwarded);
- plain text: with HYBRID_SEARCH, Immich's CLIP ranking fused with the OCR ranking; without it,
  and for anything that is not a text query, forwarded to Immich unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from aio_common.http import ApiError, JsonResponse
from gateway.search.hybrid import Fusion
from gateway.search.immich_api import ImmichRefused, credentials_of
from gateway.search.schemas import SmartSearch, search_response
from gateway.search.service import SearchService

log = logging.getLogger(__name__)
router = APIRouter()

PREFIX = re.compile(r"^\s*(ocr|clip)\s*:", re.IGNORECASE)
# Immich's largest page; deeper CLIP rankings are fetched page by page.
IMMICH_MAX_PAGE = 1000


@router.post("/api/search/smart")
async def smart_search(request: Request) -> Response:
    service: SearchService = request.app.state.search
    body = await request.body()
    data = _json_object(body)
    query = data.get("query") if data else None
    if not isinstance(query, str):
        return await service.immich.forward(request, body)
    match = PREFIX.match(query)
    words = query[match.end() :].strip() if match else query.strip()
    mode = match.group(1).lower() if match else None
    if mode == "clip":
        return await service.immich.forward(request, orjson.dumps({**data, "query": words}))
    if mode == "ocr":
        return await ocr_search(request, service, body, words)
    if not service.settings.hybrid_search or not words:
        return await service.immich.forward(request, body)
    return await hybrid_search(request, service, data, words)


def _dto(body: bytes) -> SmartSearch:
    try:
        return SmartSearch.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


async def ocr_ranking(
    service: SearchService, credentials: dict[str, str], words: str, dto: SmartSearch, limit: int, offset: int
) -> list[str]:
    """Asset ids of the caller's OCR hits, best first; Immich's 401/403 raise ImmichRefused."""
    async with service.database() as index:
        # Who is asking (Immich) and indexing what Immich has just OCR'd (database), at once.
        caught_up, user = await asyncio.gather(
            index.catch_up(service.settings.search_catchup_limit),
            service.immich.me(credentials),
            return_exceptions=True,
        )
        for outcome in (user, caught_up):
            if isinstance(outcome, BaseException):
                raise outcome
        tsquery = await index.tsquery(words)
        if not tsquery:
            return []
        return await index.search(tsquery, user["id"], dto.filters(), limit, offset)  # type: ignore[index]


async def ocr_search(request: Request, service: SearchService, body: bytes, words: str) -> Response:
    if not words:
        raise ApiError(400, "ocr: needs words to search for, for example ocr:发票")
    dto = _dto(body)
    credentials = credentials_of(request)
    try:
        ids = await ocr_ranking(service, credentials, words, dto, dto.size + 1, (dto.page - 1) * dto.size)
    except ImmichRefused as refused:
        return refused.response
    items = await service.immich.assets(ids[: dto.size], credentials)
    return JsonResponse(search_response(items, dto.page + 1 if len(ids) > dto.size else None))


async def hybrid_search(request: Request, service: SearchService, data: dict[str, Any], words: str) -> Response:
    try:
        dto = SmartSearch.model_validate({**data, "query": words})
    except ValidationError:
        return await service.immich.forward(request, orjson.dumps(data))  # Immich names the fault
    depth = dto.page * dto.size
    credentials = credentials_of(request)
    clip_task = asyncio.ensure_future(_clip_ranking(service, request, data, words, depth))
    try:
        ocr_ids = await ocr_ranking(service, credentials, words, dto, depth + 1, 0)
    except (ApiError, ImmichRefused) as exc:
        # Without the index (or with refused credentials, which Immich's own answer will
        # show), the CLIP ranking alone answers.
        log.info("hybrid search without OCR ranking", extra={"error": getattr(exc, "message", "refused")})
        ocr_ids = []
    clip = await clip_task
    if isinstance(clip, Response):
        return clip
    clip_items, clip_more = clip
    clip_ids = list(clip_items)
    fusion = Fusion(
        service.settings.hybrid_rrf_k, service.settings.hybrid_clip_weight, service.settings.hybrid_ocr_weight
    )
    page = fusion.page(clip_ids, ocr_ids[:depth], dto.page, dto.size)
    missing = [asset_id for asset_id in page if asset_id not in clip_items]
    fetched = {item["id"]: item for item in await service.immich.assets(missing, credentials)}
    items = [clip_items.get(asset_id) or fetched.get(asset_id) for asset_id in page]
    more = clip_more or len(ocr_ids) > depth or len(set(clip_ids) | set(ocr_ids[:depth])) > depth
    return JsonResponse(search_response([i for i in items if i], dto.page + 1 if more else None))


async def _clip_ranking(
    service: SearchService, request: Request, data: dict[str, Any], words: str, depth: int
) -> tuple[dict[str, dict[str, Any]], bool] | Response:
    """Immich's CLIP ranking `depth` deep (AssetResponseDto by id, in rank order) and whether it
    goes deeper; or Immich's own answer when it refused."""
    items: dict[str, dict[str, Any]] = {}
    size = min(depth, IMMICH_MAX_PAGE)
    page = 1
    while True:
        body = orjson.dumps({**data, "query": words, "page": page, "size": size})
        status, answer = await service.immich.search(request, body)
        if status != 200:
            return Response(answer, status_code=status, media_type="application/json")
        assets = orjson.loads(answer)["assets"]
        for item in assets["items"]:
            items.setdefault(item["id"], item)
        if not assets.get("nextPage") or len(items) >= depth:
            return items, bool(assets.get("nextPage"))
        page += 1


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
