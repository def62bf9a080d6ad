"""Our own SQL over the word index `aio.ocr_index`: writing its rows, and the three searches over
it, one per order Immich answers in. Immich's tables are named by gateway.immich.sql; our
schema's creation and migrations are in gateway.aio_schema."""

from __future__ import annotations

from gateway.search.tokenize import JIEBA, ZHPARSER

# `words` from each row's document (jieba's words parsed by `simple`, or zhparser's tsvector
# text) with weight A, and its grams (tokenize.grams) with weight D.
UPSERT = """
INSERT INTO aio.ocr_index (asset_id, owner_id, taken, text, words)
SELECT u.asset_id, u.owner_id, u.taken, u.text, setweight({words}, 'A') || u.grams::tsvector
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
  AS u(asset_id, owner_id, taken, text, document, grams)
ON CONFLICT (asset_id) DO UPDATE
SET owner_id = excluded.owner_id, taken = excluded.taken, text = excluded.text, words = excluded.words
"""
UPSERT_WORDS = {
    JIEBA: UPSERT.format(words="to_tsvector('simple', u.document)"),
    ZHPARSER: UPSERT.format(words="u.document::tsvector"),
}
INDEXED = "SELECT asset_id, taken, text FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
DELETE_ROWS = "DELETE FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
ROW_ESTIMATE = "SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'aio' AND relname = 'ocr_index'"
# Empties the index and forgets every feed's watermark: the next pass reads everything again.
REBUILD = "TRUNCATE aio.ocr_index; DELETE FROM aio.meta WHERE key LIKE 'feed:%'"


# ts_rank's weights for D, C, B, A: only word lexemes (A) count, grams (D) do not.
WORDS_ONLY = "'{0, 0, 0, 1}'::float4[]"


def ranked_ocr_search(conditions: str, query: str, owners: str, limit: str, offset: str) -> str:
    """Index rows matching the tsquery `query` whose asset meets `conditions`, best first: those
    that match as words before those that match only literally, then more mentions (ts_rank),
    then newest taken. Arguments are placeholders or SQL.

    The hits are found (by the index of owner and words) and put in order in the index alone;
    then each is looked up in `asset` by its key, in that order, until the page is full: the
    nested loop keeps the order, so nothing is sorted again and the lookups stop at the page.
    (`OFFSET 0` keeps the lookup per hit: left to itself, the planner misjudges Immich's
    visibility filters and scans every asset, seconds at a million photos.)"""
    return f"""
SELECT h.asset_id
FROM (
  SELECT i.asset_id, i.taken, ts_rank({WORDS_ONLY}, i.words, {query}) > 0 AS as_words, ts_rank(i.words, {query}) AS rank
  FROM aio.ocr_index i
  WHERE i.words @@ {query} AND i.owner_id IN ({owners})
  ORDER BY as_words DESC, rank DESC, i.taken DESC, i.asset_id
) h
CROSS JOIN LATERAL (SELECT FROM asset a WHERE a.id = h.asset_id AND {conditions} OFFSET 0) a
ORDER BY h.as_words DESC, h.rank DESC, h.taken DESC, h.asset_id
LIMIT {limit} OFFSET {offset}
"""


def dated_ocr_search(conditions: str, query: str, owners: str, direction: str, limit: str, offset: str) -> str:
    """Index rows matching `query` whose asset meets `conditions`, in the order of Immich's
    metadata search (taken time, then id, both `direction`: ASC or DESC)."""
    return f"""
SELECT i.asset_id
FROM aio.ocr_index i JOIN asset a ON a.id = i.asset_id
WHERE i.words @@ {query} AND i.owner_id IN ({owners}) AND {conditions}
ORDER BY a."fileCreatedAt" {direction}, a.id {direction}
LIMIT {limit} OFFSET {offset}
"""


def clip_ranked_ocr_search(conditions: str, query: str, owners: str, embedding: str, limit: str, offset: str) -> str:
    """Index rows matching `query` whose asset meets `conditions`, in the order of Immich's smart
    search: CLIP distance to `embedding` (a vector), then id; assets without a vector are left
    out, as Immich's inner join leaves them out."""
    return f"""
SELECT i.asset_id
FROM aio.ocr_index i
JOIN asset a ON a.id = i.asset_id
JOIN smart_search s ON s."assetId" = i.asset_id
WHERE i.words @@ {query} AND i.owner_id IN ({owners}) AND {conditions}
ORDER BY s.embedding <=> {embedding}, a.id
LIMIT {limit} OFFSET {offset}
"""
