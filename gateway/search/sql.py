"""Our own SQL over the word index `aio.ocr_index`: writing its rows, and the searches over it in
each order Immich answers in. Immich's tables are named by gateway.immich.sql; our
schema's creation and migrations are in gateway.aio_schema."""

from __future__ import annotations

from gateway.immich.filters import Params
from gateway.search.tokenize import JIEBA, ZHPARSER, TextQuery, literal

# `words` from each row's document (jieba's words parsed by `simple`, or zhparser's tsvector
# text), and `grams` from its grams (tokenize.grams).
UPSERT = """
INSERT INTO aio.ocr_index (asset_id, owner_id, taken, text, words, grams)
SELECT u.asset_id, u.owner_id, u.taken, u.text, {words}, u.grams::tsvector
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
  AS u(asset_id, owner_id, taken, text, document, grams)
ON CONFLICT (asset_id) DO UPDATE
SET owner_id = excluded.owner_id, taken = excluded.taken, text = excluded.text, words = excluded.words,
  grams = excluded.grams
"""
UPSERT_WORDS = {
    JIEBA: UPSERT.format(words="to_tsvector('simple', u.document)"),
    ZHPARSER: UPSERT.format(words="u.document::tsvector"),
}
INDEXED = "SELECT asset_id, taken, text FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
DELETE_ROWS = "DELETE FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
ROW_ESTIMATE = "SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'aio' AND relname = 'ocr_index'"
# Moves the rows a pass wrote from each GIN index's pending list (where inserts go first) into
# the index itself, so that searches after a busy OCR job do not scan that list each time.
CLEAN_PENDING = """
SELECT gin_clean_pending_list('aio.ocr_index_owner_words'::regclass),
  gin_clean_pending_list('aio.ocr_index_owner_grams'::regclass)
"""
# Empties the index and forgets every feed's watermark: the next pass reads everything again.
REBUILD = "TRUNCATE aio.ocr_index; DELETE FROM aio.meta WHERE key LIKE 'feed:%'"


# The share of index rows that hold the rarest of the grams `$1` (a text[]), by the statistics
# of `grams`: a gram they do not list is rarer than their rarest (tsvector statistics end with
# the least and greatest share). NULL before the first ANALYZE.
RAREST_GRAM_SHARE = """
SELECT min(coalesce(s.f[array_position(s.e, g)], s.f[array_length(s.e, 1) + 1]))
FROM (
  SELECT most_common_elems::text::text[] AS e, most_common_elem_freqs AS f FROM pg_stats
  WHERE schemaname = 'aio' AND tablename = 'ocr_index' AND attname = 'grams'
) s, unnest($1::text[]) g
"""


def text_match(query: TextQuery, params: Params, *, literal_only: bool = False) -> str:
    """The condition that an index row `i` matches `query`: every run, as its words or literally;
    `literal_only`: and holds none of the query's words (those came first)."""
    runs = []
    for words, fragment in query.runs:
        forms = [f"i.words @@ {params.add(words, 'tsquery')}"] if words is not None else []
        forms += [f"i.grams @@ {params.add(literal(fragment), 'tsquery')}"] if fragment is not None else []
        runs.append(f"({' OR '.join(forms)})" if forms else "false")
    if literal_only and query.words is not None:
        runs.append(f"NOT (i.words @@ {params.add(query.words, 'tsquery')})")
    return " AND ".join(runs)


def word_matches(conditions: str, match: str, words: str, owners: str, limit: str) -> str:
    """The first `limit` index rows matching `match` that hold any of the query's `words` (a
    tsquery) and whose asset meets `conditions`: more mentions first (ts_rank over the small
    `words` column), then newest taken. Arguments are placeholders or SQL.

    The hits are found (by the index of owner and words) and put in order in the index alone;
    then each is looked up in `asset` by its key, in that order, until the page is full: the
    nested loop keeps the order, so nothing is sorted again and the lookups stop at the page.
    (`OFFSET 0` keeps the lookup per hit: left to itself, the planner misjudges Immich's
    visibility filters and scans every asset, seconds at a million photos.)"""
    return f"""
SELECT h.asset_id
FROM (
  SELECT i.asset_id, i.taken, ts_rank(i.words, {words}) AS rank
  FROM aio.ocr_index i
  WHERE {match} AND i.words @@ {words} AND i.owner_id IN ({owners})
  ORDER BY rank DESC, i.taken DESC, i.asset_id
) h
CROSS JOIN LATERAL (SELECT FROM asset a WHERE a.id = h.asset_id AND {conditions} OFFSET 0) a
ORDER BY h.rank DESC, h.taken DESC, h.asset_id
LIMIT {limit}
"""


def recent_literal_matches(conditions: str, match: str, owners: str, window: int, limit: str) -> str:
    """Per owner, the first `limit` of their `window` newest index rows (by the index of owner
    and taken time) that match `match` and whose asset meets `conditions`, newest first
    (`bound` false); and their `window`-th newest row, where they have one (`bound` true): what
    the window saw ends there. A fragment most photos hold fills a page after a few rows."""
    return f"""
SELECT o.id AS owner_id, h.asset_id, h.taken, false AS bound
FROM unnest(array({owners})) o(id)
CROSS JOIN LATERAL (
  SELECT i.asset_id, i.taken
  FROM (
    SELECT r.asset_id, r.taken, r.words, r.grams FROM aio.ocr_index r WHERE r.owner_id = o.id
    ORDER BY r.taken DESC, r.asset_id LIMIT {window}
  ) i
  WHERE {match} AND EXISTS (SELECT FROM asset a WHERE a.id = i.asset_id AND {conditions} OFFSET 0)
  LIMIT {limit}
) h
UNION ALL
SELECT o.id, b.asset_id, b.taken, true
FROM unnest(array({owners})) o(id)
CROSS JOIN LATERAL (
  SELECT r.asset_id, r.taken FROM aio.ocr_index r WHERE r.owner_id = o.id
  ORDER BY r.taken DESC, r.asset_id OFFSET {window - 1} LIMIT 1
) b
"""


def literal_matches(conditions: str, match: str, owners: str, limit: str) -> str:
    """The first `limit` index rows matching `match` whose asset meets `conditions`, newest
    taken first: every match is found through the grams' index and sorted (for a fragment few
    photos hold; the others come from `recent_literal_matches`)."""
    return f"""
SELECT h.asset_id
FROM (
  SELECT i.asset_id, i.taken FROM aio.ocr_index i
  WHERE {match} AND i.owner_id IN ({owners})
  ORDER BY i.taken DESC, i.asset_id
) h
CROSS JOIN LATERAL (SELECT FROM asset a WHERE a.id = h.asset_id AND {conditions} OFFSET 0) a
ORDER BY h.taken DESC, h.asset_id
LIMIT {limit}
"""


def dated_ocr_search(conditions: str, match: str, owners: str, direction: str, limit: str, offset: str) -> str:
    """Index rows matching `match` whose asset meets `conditions`, in the order of Immich's
    metadata search (taken time, then id, both `direction`: ASC or DESC). The hits are found in
    the index first and each looked up in `asset` by its key (`OFFSET 0`, as in `word_matches`:
    joined freely, the planner scanned every asset and probed the index for each, 0.7 s for a
    common word at a million photos)."""
    return f"""
SELECT h.asset_id
FROM (SELECT i.asset_id FROM aio.ocr_index i WHERE {match} AND i.owner_id IN ({owners})) h
CROSS JOIN LATERAL (SELECT a."fileCreatedAt", a.id FROM asset a WHERE a.id = h.asset_id AND {conditions} OFFSET 0) a
ORDER BY a."fileCreatedAt" {direction}, a.id {direction}
LIMIT {limit} OFFSET {offset}
"""


def clip_ranked_ocr_search(conditions: str, match: str, owners: str, embedding: str, limit: str, offset: str) -> str:
    """Index rows matching `match` whose asset meets `conditions`, in the order of Immich's smart
    search: CLIP distance to `embedding` (a vector), then id; assets without a vector are left
    out, as Immich's inner join leaves them out. Looked up hit by hit, as `dated_ocr_search`."""
    return f"""
SELECT h.asset_id
FROM (SELECT i.asset_id FROM aio.ocr_index i WHERE {match} AND i.owner_id IN ({owners})) h
CROSS JOIN LATERAL (
  SELECT a.id, s.embedding FROM asset a JOIN smart_search s ON s."assetId" = a.id
  WHERE a.id = h.asset_id AND {conditions} OFFSET 0
) a
ORDER BY a.embedding <=> {embedding}, a.id
LIMIT {limit} OFFSET {offset}
"""
