"""The OCR word index on a real PostgreSQL: words, ranking, sync, deletion, hostile text."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from gateway.search.index import MIGRATIONS, OcrIndex
from gateway.search.schemas import SmartSearch
from tests.immich_db import ImmichRows, scratch_database

ALICE = str(uuid.uuid4())
BOB = str(uuid.uuid4())


@pytest.fixture
async def db():
    async with scratch_database() as name:
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:5432/{name}", min_size=1, max_size=4)
        index = OcrIndex(pool, batch_size=3)
        await index.migrate()
        yield index, ImmichRows(pool)
        await pool.close()


async def find(index: OcrIndex, words: str, user: str = ALICE, **filters) -> list[str]:
    query = await index.tsquery(words)
    if not query:
        return []
    return await index.search(query, user, SmartSearch(query=words, **filters).filters(), 100, 0)


async def test_finds_chinese_words_english_and_mixed_lines(db):
    index, rows = db
    invoice = await rows.asset(ALICE, ["增值税电子普通发票", "购买方名称 北京某某科技有限公司"])
    receipt = await rows.asset(ALICE, ["收据 Receipt", "Coffee 咖啡 ¥28"])
    await rows.asset(ALICE, ["今天天气很好"])
    assert await index.sync() == 3
    assert await find(index, "发票") == [invoice]
    assert await find(index, "coffee") == [receipt]
    assert await find(index, "Receipt 咖啡") == [receipt]
    assert await find(index, "科技有限公司") == [invoice]
    assert await find(index, "火车票") == []


async def test_more_mentions_rank_higher_and_all_words_must_match(db):
    index, rows = db
    once = await rows.asset(ALICE, ["发票"])
    thrice = await rows.asset(ALICE, ["发票 发票", "发票"])
    both = await rows.asset(ALICE, ["电子 发票"])
    joined = await rows.asset(ALICE, ["电子发票"])
    await rows.asset(ALICE, ["电子 产品"])
    await index.sync()
    hits = await find(index, "发票")
    assert hits[0] == thrice and set(hits) == {once, thrice, both, joined}
    assert set(await find(index, "电子发票")) == {both, joined}


async def test_newest_first_between_equal_ranks(db):
    from datetime import datetime, timedelta, timezone

    index, rows = db
    now = datetime.now(timezone.utc)
    old = await rows.asset(ALICE, ["发票"], taken=now - timedelta(days=30))
    new = await rows.asset(ALICE, ["发票"], taken=now)
    await index.sync()
    assert await find(index, "发票") == [new, old]


async def test_owners_partners_trash_and_visibility(db):
    index, rows = db
    mine = await rows.asset(ALICE, ["发票 mine"])
    bobs = await rows.asset(BOB, ["发票 bobs"])
    carols_partner = str(uuid.uuid4())
    carols = await rows.asset(carols_partner, ["发票 carols"])
    await rows.partner(BOB, ALICE, in_timeline=True)
    await rows.partner(carols_partner, ALICE, in_timeline=False)
    trashed = await rows.asset(ALICE, ["发票 trashed"], deleted=True)
    archived = await rows.asset(ALICE, ["发票 archived"], visibility="archive")
    hidden = await rows.asset(ALICE, ["发票 hidden"], visibility="hidden")
    locked = await rows.asset(ALICE, ["发票 locked"], visibility="locked")
    video = await rows.asset(ALICE, ["发票 video"], type="VIDEO", favorite=True)
    await index.sync()
    assert set(await find(index, "发票")) == {mine, bobs, archived, video}
    assert carols not in await find(index, "发票") and hidden not in await find(index, "发票")
    assert set(await find(index, "发票", withDeleted=True)) == {mine, bobs, archived, video, trashed}
    assert await find(index, "发票", visibility="archive") == [archived]
    assert await find(index, "发票", visibility="locked") == [locked]
    assert await find(index, "发票", type="VIDEO") == [video]
    assert await find(index, "发票", isFavorite=True) == [video]
    assert await find(index, "发票", user=BOB) == [bobs]


async def test_re_ocr_replaces_cleared_results_and_deleted_assets_vanish(db):
    index, rows = db
    asset = await rows.asset(ALICE, ["发票"])
    gone = await rows.asset(ALICE, ["发票 gone"])
    await index.sync()
    await rows.ocr(asset, ["咖啡"])
    assert await index.catch_up(100) == 1
    assert await find(index, "发票") == [gone]
    assert await find(index, "咖啡") == [asset]
    await rows.delete(gone)
    assert await find(index, "发票") == []
    await rows.clear_ocr(asset)
    await index.sync()
    assert await find(index, "咖啡") == []
    assert await index.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 0


async def test_sync_is_idempotent_and_repairs_a_crash(db, monkeypatch):
    index, rows = db
    assets = [await rows.asset(ALICE, [f"发票 第{i}张"]) for i in range(8)]
    calls = 0
    real = index._sync_batch

    async def crash_after_first_batch(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("killed mid-sync")
        return await real(*args, **kwargs)

    monkeypatch.setattr(index, "_sync_batch", crash_after_first_batch)
    with pytest.raises(ConnectionResetError):
        await index.sync()
    assert await index.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 3
    monkeypatch.undo()
    assert await index.sync() == 5
    assert await index.sync() == 0
    assert set(await find(index, "发票")) == set(assets)


async def test_migration_is_idempotent_and_records_the_tokenizer(db):
    index, rows = db
    await rows.asset(ALICE, ["发票"])
    await index.sync()
    await index.migrate()
    meta = dict(await index.pool.fetch("SELECT key, value FROM aio.meta"))
    assert meta == {"schema_version": str(len(MIGRATIONS)), "tokenizer": "jieba"}
    assert await index.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 1
    await index.pool.execute("UPDATE aio.meta SET value = 'zhparser' WHERE key = 'tokenizer'")
    await index.migrate()  # another tokenizer built it: rebuilt from scratch
    assert await index.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 0
    assert await index.sync() == 1


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE asset; --",
        "发票 & | ! ( ) <-> :* '",
        "a:*b & !c",
        "\\' \" `",
        "(((",
        "发票)",
        "！？。，、",
        "的 了 是",
        "   ",
    ],
)
async def test_any_text_is_safe(db, text):
    index, rows = db
    invoice = await rows.asset(ALICE, ["发票"])
    await index.sync()
    hits = await find(index, text)
    assert hits == ([invoice] if "发票" in text else [])
    assert await index.pool.fetchval("SELECT count(*) FROM asset") == 1
