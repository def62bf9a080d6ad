"""POST /api/search/smart: `ocr:` queries answered from the word index, all others forwarded."""

from __future__ import annotations

import asyncio
import re

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from aio_common.http import ApiError, JsonResponse
from gateway.search.immich_api import ImmichRefused, credentials_of
from gateway.search.schemas import SmartSearch, search_response
from gateway.search.service import SearchService

router = APIRouter()

OCR_PREFIX = re.compile(r"^\s*ocr\s*:", re.IGNORECASE)


@router.post("/api/search/smart")
async def smart_search(request: Request) -> Response:
    service: SearchService = request.app.state.search
    body = await request.body()
    query = _query_of(body)
    if query is None or not OCR_PREFIX.match(query):
        return await service.immich.forward(request, body)
    words = OCR_PREFIX.sub("", query, count=1).strip()
    if not words:
        raise ApiError(400, "ocr: needs words to search for, for example ocr:发票")
    try:
        dto = SmartSearch.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    credentials = credentials_of(request)
    async with service.database() as index:
        # Who is asking (Immich) and indexing what Immich has just OCR'd (database), at once.
        caught_up, user = await asyncio.gather(
            index.catch_up(service.settings.search_catchup_limit),
            service.immich.me(credentials),
            return_exceptions=True,
        )
        if isinstance(user, ImmichRefused):
            return user.response
        for outcome in (caught_up, user):
            if isinstance(outcome, BaseException):
                raise outcome
        tsquery = await index.tsquery(words)
        ids = (
            await index.search(tsquery, user["id"], dto.filters(), dto.size + 1, (dto.page - 1) * dto.size)
            if tsquery
            else []
        )
    items = await service.immich.assets(ids[: dto.size], credentials)
    next_page = dto.page + 1 if len(ids) > dto.size else None
    return JsonResponse(search_response(items, next_page))


def _query_of(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    query = data.get("query") if isinstance(data, dict) else None
    return query if isinstance(query, str) else None
