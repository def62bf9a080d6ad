"""`ocr:` search at library scale, on the real PostgreSQL of this machine.

Builds a scratch database with Immich's tables and 100k assets (10 owners) whose OCR lines are
made of common Chinese words (jieba's dictionary, weighted by frequency) plus some English and
numbers; then measures the first full index build (backfill) and an incremental sync of 10k new
OCR results, as rows per second, and the database part of a search (tsquery + ranked query,
first page of 100) for common words, as p50/p95. Run: `.venv/bin/python -m bench.ocr_search`
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import jieba
from gateway.search.schemas import SmartSearch

from bench.common import percentile
from gateway.search.index import OcrIndex
from testing.immich_db import scratch_database

ASSETS = 100_000
NEW = 10_000
OWNERS = 10
QUERIES = 200
QUERY_WORDS = ["发票", "北京", "公司", "中国", "有限公司", "电话", "时间", "地址", "银行", "超市", "咖啡", "欢迎"]


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
        if rng.random() < 0.2:
            line += f" Tel {rng.randint(10_000_000, 99_999_999)} Total ¥{rng.randint(1, 999)}.00"
        result.append(line)
    return result


async def load(
    pool: asyncpg.Pool, owners: list[uuid.UUID], count: int, rng: random.Random, vocab, ocr_within: timedelta
) -> None:
    """Write assets, their OCR lines and ocrAt the way Immich does, in bulk (COPY); the OCR
    results are spread over the `ocr_within` before now, as a job run leaves them."""
    now = datetime.now(timezone.utc)
    assets, ocr_rows, status = [], [], []
    for i in range(count):
        asset_id = uuid.uuid4()
        taken = now - timedelta(minutes=rng.randint(0, 5_000_000))
        assets.append((asset_id, owners[i % len(owners)], "IMAGE", "timeline", taken, now))
        for n, text in enumerate(lines(rng, *vocab)):
            y = n / 10
            ocr_rows.append((asset_id, 0.1, y, 0.9, y, 0.9, y + 0.05, 0.1, y + 0.05, 0.9, 0.95, text))
        status.append((asset_id, now - ocr_within * rng.random()))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "asset",
            records=assets,
            columns=["id", "ownerId", "type", "visibility", "fileCreatedAt", "createdAt"],
        )
        await conn.copy_records_to_table(
            "asset_ocr",
            records=ocr_rows,
            columns=["assetId", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "boxScore", "textScore", "text"],
        )
        await conn.copy_records_to_table("asset_job_status", records=status, columns=["assetId", "ocrAt"])
        await conn.execute("ANALYZE")


async def run() -> None:
    rng = random.Random(7)
    vocab = vocabulary()
    owners = [uuid.uuid4() for _ in range(OWNERS)]
    async with scratch_database() as name:
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:5432/{name}", min_size=1, max_size=4)
        started = time.perf_counter()
        await load(pool, owners, ASSETS, rng, vocab, timedelta(days=30))
        print(f"loaded {ASSETS} assets with OCR lines in {time.perf_counter() - started:.1f} s")
        index = OcrIndex(pool, batch_size=1000)
        await index.migrate()
        started = time.perf_counter()
        done = await index.sync()
        elapsed = time.perf_counter() - started
        print(f"backfill: {done} rows in {elapsed:.1f} s = {done / elapsed:,.0f} rows/s")
        await pool.execute("ANALYZE aio.ocr_index")

        await load(pool, owners, NEW, rng, vocab, timedelta(hours=1))
        started = time.perf_counter()
        done = await index.sync()
        elapsed = time.perf_counter() - started
        print(f"incremental sync: {done} new OCR results in {elapsed:.2f} s = {done / elapsed:,.0f} rows/s")
        started = time.perf_counter()
        await index.catch_up(1000)
        print(f"catch-up before a search with nothing new: {(time.perf_counter() - started) * 1000:.1f} ms")

        filters = SmartSearch(query="x").filters()
        user = str(owners[0])
        timings, hits = [], []
        for i in range(QUERIES):
            words = QUERY_WORDS[i % len(QUERY_WORDS)]
            started = time.perf_counter()
            found = await index.search(await index.tsquery(words), user, filters, 101, 0)
            timings.append((time.perf_counter() - started) * 1000)
            hits.append(len(found))
        print(
            f"search (database part, first page of 100, one owner's 11k assets of {ASSETS + NEW}):"
            f" p50 {statistics.median(timings):.1f} ms  p95 {percentile(timings, 0.95):.1f} ms"
            f"  max {max(timings):.1f} ms; median page fill {statistics.median(hits):.0f}"
        )
        total = await pool.fetchval(
            "SELECT count(*) FROM aio.ocr_index WHERE words @@ plainto_tsquery('simple', '发票')"
        )
        print(f"assets containing 发票 in the whole index: {total}")
        await pool.close()


if __name__ == "__main__":
    asyncio.run(run())
