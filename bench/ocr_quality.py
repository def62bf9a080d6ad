"""Word search quality: our `ocr:` index against Immich's own OCR search, on a labelled corpus.

The corpus (bench/data/ocr_quality.json) holds OCR-like lines of signs, receipts, invoices,
chats and documents, written as words; each query names the words it asks for, and an asset is
relevant when it holds all of them (a word, the word a traditional or full-width spelling means,
or a word inside a compound), never because characters happen to follow each other (研究生 is
not in 研究生命起源). A query marked `match: substring` (a single character, the start of a
Latin word, the last digits of a number) finds the assets whose folded text holds it. Each query
has a class: words, trap (characters that straddle two words), name (of a shop, brand or person
the dictionaries lack, in either script), single character, Latin prefix, digit run, mixed
Chinese-English. Every system gets the same rows in a scratch database:
- ours, with each tokenizer this PostgreSQL has (zhparser when installed, jieba always);
- Immich 2.4+'s OCR search reproduced in SQL: `ocr_search.text` holds each line's CJK runs as
  overlapping two-character pairs, the query is split the same way, and rows match by
  `f_unaccent(text) %>> f_unaccent(query)` (pg_trgm strict word similarity).
Each in the orders Immich's two routes with `ocr` give, and ours in its own:
- the OCR search type (metadata search): newest taken first;
- smart search with `ocr`: CLIP distance to the query's vector. Every photo and query gets a
  random CLIP vector, the same for both systems, so only which photos match differs (needs
  pgvector in this PostgreSQL; the rows are left out without it);
- `ocr:` (ours only): by mentions.
Reported per system, averaged over the queries, and per class: precision@10 (the share of the
first ten answers, or fewer when fewer come back, that are relevant), recall (of all answers)
and nDCG@10. To compare with an earlier release, run this file in a checkout of that release.
Run: `.venv/bin/python -m bench.ocr_quality`
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import asyncpg

from gateway.immich.db import Database
from gateway.immich.dto import SmartSearch
from gateway.search.index import OcrIndex
from gateway.search.tokenize import ZHPARSER_SETTINGS, fold
from testing.immich_db import DIMENSION, database_for, dsn, scratch_database, zhparser_beside

CORPUS = Path(__file__).parent / "data" / "ocr_quality.json"
OWNER = uuid.UUID(int=1)
TOP = 10

# Immich's OCR search, as its server has it since 2.4 (server/src/utils/database.ts).
IMMICH_SQL = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN unaccent('unaccent', $1);
CREATE TABLE ocr_search ("assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE, text text NOT NULL);
CREATE INDEX ocr_search_text_trgm ON ocr_search USING gin (f_unaccent(text) gin_trgm_ops);
"""
IMMICH_SEARCH = """
SELECT a.id FROM asset a JOIN ocr_search o ON o."assetId" = a.id
WHERE f_unaccent(o.text) %>> f_unaccent($1)
ORDER BY a."fileCreatedAt" DESC, a.id DESC
"""
IMMICH_SMART_SEARCH = """
SELECT a.id FROM asset a JOIN ocr_search o ON o."assetId" = a.id JOIN smart_search s ON s."assetId" = a.id
WHERE f_unaccent(o.text) %>> f_unaccent($1)
ORDER BY s.embedding <=> $2::text::vector, a.id
"""
METADATA = "OCR search type"
SMART = "smart search with ocr"


def is_cjk(c: str) -> bool:
    """The characters Immich splits into pairs: CJK ideographs, Hangul, kana, extension A."""
    code = ord(c)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0x3040 <= code <= 0x309F
        or 0x30A0 <= code <= 0x30FF
        or 0x3400 <= code <= 0x4DBF
    )


def immich_tokens(text: str) -> list[str]:
    """Immich's tokenizeForSearch: whitespace-separated runs; a CJK run becomes its overlapping
    two-character pairs (a lone character stays), anything else stays whole."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        if ord(text[i]) <= 32:
            i += 1
            continue
        start = i
        cjk = is_cjk(text[i])
        while i < len(text) and ord(text[i]) > 32 and is_cjk(text[i]) == cjk:
            i += 1
        run = text[start:i]
        tokens += ([run] if len(run) == 1 else [run[k : k + 2] for k in range(len(run) - 1)]) if cjk else [run]
    return tokens


@dataclass
class Asset:
    id: uuid.UUID
    lines: list[str]
    words: set[str]

    @property
    def folded(self) -> str:
        return fold(" ".join(self.lines)).lower()


def parse(entry: dict) -> Asset:
    """Lines of `surface=word+part|...` tokens as OCR text, and the words they hold."""
    words: set[str] = set()
    lines = []
    for line in entry["lines"]:
        surfaces = []
        for token in line.split("|"):
            written, _, parts = token.partition("+")
            surface, _, meaning = written.partition("=")
            surfaces.append(surface)
            words.update(w.lower() for w in [meaning or surface, *parts.split("+")] if w)
        lines.append(_join(surfaces))
    return Asset(uuid.uuid5(uuid.NAMESPACE_URL, entry["id"]), lines, words)


def _join(surfaces: list[str]) -> str:
    """Words run together as Chinese is written; a space only between two Latin words or numbers."""
    text = surfaces[0]
    for surface in surfaces[1:]:
        latin = [unicodedata.normalize("NFKC", c).isascii() and c.isalnum() for c in (text[-1], surface[0])]
        text += (" " if all(latin) else "") + surface
    return text


async def load(pool: asyncpg.Pool, assets: list[Asset]) -> None:
    rng, vector_rng = random.Random(3), random.Random(4)
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        await conn.execute(IMMICH_SQL)
        for asset in assets:
            taken = now - timedelta(days=rng.randint(0, 2000))
            await conn.execute(
                'INSERT INTO asset (id, "ownerId", "fileCreatedAt") VALUES ($1, $2, $3)', asset.id, OWNER, taken
            )
            await conn.executemany(
                'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", text)'
                " VALUES ($1, 0.1, $2::real, 0.9, $2::real, 0.9, $2::real + 0.05, 0.1, $2::real + 0.05, 0.9, 0.95, $3)",
                [(asset.id, i / 20, line) for i, line in enumerate(asset.lines)],
            )
            await conn.execute('INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES ($1, now())', asset.id)
            tokens = " ".join(token for line in asset.lines for token in immich_tokens(line))
            await conn.execute('INSERT INTO ocr_search ("assetId", text) VALUES ($1, $2)', asset.id, tokens)
            if await has_vectors(conn):
                await conn.execute(
                    'INSERT INTO smart_search ("assetId", embedding) VALUES ($1, $2::text::vector)',
                    asset.id,
                    random_vector(vector_rng),
                )


async def has_vectors(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'"))


def random_vector(rng: random.Random) -> str:
    return "[" + ",".join(f"{rng.gauss(0, 1):.6f}" for _ in range(DIMENSION)) + "]"


def scores(ranked: list[uuid.UUID], relevant: set[uuid.UUID]) -> tuple[float, float, float]:
    top = ranked[:TOP]
    precision = sum(a in relevant for a in top) / len(top) if top else (1.0 if not relevant else 0.0)
    recall = sum(a in relevant for a in ranked) / len(relevant) if relevant else 1.0
    dcg = sum(1 / math.log2(rank + 2) for rank, a in enumerate(top) if a in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(TOP, len(relevant))))
    return precision, recall, (dcg / ideal if ideal else 1.0)


async def run() -> None:
    corpus = json.loads(CORPUS.read_text())
    assets = [parse(entry) for entry in corpus["assets"]]
    queries = corpus["queries"]
    print(f"corpus: {len(assets)} assets, {sum(len(a.lines) for a in assets)} lines, {len(queries)} queries")
    results: dict[str, list[tuple[float, float, float]]] = {}
    async with scratch_database("3.2") as name:
        pool = await asyncpg.create_pool(dsn(name), min_size=1, max_size=2, server_settings=ZHPARSER_SETTINGS)
        await load(pool, assets)
        vectors = await has_vectors(pool)
        rng = random.Random(5)
        query_vectors = [random_vector(rng) for _ in queries]
        orders = [METADATA] + ([SMART] if vectors else [])
        has_zhparser = await pool.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'")
        tokenizers = (["zhparser"] if has_zhparser else []) + ["jieba"]
        for order in orders:
            results[f"Immich's own {order}"] = []
            for tokenizer in tokenizers:
                results[f"{order}, answered by us ({tokenizer})"] = []
        for tokenizer in tokenizers:
            results[f"ocr: ({tokenizer})"] = []
        for tokenizer in tokenizers:
            index = OcrIndex(1000, tokenizer, workers=2, zhparser=zhparser_beside())  # type: ignore[arg-type]
            database = database_for(name, query_timeout=60)
            await database.ensure()
            assert database.pool is not None and database.facts is not None
            await index.passes.prepare(database.pool)
            await index.passes.sync(database.pool, database.facts)
            for query, vector in zip(queries, query_vectors, strict=True):
                relevant = _relevant(assets, query)
                results[f"ocr: ({tokenizer})"].append(scores(await _ours(index, database, query["query"]), relevant))
                by_date = await _ours(index, database, query["query"], by_date="desc")
                results[f"{METADATA}, answered by us ({tokenizer})"].append(scores(by_date, relevant))
                if vectors:
                    by_clip = await _ours(index, database, query["query"], by_vector=vector)
                    results[f"{SMART}, answered by us ({tokenizer})"].append(scores(by_clip, relevant))
            await index.close()
            await database.close()
        for query, vector in zip(queries, query_vectors, strict=True):
            relevant = _relevant(assets, query)
            words = " ".join(immich_tokens(query["query"]))
            rows = await pool.fetch(IMMICH_SEARCH, words)
            results[f"Immich's own {METADATA}"].append(scores([r["id"] for r in rows], relevant))
            if vectors:
                rows = await pool.fetch(IMMICH_SMART_SEARCH, words, vector)
                results[f"Immich's own {SMART}"].append(scores([r["id"] for r in rows], relevant))
        await pool.close()
    print("\nqueries where a system falls short (precision@10, recall):")
    for number, query in enumerate(queries):
        short = {s: v[number][:2] for s, v in results.items() if min(v[number][:2]) < 1}
        if short:
            print(f"  {query['query']}: " + "; ".join(f"{s} {p:.2f}/{r:.2f}" for s, (p, r) in short.items()))
    print(f"\n| system | precision@{TOP} | recall | nDCG@{TOP} |\n|---|---|---|---|")
    for system, values in results.items():
        p, r, n = (sum(v[i] for v in values) / len(values) for i in range(3))
        print(f"| {system} | {p:.3f} | {r:.3f} | {n:.3f} |")
    classes = list(dict.fromkeys(query["class"] for query in queries))
    print(f"\nby class, precision@{TOP} / recall:\n\n| system | " + " | ".join(classes) + " |")
    print("|---" * (len(classes) + 1) + "|")
    for system, values in results.items():
        cells = []
        for kind in classes:
            ours = [v for v, query in zip(values, queries, strict=True) if query["class"] == kind]
            cells.append(f"{sum(v[0] for v in ours) / len(ours):.2f} / {sum(v[1] for v in ours) / len(ours):.2f}")
        print(f"| {system} | " + " | ".join(cells) + " |")


def _relevant(assets: list[Asset], query: dict) -> set[uuid.UUID]:
    if query.get("match") == "substring":
        fragment = fold(query["query"]).lower().strip()
        return {a.id for a in assets if fragment in a.folded}
    return {a.id for a in assets if all(word.lower() in a.words for word in query["words"])}


async def _ours(
    index: OcrIndex,
    database: Database,
    words: str,
    by_date: Literal["asc", "desc"] | None = None,
    by_vector: str | None = None,
) -> list[uuid.UUID]:
    assert database.pool is not None and database.facts is not None
    query = await index.query.parse(database.pool, words)
    if not query.runs:
        return []
    dto = SmartSearch(query=words, visibility="timeline")
    found = await index.query.search(
        database.pool, database.facts, query, dto, str(OWNER), 1000, 0, by_date=by_date, by_vector=by_vector
    )
    return [uuid.UUID(a) for a in found]


if __name__ == "__main__":
    asyncio.run(run())
