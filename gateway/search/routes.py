"""POST /api/search/smart and POST /api/search/metadata, in front of Immich's own: each request is
parsed here, answered by the search core (core.py) or forwarded to Immich unchanged, and the
core's page formatted as Immich's answer.

POST /api/search/smart:

- `ocr:words`: the word index's ranking; filters it does not apply are named in the
  `x-immich-aio-unapplied` header;
- `clip:words`: Immich's CLIP ranking alone (the prefix stripped, then forwarded);
- plain text: with MIXED_SEARCH, mixed search (Immich's CLIP ranking fused with the word
  index's); without it, and for anything that is not a text query, forwarded unchanged.
- with Immich's own `ocr` field (OCR_FIELD_SEARCH), flat or as 3.2's `filter.ocr`: Immich's
  CLIP ranking of the word index's matches.

POST /api/search/metadata with `ocr` (Immich's OCR search type): the word index's matches in
Immich's date order.

`_answer` is the one place that decides what a failure becomes: Immich's own answer (the search
is one the index does not answer as Immich would), a degraded answer (Immich's own matching,
for its `ocr` field while the index is unavailable), or an error of the one family.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from aio_common.errors import ApiError, BadRequest, Unavailable
from aio_common.http import JsonResponse
from gateway import docs, metrics
from gateway.immich.api import Caller
from gateway.immich.dto import MetadataSearch, NotText, RankedSmartSearch, SmartSearch, take_ocr
from gateway.parts import parts_of
from gateway.search.core import Found, ImmichDecides

log = logging.getLogger(__name__)
router = APIRouter()

PREFIX = re.compile(r"^\s*(ocr|clip)\s*:", re.IGNORECASE)
UNAPPLIED_HEADER = "x-immich-aio-unapplied"
# On a search answered without one of its parts: which part was missing.
DEGRADED_HEADER = "x-immich-aio-degraded"


@router.post("/api/search/smart", **docs.SEARCH)  # type: ignore[arg-type]
async def smart_search(request: Request) -> Response:
    parts = parts_of(request)
    core, settings = parts.search, parts.settings
    body = await request.body()
    data = _json_object(body)
    if data is None:
        return await _forwarded(request, body)
    try:
        ocr_field = take_ocr(data) if settings.ocr_field_search else None
    except NotText:
        return await _forwarded(request, body)  # Immich names the fault
    if ocr_field is not None:
        words, rest = ocr_field
        query = rest.get("query")
        try:  # a `clip:` or `ocr:` prefix is dropped: the query is what CLIP ranks by
            ranked = RankedSmartSearch.model_validate(
                {"query": "", **rest, **({"query": _prefixed(query)[1]} if isinstance(query, str) else {})}
            )
        except ValidationError:
            return await _forwarded(request, body)  # Immich names the fault
        caller = Caller.of(request)
        return await _answer("smart-ocr", request, body, core.ocr_field_by_clip(caller, words, ranked), ocr_field=True)
    query = data.get("query")
    if not isinstance(query, str):
        return await _forwarded(request, body)
    mode, words = _prefixed(query)
    if mode == "clip":
        return await _counted("clip", parts.immich_server.forward(request, orjson.dumps({**data, "query": words})))
    if mode == "ocr":

        async def ocr_words() -> Found:
            if not words:
                raise BadRequest("ocr: needs words to search for, for example ocr:发票")
            return await core.ocr_words(Caller.of(request), _smart_search(data, words))

        return await _answer("ocr", request, body, ocr_words())
    if not settings.mixed_search or not words:
        return await _forwarded(request, body)
    try:
        search = SmartSearch.model_validate({**data, "query": words})
    except ValidationError:
        return await _forwarded(request, body)  # Immich names the fault
    return await _answer("mixed", request, body, core.mixed(Caller.of(request), search, data))


@router.post("/api/search/metadata", **docs.METADATA_SEARCH)  # type: ignore[arg-type]
async def metadata_search(request: Request) -> Response:
    """Immich's OCR search type; a metadata search without `ocr` goes to Immich unchanged."""
    parts = parts_of(request)
    body = await request.body()
    data = _json_object(body)
    try:
        ocr_field = take_ocr(data) if data is not None and parts.settings.ocr_field_search else None
    except NotText:
        ocr_field = None  # Immich names the fault
    if ocr_field is None:
        return await _forwarded(request, body)
    words, rest = ocr_field
    try:
        search = MetadataSearch.model_validate({**rest, "ocr": words})
        filters = search.filters()
    except ValidationError:
        return await _forwarded(request, body)  # Immich names the fault
    found = parts.search.ocr_field_by_date(Caller.of(request), search, filters)
    return await _answer("metadata-ocr", request, body, found, ocr_field=True)


async def _answer(
    kind: str, request: Request, body: bytes, search: Awaitable[Found], *, ocr_field: bool = False
) -> Response:
    """The core's page as Immich's answer, or what a failure becomes: Immich answers a search
    the index does not answer as Immich would; without the index, Immich answers its own `ocr`
    field by its own matching (and the header says so); any other failure is an ApiError."""
    started = time.perf_counter()
    try:
        found = await search
    except ImmichDecides:
        return await _forwarded(request, body)
    except Unavailable as exc:
        if not ocr_field:
            _count(kind, exc.status, started)
            raise
        log.warning("Immich's ocr field without the word index: Immich's own matching answers (%s)", exc.message)
        response = await _forwarded(request, body)
        response.headers[DEGRADED_HEADER] = "ocr-index-unavailable"
        return response
    except ApiError as exc:
        _count(kind, exc.status, started)
        raise
    response = JsonResponse(found.answer())
    if found.not_applied:
        response.headers[UNAPPLIED_HEADER] = ",".join(found.not_applied)
    if found.degraded:
        response.headers[DEGRADED_HEADER] = found.degraded
    _count(kind, 200, started)
    return response


async def _forwarded(request: Request, body: bytes) -> Response:
    return await _counted("forwarded", parts_of(request).immich_server.forward(request, body))


async def _counted(kind: str, answer: Awaitable[Response]) -> Response:
    started = time.perf_counter()
    status = 500
    try:
        response = await answer
        status = response.status_code
        return response
    except ApiError as exc:
        status = exc.status
        raise
    finally:
        _count(kind, status, started)


def _count(kind: str, status: int, started: float) -> None:
    metrics.SEARCHES.labels(kind, str(status)).inc()
    metrics.SEARCH_SECONDS.labels(kind).observe(time.perf_counter() - started)


def _prefixed(query: str) -> tuple[str | None, str]:
    """A query's `ocr:` or `clip:` prefix (lower case; None without one) and its words."""
    match = PREFIX.match(query)
    return (match.group(1).lower(), query[match.end() :].strip()) if match else (None, query.strip())


def _smart_search(data: dict[str, Any], words: str) -> SmartSearch:
    try:
        return SmartSearch.model_validate({**data, "query": words})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadRequest(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
