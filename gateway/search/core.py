"""The searches the gateway answers itself, usable without HTTP: each takes a parsed search (the
words, Immich's filters, paging and order, and the caller) and returns one page of Immich's
answer. The caller is authenticated by Immich first; only then is the index caught up and asked.

- `ocr_words`: an `ocr:` search, the word index's own ranking (more mentions first, then newest);
- `ocr_field_by_date`: Immich's OCR search type (a metadata search with `ocr`), the matches in
  Immich's date order;
- `ocr_field_by_clip`: a smart search with Immich's `ocr` field, Immich's CLIP ranking (by the
  words or an example asset) of the matches;
- `mixed`: a plain smart search, Immich's CLIP ranking fused with the word index's (mixed.py).

Where the index does not answer a search as Immich would (a filter it does not apply, locked
photos, nothing to rank by), `ImmichDecides` says so and Immich answers the request itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from aio_common.errors import Answered, ApiError, BadRequest, Unavailable
from gateway.immich.api import Caller, ImmichClient
from gateway.immich.dto import MAX_PAGE_SIZE, MetadataSearch, RankedSmartSearch, SmartSearch, search_response
from gateway.search.keeper import IndexKeeper
from gateway.search.mixed import Fusion
from gateway.search.query_vectors import QueryVectors
from gateway.settings import Settings

log = logging.getLogger(__name__)


class ImmichDecides(Unavailable):
    """The word index does not answer this search as Immich would: Immich answers the request
    itself, and its own answer names any fault."""


@dataclass(frozen=True)
class Found:
    """One page of a search: Immich's asset items, and the next page's number, if any."""

    items: list[dict[str, Any]]
    next_page: int | None
    # Filters of an `ocr:` search the word index did not apply (Immich's CLIP ranking does).
    not_applied: list[str] = field(default_factory=list)
    # A mixed search answered by one ranking alone: which half was missing.
    degraded: str | None = None

    def answer(self) -> dict[str, Any]:
        """Immich's SearchResponseDto."""
        return search_response(self.items, self.next_page)


class SearchCore:
    def __init__(
        self, settings: Settings, keeper: IndexKeeper, immich_server: ImmichClient, vectors: QueryVectors
    ) -> None:
        self.settings = settings
        self.keeper = keeper
        self.immich_server = immich_server
        self.vectors = vectors

    async def ocr_words(self, caller: Caller, search: SmartSearch) -> Found:
        """`ocr:` with the words `search.query`."""
        ids = await self._matches(caller, search.query, search, search.size + 1, _offset(search))
        return await self._page(caller, ids, search.page, search.size, with_exif=True, not_applied=search.not_applied())

    async def ocr_field_by_date(self, caller: Caller, search: MetadataSearch, filters: SmartSearch) -> Found:
        """Immich's OCR search type: Immich's filters, paging, answer and date order; only how
        text matches differs."""
        _answerable("OCR metadata search", filters, search.not_applied())
        ids = await self._matches(caller, search.ocr, filters, search.size + 1, _offset(search), by_date=search.order)
        return await self._page(caller, ids, search.page, search.size, with_exif=search.withExif)

    async def ocr_field_by_clip(self, caller: Caller, words: str, search: RankedSmartSearch) -> Found:
        """Smart search with Immich's `ocr` condition `words`: Immich's CLIP ranking of the
        word index's matches (Immich ranks its own OCR matches)."""
        if not search.query and search.queryAssetId is None:
            raise ImmichDecides("smart search with ocr and nothing to rank by")
        _answerable("smart search with ocr", search, search.not_applied())
        ids = await self._matches(caller, words, search, search.size + 1, _offset(search), by_vector=search)
        return await self._page(caller, ids, search.page, search.size, with_exif=search.withExif)

    async def mixed(self, caller: Caller, search: SmartSearch, data: dict[str, Any]) -> Found:
        """A plain smart search (`data`, its query `search.query`): Immich's CLIP ranking fused
        with the word index's, both taken as deep as the page reaches. Without the index (or
        with credentials Immich refuses, which its CLIP answer shows) CLIP's ranking answers
        alone; when Immich's CLIP half fails on its side (5xx), the word index's does."""
        settings = self.settings
        if skipped := search.not_applied():
            log.info("mixed search with filters the OCR ranking cannot apply: CLIP only", extra={"filters": skipped})
            raise ImmichDecides("mixed search with filters the OCR ranking cannot apply")
        max_depth = settings.mixed_max_depth
        if (search.page - 1) * search.size >= max_depth:
            raise BadRequest(
                f"Mixed search ranks the first {max_depth} results (MIXED_MAX_DEPTH); page {search.page} of size "
                f"{search.size} lies beyond. Use clip: or ocr: to page one ranking further.",
            )
        depth = min(search.page * search.size, max_depth)
        clip_half = asyncio.ensure_future(self._clip_ranking(caller, data, search.query, depth))
        ocr_ids: list[str] | None
        try:
            ocr_ids = await self._matches(caller, search.query, search, depth + 1, 0)
        except ApiError as exc:
            log.info("mixed search without the OCR ranking", extra={"error": str(exc)})
            ocr_ids = None
        degraded = None
        try:
            clip_items, clip_more = await clip_half
        except ApiError as exc:
            if ocr_ids is None or exc.status < 500:
                raise
            log.warning("mixed search: Immich's CLIP half failed (%s), the OCR ranking answers alone", exc.status)
            clip_items, clip_more, degraded = {}, False, "clip-unavailable"
        ocr_ids = ocr_ids or []
        clip_ids = list(clip_items)
        fusion = Fusion(settings.mixed_rrf_k, settings.mixed_clip_weight, settings.mixed_ocr_weight)
        # Fusion replays earlier pages; bounded by MIXED_MAX_DEPTH, and off the event loop.
        page = await asyncio.to_thread(fusion.page, clip_ids, ocr_ids[:depth], search.page, search.size)
        missing = [asset_id for asset_id in page if asset_id not in clip_items]
        fetched = {item["id"]: item for item in await self.immich_server.assets(missing, caller.credentials)}
        items = [clip_items.get(asset_id) or fetched.get(asset_id) for asset_id in page]
        more = clip_more or len(ocr_ids) > depth or len(set(clip_ids) | set(ocr_ids[:depth])) > depth
        within = search.page * search.size < max_depth
        return Found([i for i in items if i], search.page + 1 if more and within else None, degraded=degraded)

    async def _matches(
        self,
        caller: Caller,
        words: str,
        filters: SmartSearch,
        limit: int,
        offset: int,
        by_date: Literal["asc", "desc"] | None = None,
        by_vector: RankedSmartSearch | None = None,
    ) -> list[str]:
        """Asset ids of the caller's matches, best first, by date, or by CLIP distance to what
        `by_vector` ranks by."""
        user = await self.immich_server.me(caller.credentials)
        async with self.keeper.searchable() as (pool, facts):
            vector = None
            if by_vector is not None:
                vector = await self.vectors.of(pool, by_vector, caller.credentials)
                if vector is None:
                    raise ImmichDecides("Immich would not rank this smart search")
            index = self.keeper.index
            await index.passes.catch_up(pool, facts, self.settings.search_catchup_limit)
            query = await index.query.parse(pool, words)
            if not query.runs:
                return []
            return await index.query.search(
                pool, facts, query, filters, str(user["id"]), limit, offset, by_date=by_date, by_vector=vector
            )

    async def _page(
        self,
        caller: Caller,
        ids: list[str],
        page: int,
        size: int,
        *,
        with_exif: bool,
        not_applied: list[str] | None = None,
    ) -> Found:
        """One page of `ids` (one more than the page: is there a next page)."""
        items = await self.immich_server.assets(ids[:size], caller.credentials)
        if not with_exif:  # as Immich's answer: exifInfo only when asked for
            for item in items:
                item.pop("exifInfo", None)
        return Found(items, page + 1 if len(ids) > size else None, not_applied=not_applied or [])

    async def _clip_ranking(
        self, caller: Caller, data: dict[str, Any], words: str, depth: int
    ) -> tuple[dict[str, dict[str, Any]], bool]:
        """Immich's CLIP ranking `depth` deep (AssetResponseDto by id, in rank order) and whether
        it goes deeper; Immich's own answer (Answered) when it refuses."""
        items: dict[str, dict[str, Any]] = {}
        size = min(depth, MAX_PAGE_SIZE)
        page = 1
        while True:
            body = orjson.dumps({**data, "query": words, "page": page, "size": size})
            status, answer = await self.immich_server.search(caller, body)
            if status != 200:
                raise Answered(status, answer, "application/json")
            assets = orjson.loads(answer)["assets"]
            for item in assets["items"]:
                items.setdefault(item["id"], item)
            if not assets.get("nextPage") or len(items) >= depth:
                return items, bool(assets.get("nextPage"))
            page += 1


def _offset(search: SmartSearch | MetadataSearch) -> int:
    return (search.page - 1) * search.size


def _answerable(search: str, filters: SmartSearch, not_applied: list[str]) -> None:
    """ImmichDecides when the index cannot answer: filters it does not apply (`not_applied`), or
    locked photos, which need Immich's elevated session (only Immich can check it)."""
    not_applied = not_applied or (["visibility=locked"] if filters.visibility == "locked" else [])
    if not_applied:
        log.info("%s with filters the index does not apply: Immich answers", search, extra={"filters": not_applied})
        raise ImmichDecides(f"{search} with filters the index does not apply")
