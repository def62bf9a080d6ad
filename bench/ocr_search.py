"""`ocr:` search at library scale, on the real PostgreSQL of this machine.

Builds a scratch database with Immich 3.2's tables and ASSETS assets (default 1M, 10 owners)
whose OCR lines are made of common Chinese words (jieba's dictionary, weighted by frequency)
plus some English and numbers. Then, for each tokenizer this PostgreSQL has:
- the first full index build (backfill), as rows per second;
- an incremental sync of 10k new OCR results;
- with nothing new: the catch-up before a search, and a background sync pass, both through
  3.x's change feeds (asset_ocr."updateId", the delete audit) and through 2.x's
  (asset_job_status."ocrAt", which Immich does not index);
- the database part of an `ocr:` search (the query's words, then its matches, first page of 100),
  by kind of query: common words, shop names the dictionaries lack (in 2% of lines), single
  characters, the start of a Latin word, the last digits of a phone number.
Run: `.venv/bin/python -m bench.ocr_search` (ASSETS=100000 for a quicker run)
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import jieba

from bench.common import percentile
from gateway.immich.db import Database
from gateway.immich.dto import SmartSearch
from gateway.immich.facts import ImmichFacts
from gateway.search.index import OcrIndex
from testing.immich_db import database_for, dsn, scratch_database, zhparser_beside

ASSETS = int(os.environ.get("ASSETS", "1000000"))
NEW = 10_000
OWNERS = 10
QUERIES = 200
CHUNK = 100_000
QUERY_WORDS = ["发票", "北京", "公司", "中国", "有限公司", "电话", "时间", "地址", "银行", "超市", "咖啡", "欢迎"]
NAMES = ["蜜雪冰城", "茶颜悦色", "海底捞火锅", "鼎泰豐", "瑞幸咖啡", "张伟", "陈美玲", "喜茶"]
QUERY_KINDS = {
    "words": QUERY_WORDS,
    "names": NAMES,
    "single characters": ["猫", "茶", "票", "的"],
    "Latin prefixes": ["tota", "te", "tot"],
    "digit runs": ["5678", "1234", "0042"],
}


def vocabulary() -> tuple[list[str], list[int]]:
    """The 20k most frequent words of jieba's dictionary, with cumulative frequencies."""
    entries = []
    for line in Path(jieba.get_dict_file().name).read_text(encoding="utf-8").splitlines():
        word, freq, *_ = line.split(" ")
        entries.append((int(freq), word))
    entries.sort(reverse=True)
    top = entries[:20_000] + [(30_000, w) for w in QUERY_WORDS]
    return [w for _, w in top], list(itertools.accumulate(f for f, _ in top))


def lines(rng: random.Random, words: list[str], cumulative: list[int]) -> list[str]:
    result = []
    for _ in range(rng.randint(1, 5)):
        line = "".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(3, 9)))
        if rng.random() < 0.02:
            line += rng.choice(NAMES)
        if rng.random() < 0.2:
            line += f" Tel {rng.randint(10_000_000, 99_999_999)} Total ¥{rng.randint(1, 999)}.00"
        result.append(line)
    return result


async def load(
    pool: asyncpg.Pool,
    owners: list[uuid.UUID],
    count: int,
    rng: random.Random,
    vocab,
    within: timedelta,
    until: datetime,
):
    """Write assets, their OCR lines (with 3.x's updateId) and ocrAt the way Immich does, in bulk
    (COPY), in chunks; the OCR results are spread over `within` before `until`, as job runs leave them."""
    now = datetime.now(timezone.utc)
    for start in range(0, count, CHUNK):
        assets, ocr_rows, status = [], [], []
        for i in range(start, min(count, start + CHUNK)):
            asset_id = uuid.uuid4()
            taken = now - timedelta(minutes=rng.randint(0, 5_000_000))
            assets.append((asset_id, owners[i % len(owners)], "IMAGE", "timeline", taken, now))
            read_at = until - within * rng.random()
            status.append((asset_id, read_at))
            for n, text in enumerate(lines(rng, *vocab)):
                y = n / 10
                line = (asset_id, 0.1, y, 0.9, y, 0.9, y + 0.05, 0.1, y + 0.05, 0.9, 0.95, text, uuid7(read_at, rng))
                ocr_rows.append(line)
        async with pool.acquire() as conn:
            columns = ["id", "ownerId", "type", "visibility", "fileCreatedAt", "createdAt"]
            await conn.copy_records_to_table("asset", records=assets, columns=columns)
            ocr_columns = ["assetId", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "boxScore", "textScore", "text"]
            await conn.copy_records_to_table("asset_ocr", records=ocr_rows, columns=[*ocr_columns, "updateId"])
            await conn.copy_records_to_table("asset_job_status", records=status, columns=["assetId", "ocrAt"])
    await pool.execute("ANALYZE")


def uuid7(moment: datetime, rng: random.Random) -> uuid.UUID:
    """A uuid v7 of `moment`, as Immich stamps asset_ocr."updateId" when it writes a line."""
    millis = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(millis << 80) | (7 << 76) | (rng.getrandbits(12) << 64) | (2 << 62) | rng.getrandbits(62))


async def timed(call, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(index: OcrIndex, database: Database, owners: list[uuid.UUID], vocab, rng: random.Random) -> None:
    pool, facts = database.pool, database.facts
    assert pool is not None and facts is not None
    await pool.execute("ANALYZE aio.ocr_index")
    # An OCR job's work since the newest result indexed so far (Immich stamps a line when it
    # writes it, so no new line sorts before what the index has read).
    now, newest = datetime.now(timezone.utc), await pool.fetchval('SELECT max("ocrAt") FROM asset_job_status')
    await load(pool, owners, NEW, rng, vocab, now - newest, now)
    started = time.perf_counter()
    done = await index.passes.sync(pool, facts)
    elapsed = time.perf_counter() - started
    print(f"  incremental sync: {done} new OCR results in {elapsed:.2f} s = {done / elapsed:,.0f} rows/s")
    await pool.execute("ANALYZE")
    # Nothing new from here on; the feeds' last minute holds the rows just read, as after a busy job.
    legacy = ImmichFacts(facts.version, facts.version_from, dataclasses.replace(facts.columns, ocr_update_id=False))
    for label, feed_facts in (("3.x feeds", facts), ("2.x feed (ocrAt)", legacy)):
        await index.passes.sync(pool, feed_facts)
        catch_up = await timed(lambda f=feed_facts: index.passes.catch_up(pool, f, 1000), 30)
        passes = await timed(lambda f=feed_facts: index.passes.sync(pool, f), 5)
        print(
            f"  nothing new, {label}: catch-up p50 {statistics.median(catch_up):.1f} ms"
            f" (p95 {percentile(catch_up, 0.95):.1f}); sync pass p50 {statistics.median(passes):.0f} ms"
        )
    user = str(owners[0])
    for kind, queries in QUERY_KINDS.items():
        timings, fills = [], []
        for i in range(QUERIES // len(QUERY_KINDS)):
            words = queries[i % len(queries)]
            started = time.perf_counter()
            query = await index.query.parse(pool, words)
            found = await index.query.search(pool, facts, query, SmartSearch(query=words), user, 101, 0)
            timings.append((time.perf_counter() - started) * 1000)
            fills.append(len(found))
        print(
            f"  search for {kind} (database part, first page of 100, one owner's {ASSETS // OWNERS:,} assets):"
            f" p50 {statistics.median(timings):.1f} ms  p95 {percentile(timings, 0.95):.1f} ms"
            f"  max {max(timings):.1f} ms; median page fill {statistics.median(fills):.0f}"
        )


async def run() -> None:
    rng = random.Random(7)
    vocab = vocabulary()
    owners = [uuid.uuid4() for _ in range(OWNERS)]
    async with scratch_database("3.2") as name:
        pool = await asyncpg.create_pool(dsn(name), min_size=1, max_size=4)
        started = time.perf_counter()
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        await load(pool, owners, ASSETS, rng, vocab, timedelta(days=30), an_hour_ago)
        rows = await pool.fetchval("SELECT count(*) FROM asset_ocr")
        print(f"loaded {ASSETS:,} assets ({rows:,} OCR lines) in {time.perf_counter() - started:.0f} s")
        zhparser = await pool.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'")
        await pool.close()
        for tokenizer in (["zhparser"] if zhparser else []) + ["jieba"]:
            database = database_for(name, query_timeout=600)
            await database.ensure()
            assert database.pool is not None and database.facts is not None
            index = OcrIndex(1000, tokenizer, workers=os.cpu_count() or 1, zhparser=zhparser_beside())  # type: ignore[arg-type]
            await index.passes.prepare(database.pool)  # another tokenizer built it: emptied for a rebuild
            print(f"\n{tokenizer}:")
            started = time.perf_counter()
            done = await index.passes.sync(database.pool, database.facts)
            elapsed = time.perf_counter() - started
            print(f"  backfill: {done:,} assets indexed in {elapsed:.0f} s = {done / elapsed:,.0f} rows/s")
            await measure(index, database, owners, vocab, rng)
            await index.close()
            await database.close()


if __name__ == "__main__":
    asyncio.run(run())
