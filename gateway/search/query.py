"""The word index's read side: a query's words and fragments, and the asset ids that match them
for one caller under Immich's filters, in one of the three orders Immich answers in.

The index's own order (`ocr:`, and the ranking a mixed search fuses) puts photos that match as
words first, more mentions first, then the photos that match only literally, newest first. The
literal matches are ordered by the taken time each row keeps, so that a fragment most photos hold
(的, te) is answered from each owner's newest rows, without reading every match.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg

from gateway.immich import sql as immich_sql
from gateway.immich.dto import SmartSearch
from gateway.immich.facts import ImmichFacts
from gateway.immich.filters import Params, search_conditions
from gateway.search import sql
from gateway.search.tokenize import TextQuery, pairs
from gateway.search.words import Words

# Each owner's newest index rows a literal match is looked for in first. A page of 100 fills from
# there when about 1 photo in 30 holds the fragment; rarer fragments are found through the grams'
# index, and their matches are then few enough to sort.
RECENT_WINDOW = 3000

# A row's place in the literal order: its taken time and asset id.
Key = tuple[datetime, uuid.UUID]


class IndexQuery:
    def __init__(self, words: Words) -> None:
        self.words = words

    async def parse(self, pool: asyncpg.Pool, text: str) -> TextQuery:
        return await self.words.query(pool, text)

    async def search(
        self,
        pool: asyncpg.Pool,
        facts: ImmichFacts,
        query: TextQuery,
        dto: SmartSearch,
        user_id: str,
        limit: int,
        offset: int,
        by_date: Literal["asc", "desc"] | None = None,
        by_vector: str | None = None,
    ) -> list[str]:
        """Asset ids matching `query` that `user_id` may see and `dto`'s filters keep: best
        first, or by taken time (`by_date`) as Immich's metadata search orders them, or by CLIP
        distance to `by_vector` as Immich's smart search orders them."""
        search = _Search(pool, query, dto, facts, user_id)
        if by_date is None and by_vector is None:
            return (await search.ranked(offset + limit))[offset:]
        p, conditions, owners, match = search.bind()
        # bigint: a page far out (up to Immich's largest) is an empty answer, as Immich gives.
        paging = p.add(limit, "bigint"), p.add(offset, "bigint")
        if by_vector is not None:
            vector = p.add(by_vector, "vector")
            return await search.ids(sql.clip_ranked_ocr_search(conditions, match, owners, vector, *paging), p)
        assert by_date is not None
        return await search.ids(sql.dated_ocr_search(conditions, match, owners, by_date.upper(), *paging), p)


class _Search:
    """One search's statements, each on parameters of its own (`bind`)."""

    def __init__(self, pool: asyncpg.Pool, query: TextQuery, dto: SmartSearch, facts: ImmichFacts, user: str) -> None:
        self.pool, self.query, self.dto, self.facts, self.user = pool, query, dto, facts, user

    def bind(self, *, literal_only: bool = False) -> tuple[Params, str, str, str]:
        """New parameters, with the SQL that uses them: the WHERE conditions of Immich's
        filters, the caller's searchable owners and the text match (`sql.text_match`)."""
        params = Params()
        me = params.add(self.user, "uuid")
        conditions = search_conditions(self.dto, self.facts, me, params)
        match = sql.text_match(self.query, params, literal_only=literal_only)
        return params, conditions, immich_sql.searchable_owners(me), match

    async def ids(self, statement: str, params: Params) -> list[str]:
        return [str(row["asset_id"]) for row in await self.pool.fetch(statement, *params.values)]

    async def ranked(self, count: int) -> list[str]:
        """The first `count` matches in the index's own order: word matches, then literal ones."""
        found: list[str] = []
        if self.query.words is not None:
            p, conditions, owners, match = self.bind()
            words, limit = p.add(self.query.words, "tsquery"), p.add(count, "bigint")
            found = await self.ids(sql.word_matches(conditions, match, words, owners, limit), p)
            if len(found) == count or not self.query.fragments:
                return found
        return found + await self._literal(count - len(found))

    async def _literal(self, count: int) -> list[str]:
        """The first `count` matches that hold none of the query's words, newest first: from
        each owner's newest rows when those may hold enough, else through the grams' index."""
        if not await self._rare(count):
            found = await self._recent_literal(count)
            if found is not None:
                return found
        p, conditions, owners, match = self.bind(literal_only=True)
        return await self.ids(sql.literal_matches(conditions, match, owners, p.add(count, "bigint")), p)

    async def _rare(self, count: int) -> bool:
        """Whether the column statistics say the newest rows cannot hold `count` literal
        matches (a name: the share of its rarest pair is too small), so that walking them is
        no use."""
        grams = [pair for fragment in self.query.fragments for pair in pairs(fragment)]
        share = await self.pool.fetchval(sql.RAREST_GRAM_SHARE, grams) if grams else None
        return share is not None and share * RECENT_WINDOW < count

    async def _recent_literal(self, count: int) -> list[str] | None:
        """The first `count` literal matches from each owner's RECENT_WINDOW newest rows; None
        when those do not hold them all."""
        p, conditions, owners, match = self.bind(literal_only=True)
        limit = p.add(count, "bigint")
        statement = sql.recent_literal_matches(conditions, match, owners, RECENT_WINDOW, limit)
        hits: dict[uuid.UUID, list[Key]] = {}
        ends: list[Key] = []
        for row in await self.pool.fetch(statement, *p.values):
            key = (row["taken"], row["asset_id"])
            if row["bound"]:
                ends.append(key)
            else:
                hits.setdefault(row["owner_id"], []).append(key)
        # Where each owner's walk stopped: at its last hit when it found `count`, else at the end
        # of its window (if it has that many rows). Past the newest such place, an owner's older
        # match may be missing.
        ends = _newest_first(ends + [found[-1] for found in hits.values() if len(found) == count])
        merged = _newest_first([hit for found in hits.values() for hit in found])
        if ends:
            merged = [hit for hit in merged if not _before(ends[0], hit)]
        if len(merged) >= count or not ends:
            return [str(asset_id) for _, asset_id in merged[:count]]
        return None


def _newest_first(rows: list[Key]) -> list[Key]:
    """(taken, asset id) pairs in the index's literal order: newest taken first, then by id."""
    return sorted(sorted(rows, key=lambda row: row[1]), key=lambda row: row[0], reverse=True)


def _before(bound: Key, row: Key) -> bool:
    """Whether `bound` comes before `row` in that order."""
    return bound[0] > row[0] or (bound[0] == row[0] and bound[1] < row[1])
