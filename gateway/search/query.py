"""The word index's read side: a query's words as a tsquery, and the asset ids that match it
for one caller under Immich's filters, in one of the three orders Immich answers in."""

from __future__ import annotations

from typing import Literal

import asyncpg

from gateway.immich import sql as immich_sql
from gateway.immich.dto import SmartSearch
from gateway.immich.facts import ImmichFacts
from gateway.immich.filters import Params, search_conditions
from gateway.search import sql
from gateway.search.words import Words


class IndexQuery:
    def __init__(self, words: Words) -> None:
        self.words = words

    async def tsquery(self, pool: asyncpg.Pool, text: str) -> str:
        return await self.words.tsquery(pool, text)

    async def search(
        self,
        pool: asyncpg.Pool,
        facts: ImmichFacts,
        tsquery: str,
        dto: SmartSearch,
        user_id: str,
        limit: int,
        offset: int,
        by_date: Literal["asc", "desc"] | None = None,
        by_vector: str | None = None,
    ) -> list[str]:
        """Asset ids matching `tsquery` that `user_id` may see and `dto`'s filters keep: best
        first, or by taken time (`by_date`) as Immich's metadata search orders them, or by CLIP
        distance to `by_vector` as Immich's smart search orders them."""
        params = Params()
        query = params.add(tsquery, "tsquery")
        me = params.add(user_id, "uuid")
        conditions = search_conditions(dto, facts, me, params)
        owners = immich_sql.searchable_owners(me)
        vector = params.add(by_vector, "vector") if by_vector is not None else None
        # bigint: a page far out (up to Immich's largest) is an empty answer, as Immich gives.
        paging = params.add(limit, "bigint"), params.add(offset, "bigint")
        if vector is not None:
            statement = sql.clip_ranked_ocr_search(conditions, query, owners, vector, *paging)
        elif by_date is None:
            statement = sql.ranked_ocr_search(conditions, query, owners, *paging)
        else:
            statement = sql.dated_ocr_search(conditions, query, owners, by_date.upper(), *paging)
        return [str(row["asset_id"]) for row in await pool.fetch(statement, *params.values)]
