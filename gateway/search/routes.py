"""POST /api/search/smart and POST /api/search/metadata, in front of Immich's own.

POST /api/search/smart:

- `ocr:words`: answered from the OCR word index (ranked, permission-checked through Immich);
- `clip:words`: Immich's CLIP ranking alone (the prefix stripped, then forwarded);
- plain text: with HYBRID_SEARCH, Immich's CLIP ranking fused with the OCR ranking; without it,
  and for anything that is not a text query, forwarded to Immich unchanged.

Filters the OCR ranking does not apply are named in the `x-immich-aio-unapplied` header of an
`ocr:` answer; a mixed search with such filters is answered by Immich's CLIP ranking alone. A
mixed search whose CLIP half fails on Immich's side (5xx) is answered by the OCR ranking alone,
with `x-immich-aio-degraded: clip-unavailable`.

Immich's own `ocr` field (OCR_FIELD_SEARCH), flat or as 3.2's `filter.ocr`, matched by the word
index with Immich's semantics for each route, unless the request carries a filter the index does
not apply (then Immich answers it):

- POST /api/search/metadata (Immich's OCR search type): the matches in Immich's date order;
- POST /api/search/smart: Immich's CLIP ranking (by the words or an example asset) of the matches.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from aio_common.errors import ApiError, BadRequest, Unavailable
from aio_common.http import JsonResponse
from gateway import docs, metrics
from gateway.immich.api import Credentials, ImmichRefused
from gateway.immich.dto import (
    MAX_PAGE_SIZE,
    MetadataSearch,
    NotText,
    RankedSmartSearch,
    SmartSearch,
    search_response,
    take_ocr,
)
from gateway.search.clip_query import QueryVectors
from gateway.search.hybrid import Fusion
from gateway.search.service import SearchService

log = logging.getLogger(__name__)
router = APIRouter()

PREFIX = re.compile(r"^\s*(ocr|clip)\s*:", re.IGNORECASE)
UNAPPLIED_HEADER = "x-immich-aio-unapplied"
# On a mixed search answered by one ranking alone: which half was missing.
DEGRADED_HEADER = "x-immich-aio-degraded"


@router.post("/api/search/smart", **docs.SEARCH)  # type: ignore[arg-type]
async def smart_search(request: Request) -> Response:
    service: SearchService = request.app.state.search
    body = await request.body()
    data = _json_object(body)
    if data is not None and service.settings.ocr_field_search:
        try:
            taken = take_ocr(data)
        except NotText:
            return await _counted("forwarded", service.immich.forward(request, body))  # Immich names the fault
        if taken is not None:
            return await smart_ocr_search(request, service, body, *taken)
    query = data.get("query") if data else None
    if data is None or not isinstance(query, str):
        return await _counted("forwarded", service.immich.forward(request, body))
    mode, words = _prefixed(query)
    if mode == "clip":
        return await _counted("clip", service.immich.forward(request, orjson.dumps({**data, "query": words})))
    if mode == "ocr":
        return await _counted("ocr", ocr_search(request, service, data, words))
    if not service.settings.hybrid_search or not words:
        return await _counted("forwarded", service.immich.forward(request, body))
    return await _counted("mixed", hybrid_search(request, service, data, words))


def _prefixed(query: str) -> tuple[str | None, str]:
    """A query's `ocr:` or `clip:` prefix (lower case; None without one) and its words."""
    match = PREFIX.match(query)
    return (match.group(1).lower(), query[match.end() :].strip()) if match else (None, query.strip())


async def _counted(kind: str, answer: Awaitable[Response]) -> Response:
    started = time.perf_counter()
    status = "500"
    try:
        response = await answer
        status = str(response.status_code)
        return response
    except ApiError as exc:
        status = str(exc.status)
        raise
    finally:
        metrics.SEARCHES.labels(kind, status).inc()
        metrics.SEARCH_SECONDS.labels(kind).observe(time.perf_counter() - started)


def _dto(data: dict[str, Any], words: str) -> SmartSearch:
    try:
        return SmartSearch.model_validate({**data, "query": words})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadRequest(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


class ImmichAnswers(Exception):
    """Immich would not rank this search (smart search off, no vector to rank by): Immich's own
    answer says why."""


async def ocr_ranking(
    service: SearchService,
    who: Credentials,
    words: str,
    dto: SmartSearch,
    limit: int,
    offset: int,
    by_date: Literal["asc", "desc"] | None = None,
    by_vector: Callable[[asyncpg.Pool], Awaitable[str | None]] | None = None,
) -> list[str]:
    """Asset ids of the caller's OCR hits, best first, by date, or by CLIP distance to the vector
    `by_vector` computes (ImmichAnswers when it computes none). The caller is authenticated first
    (Immich's 401/403 raise ImmichRefused); only then is the index caught up and queried."""
    user = await service.immich.me(who)
    async with service.searchable() as (pool, facts):
        vector = await by_vector(pool) if by_vector is not None else None
        if by_vector is not None and vector is None:
            raise ImmichAnswers
        await service.index.catch_up(pool, facts, service.settings.search_catchup_limit)
        tsquery = await service.index.tsquery(pool, words)
        if not tsquery:
            return []
        return await service.index.search(
            pool, facts, tsquery, dto, str(user["id"]), limit, offset, by_date=by_date, by_vector=vector
        )


async def ocr_search(request: Request, service: SearchService, data: dict[str, Any], words: str) -> Response:
    if not words:
        raise BadRequest("ocr: needs words to search for, for example ocr:发票")
    dto = _dto(data, words)
    who = Credentials.of(request)
    try:
        ids = await ocr_ranking(service, who, words, dto, dto.size + 1, (dto.page - 1) * dto.size)
    except ImmichRefused as refused:
        return refused.response
    items = await service.immich.assets(ids[: dto.size], who)
    response = JsonResponse(search_response(items, dto.page + 1 if len(ids) > dto.size else None))
    if unapplied := dto.unapplied():
        response.headers[UNAPPLIED_HEADER] = ",".join(unapplied)
    return response


async def smart_ocr_search(
    request: Request, service: SearchService, body: bytes, words: str, data: dict[str, Any]
) -> Response:
    """Smart search with Immich's `ocr` condition: Immich's CLIP ranking, restricted to the word
    index's matches (Immich restricts it to its own OCR matches). A `clip:` or `ocr:` prefix of
    the query is dropped: the query is what CLIP ranks by."""
    query = data.get("query")
    if isinstance(query, str):
        data = {**data, "query": _prefixed(query)[1]}
    try:
        dto = RankedSmartSearch.model_validate({"query": "", **data})
    except ValidationError:
        dto = None  # Immich names the fault
    if dto is None or (not dto.query and dto.queryAssetId is None) or _unapplied("smart search with ocr", dto):
        return await _counted("forwarded", service.immich.forward(request, body))
    return await _counted("smart-ocr", _smart_ocr_answer(request, service, body, words, dto))


async def _smart_ocr_answer(
    request: Request, service: SearchService, body: bytes, words: str, dto: RankedSmartSearch
) -> Response:
    who = Credentials.of(request)
    vectors: QueryVectors = request.app.state.query_vectors
    offset = (dto.page - 1) * dto.size
    try:
        ids = await ocr_ranking(
            service, who, words, dto, dto.size + 1, offset, by_vector=lambda pool: vectors.of(pool, dto, who)
        )
    except ImmichRefused as refused:
        return refused.response
    except ImmichAnswers:
        return await service.immich.forward(request, body)
    except Unavailable as exc:
        return await _immichs_matching(request, service, body, exc)
    return await _answer(service, ids, dto.page, dto.size, dto.withExif, who)


async def _immichs_matching(request: Request, service: SearchService, body: bytes, exc: Unavailable) -> Response:
    """Without the word index (its database is down, or it is being prepared), Immich answers a
    search with its own `ocr` field itself, by its own matching, and the header says so."""
    log.warning("Immich's ocr field without the word index: Immich's own matching answers (%s)", exc.message)
    response = await service.immich.forward(request, body)
    response.headers[DEGRADED_HEADER] = "ocr-index-unavailable"
    return response


@router.post("/api/search/metadata", **docs.METADATA_SEARCH)  # type: ignore[arg-type]
async def metadata_search(request: Request) -> Response:
    """Immich's own OCR search type (a metadata search with `ocr`), answered from the word index
    with Immich's semantics: its filters, paging, answer and date order; only how text matches
    differs. A request with a filter the index does not apply goes to Immich unchanged."""
    service: SearchService = request.app.state.search
    body = await request.body()
    data = _json_object(body)
    try:
        taken = take_ocr(data) if data is not None and service.settings.ocr_field_search else None
    except NotText:
        taken = None  # Immich names the fault
    if taken is None:
        return await _counted("forwarded", service.immich.forward(request, body))
    words, rest = taken
    try:
        dto = MetadataSearch.model_validate({**rest, "ocr": words})
        filters = dto.filters()
    except ValidationError:
        return await _counted("forwarded", service.immich.forward(request, body))  # Immich names the fault
    if _unapplied("OCR metadata search", filters, dto.unapplied()):
        return await _counted("forwarded", service.immich.forward(request, body))
    return await _counted("metadata-ocr", _metadata_answer(request, service, body, dto, filters))


def _unapplied(search: str, filters: SmartSearch, unapplied: list[str] | None = None) -> bool:
    """Whether Immich must answer: filters the index does not apply (`unapplied`, by default the
    smart-search fields it does not apply), or locked photos, which need Immich's elevated
    session (only Immich can check it)."""
    unapplied = filters.unapplied() if unapplied is None else unapplied
    unapplied = unapplied or (["visibility=locked"] if filters.visibility == "locked" else [])
    if unapplied:
        log.info("%s with filters the index does not apply: Immich answers", search, extra={"filters": unapplied})
    return bool(unapplied)


async def _metadata_answer(
    request: Request, service: SearchService, body: bytes, dto: MetadataSearch, filters: SmartSearch
) -> Response:
    who = Credentials.of(request)
    offset = (dto.page - 1) * dto.size
    try:
        ids = await ocr_ranking(service, who, dto.ocr, filters, dto.size + 1, offset, by_date=dto.order)
    except ImmichRefused as refused:
        return refused.response
    except Unavailable as exc:
        return await _immichs_matching(request, service, body, exc)
    return await _answer(service, ids, dto.page, dto.size, dto.withExif, who)


async def _answer(
    service: SearchService, ids: list[str], page: int, size: int, with_exif: bool, who: Credentials
) -> Response:
    """Immich's answer for one page of `ids` (one more than the page: is there a next page)."""
    items = await service.immich.assets(ids[:size], who)
    if not with_exif:  # as Immich's answer: exifInfo only when asked for
        for item in items:
            item.pop("exifInfo", None)
    return JsonResponse(search_response(items, page + 1 if len(ids) > size else None))


async def hybrid_search(request: Request, service: SearchService, data: dict[str, Any], words: str) -> Response:
    settings = service.settings
    try:
        dto = SmartSearch.model_validate({**data, "query": words})
    except ValidationError:
        return await service.immich.forward(request, orjson.dumps(data))  # Immich names the fault
    if unapplied := dto.unapplied():
        log.info("mixed search with filters the OCR ranking cannot apply: CLIP only", extra={"filters": unapplied})
        return await service.immich.forward(request, orjson.dumps(data))
    depth = dto.page * dto.size
    if depth > settings.hybrid_max_depth and (dto.page - 1) * dto.size >= settings.hybrid_max_depth:
        raise BadRequest(
            f"Mixed search ranks the first {settings.hybrid_max_depth} results (HYBRID_MAX_DEPTH); page "
            f"{dto.page} of size {dto.size} lies beyond. Use clip: or ocr: to page one ranking further.",
        )
    depth = min(depth, settings.hybrid_max_depth)
    who = Credentials.of(request)
    clip_task = asyncio.ensure_future(_clip_ranking(service, request, data, words, depth))
    ocr_ids: list[str] | None
    try:
        ocr_ids = await ocr_ranking(service, who, words, dto, depth + 1, 0)
    except (ApiError, ImmichRefused) as exc:
        # Without the index (or with refused credentials, which Immich's own answer will
        # show), the CLIP ranking alone answers.
        log.info("mixed search without the OCR ranking", extra={"error": str(exc)})
        ocr_ids = None
    try:
        clip = await clip_task
    except ApiError as exc:
        if ocr_ids is None:
            raise
        clip = JsonResponse({"message": exc.message}, status_code=exc.status)
    degraded = False
    if isinstance(clip, Response):
        # Immich's CLIP half failed on its side (its ML server, our AI service, is down): the OCR
        # half answers alone rather than the whole search failing, and the header says so.
        if clip.status_code < 500 or ocr_ids is None:
            return clip
        log.warning("mixed search: Immich's CLIP half failed (%s), the OCR ranking answers alone", clip.status_code)
        clip, degraded = ({}, False), True
    ocr_ids = ocr_ids or []
    clip_items, clip_more = clip
    clip_ids = list(clip_items)
    fusion = Fusion(settings.hybrid_rrf_k, settings.hybrid_clip_weight, settings.hybrid_ocr_weight)
    # Fusion replays earlier pages; bounded by HYBRID_MAX_DEPTH, and off the event loop.
    page = await asyncio.to_thread(fusion.page, clip_ids, ocr_ids[:depth], dto.page, dto.size)
    missing = [asset_id for asset_id in page if asset_id not in clip_items]
    fetched = {item["id"]: item for item in await service.immich.assets(missing, who)}
    items = [clip_items.get(asset_id) or fetched.get(asset_id) for asset_id in page]
    more = clip_more or len(ocr_ids) > depth or len(set(clip_ids) | set(ocr_ids[:depth])) > depth
    within = dto.page * dto.size < settings.hybrid_max_depth
    response = JsonResponse(search_response([i for i in items if i], dto.page + 1 if more and within else None))
    if degraded:
        response.headers[DEGRADED_HEADER] = "clip-unavailable"
    return response


async def _clip_ranking(
    service: SearchService, request: Request, data: dict[str, Any], words: str, depth: int
) -> tuple[dict[str, dict[str, Any]], bool] | Response:
    """Immich's CLIP ranking `depth` deep (AssetResponseDto by id, in rank order) and whether it
    goes deeper; or Immich's own answer when it refused."""
    items: dict[str, dict[str, Any]] = {}
    size = min(depth, MAX_PAGE_SIZE)
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
