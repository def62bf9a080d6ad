"""The OCR word index on a real PostgreSQL, for each Immich release's tables and each tokenizer:
words, compounds, boundaries, ranking, filters, folding, sync, visibility, deletion, hostile text."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from aio_common.errors import Unavailable
from gateway import aio_schema
from gateway.immich.db import Database
from gateway.immich.dto import SmartSearch
from gateway.search import feeds as feeds_module
from gateway.search import query as query_module
from gateway.search import sql as sql_module
from gateway.search.index import OcrIndex
from gateway.search.tokenize import FOLDING, SPLITTING
from testing.immich_db import ImmichRows, database_for, scratch_database, zhparser_beside

ALICE = str(uuid.uuid4())
BOB = str(uuid.uuid4())


@dataclass
class Ctx:
    index: OcrIndex
    rows: ImmichRows
    db: Database

    @property
    def pool(self):
        assert self.db.pool is not None
        return self.db.pool

    async def sync(self) -> int:
        assert self.db.facts is not None
        return await self.index.passes.sync(self.pool, self.db.facts)

    async def find(self, words: str, user: str = ALICE, **dto: Any) -> list[str]:
        return await self.find_page(words, user, size=100, page=1, **dto)

    async def find_page(self, words: str, user: str = ALICE, *, size: int, page: int, **dto: Any) -> list[str]:
        assert self.db.facts is not None
        query = await self.index.query.parse(self.pool, words)
        if not query.runs:
            return []
        search = SmartSearch(query=words, **dto)
        return await self.index.query.search(self.pool, self.db.facts, query, search, user, size, (page - 1) * size)


@pytest.fixture
async def ctx(release, tokenizer):
    async with scratch_database(release) as name:
        db = database_for(name, release)
        await db.ensure()
        index = OcrIndex(batch_size=3, tokenizer=tokenizer, workers=2, zhparser=zhparser_beside())
        assert db.pool is not None
        await index.passes.prepare(db.pool)
        yield Ctx(index, ImmichRows(db.pool, release), db)
        await index.close()
        await db.close()


async def test_finds_chinese_words_english_and_mixed_lines(ctx):
    invoice = await ctx.rows.asset(ALICE, ["增值税电子普通发票", "购买方名称 北京某某科技有限公司"])
    receipt = await ctx.rows.asset(ALICE, ["收据 Receipt", "Coffee 咖啡 ¥28"])
    await ctx.rows.asset(ALICE, ["今天天气很好"])
    assert await ctx.sync() == 3
    assert await ctx.find("发票") == [invoice]
    assert await ctx.find("coffee") == [receipt]
    assert await ctx.find("Receipt 咖啡") == [receipt]
    assert await ctx.find("科技") == [invoice]
    assert await ctx.find("火车票") == []


async def test_a_compounds_parts_are_found(ctx):
    shop = await ctx.rows.asset(ALICE, ["奶茶店"])
    bridge = await ctx.rows.asset(ALICE, ["长江大桥"])
    await ctx.sync()
    assert await ctx.find("奶茶") == [shop]
    assert await ctx.find("奶茶店") == [shop]
    assert await ctx.find("长江") == [bridge]


@pytest.mark.parametrize(
    ("query", "text", "word"),
    [
        ("研究生", "研究生命起源", "研究生招生简章"),
        ("和尚", "结婚的和尚未结婚的", "寺庙里的和尚"),
        ("市长", "南京市长江大桥", "北京市长发表讲话"),
    ],
)
async def test_characters_that_straddle_two_words_do_not_match(ctx, query, text, word):
    straddling = await ctx.rows.asset(ALICE, [text])
    real = await ctx.rows.asset(ALICE, [word])
    await ctx.sync()
    hits = await ctx.find(query)
    assert straddling not in hits and real in hits


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("蜜雪冰城", "蜜雪冰城 冰淇淋与茶"),  # zhparser keeps only 冰城 of it
        ("海底捞火锅", "海底捞火锅 欢迎光临"),  # ... and loses 捞
        ("張偉", "经办人 张伟 签字"),  # a person's name, typed in traditional script
        ("猫", "猫咪咖啡馆"),  # a single character inside a word
        ("recei", "RECEIPT No. 0042"),  # the start of a Latin word
        ("5678", "电话 13812345678"),  # the last digits of a phone number
    ],
)
async def test_names_single_characters_and_fragments_match_literally(ctx, query, text):
    hit = await ctx.rows.asset(ALICE, [text])
    await ctx.rows.asset(ALICE, ["冰城 冰淇淋 火锅 海底 咖啡馆 经办人 电话 收据 12345 RECORD"])
    await ctx.sync()
    assert await ctx.find(query) == [hit]


async def test_photos_that_match_as_words_come_before_literal_matches(ctx):
    word = await ctx.rows.asset(ALICE, ["receipt"], taken=datetime(2020, 1, 1, tzinfo=timezone.utc))
    literal = await ctx.rows.asset(ALICE, ["receipts receipts receipts"])  # newer, more mentions
    await ctx.sync()
    assert await ctx.find("receipt") == [word, literal]


def day(n: int) -> datetime:
    return datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(days=n)


async def test_literal_matches_come_newest_first_from_the_newest_rows_or_the_grams_index(ctx, monkeypatch):
    """A fragment is looked for in each owner's RECENT_WINDOW newest rows first; where those do
    not fill the page, the grams' index answers: the pages are the same either way."""
    monkeypatch.setattr(query_module, "RECENT_WINDOW", 4)
    cats = [await ctx.rows.asset(ALICE, [f"猫咪 {n}"], taken=day(n)) for n in range(6)]
    await ctx.rows.asset(ALICE, ["发票"], taken=day(10))
    trashed = await ctx.rows.asset(ALICE, ["猫咪"], taken=day(11))
    await ctx.sync()
    await ctx.pool.execute('UPDATE asset SET "deletedAt" = now() WHERE id = $1', trashed)
    newest_first = cats[::-1]
    assert await ctx.find("猫") == newest_first  # two pages of the window, then the grams' index
    assert await ctx.find_page("猫", size=2, page=1) == newest_first[:2]  # from the window alone
    assert await ctx.find_page("猫", size=2, page=2) == newest_first[2:4]
    assert await ctx.find_page("猫", size=2, page=3) == newest_first[4:]


async def test_a_pass_leaves_nothing_in_the_gin_pending_lists(ctx):
    """Searches read a GIN index's pending list in full each time: a pass that wrote rows moves
    them into the index proper."""
    for n in range(5):
        await ctx.rows.asset(ALICE, [f"增值税电子普通发票 蜜雪冰城 No.{n}"])
    assert await ctx.sync() == 5
    pending = await ctx.pool.fetchrow(
        "SELECT gin_clean_pending_list('aio.ocr_index_owner_words'::regclass) AS words,"
        " gin_clean_pending_list('aio.ocr_index_owner_grams'::regclass) AS grams"
    )
    assert dict(pending) == {"words": 0, "grams": 0}


async def test_a_fragment_the_statistics_call_rare_skips_the_newest_rows(ctx, monkeypatch):
    """After ANALYZE, a name whose rarest pair is too rare to fill a page from the newest rows
    goes straight to the grams' index; a single character, which no pair bounds, does not."""
    monkeypatch.setattr(query_module, "RECENT_WINDOW", 10)
    walks = []
    walk = sql_module.recent_literal_matches
    monkeypatch.setattr(sql_module, "recent_literal_matches", lambda *args: walks.append(args) or walk(*args))
    shop = await ctx.rows.asset(ALICE, ["蜜雪冰城"], taken=day(0))
    invoices = [await ctx.rows.asset(ALICE, [f"发票 {n}"], taken=day(n)) for n in range(1, 41)]
    await ctx.sync()
    await ctx.pool.execute("ANALYZE aio.ocr_index")
    assert await ctx.find("蜜雪冰城") == [shop] and walks == []
    assert await ctx.find_page("票", size=3, page=1) == invoices[:-4:-1] and len(walks) == 1


async def test_a_partner_match_older_than_the_newest_rows_keeps_its_place(ctx, monkeypatch):
    """Alice sees Bob's photos in her timeline. Her own newest rows hold no match, but her third
    newest photo does, and it is newer than Bob's matches: it comes first."""
    monkeypatch.setattr(query_module, "RECENT_WINDOW", 2)
    await ctx.rows.partner(BOB, ALICE, True)
    await ctx.rows.asset(ALICE, ["发票"], taken=day(30))
    await ctx.rows.asset(ALICE, ["收据"], taken=day(29))
    hers = await ctx.rows.asset(ALICE, ["小猫"], taken=day(20))
    his = [await ctx.rows.asset(BOB, ["猫粮"], taken=day(n)) for n in (10, 9)]
    await ctx.sync()
    assert await ctx.find_page("猫", size=2, page=1) == [hers, his[0]]
    assert await ctx.find("猫") == [hers, *his]


async def test_a_compound_query_finds_its_parts_written_apart(ctx):
    apart = await ctx.rows.asset(ALICE, ["电子 普通 发票"])
    together = await ctx.rows.asset(ALICE, ["增值税电子普通发票"])
    await ctx.rows.asset(ALICE, ["电子 产品"])
    await ctx.sync()
    assert set(await ctx.find("电子发票")) == {apart, together}
    assert set(await ctx.find("普通发票")) == {apart, together}


async def test_time_words_and_numbers_are_words_too(ctx):
    note = await ctx.rows.asset(ALICE, ["今天下午三点 会议室 B2", "第3季度 合计 128 元"])
    await ctx.sync()
    for query in ("今天", "会议室", "b2", "128", "合计"):
        assert await ctx.find(query) == [note], query


async def test_more_mentions_rank_higher_and_all_words_must_match(ctx):
    once = await ctx.rows.asset(ALICE, ["发票"])
    thrice = await ctx.rows.asset(ALICE, ["发票 发票", "发票"])
    both = await ctx.rows.asset(ALICE, ["电子 发票"])
    await ctx.rows.asset(ALICE, ["电子 产品"])
    await ctx.sync()
    hits = await ctx.find("发票")
    assert hits[0] == thrice and set(hits) == {once, thrice, both}
    assert await ctx.find("电子 发票") == [both]


async def test_newest_first_between_equal_ranks_and_a_date_edited_in_immich(ctx):
    now = datetime.now(timezone.utc)
    old = await ctx.rows.asset(ALICE, ["发票"], taken=now - timedelta(days=30))
    new = await ctx.rows.asset(ALICE, ["发票"], taken=now)
    trashed = await ctx.rows.asset(ALICE, ["发票"], taken=now + timedelta(days=1))
    await ctx.sync()
    await ctx.pool.execute('UPDATE asset SET "deletedAt" = now() WHERE id = $1', trashed)
    assert await ctx.find("发票") == [new, old]
    facts = ctx.db.facts
    assert facts is not None
    query = await ctx.index.query.parse(ctx.pool, "发票")
    second_page = await ctx.index.query.search(ctx.pool, facts, query, SmartSearch(query="发票"), ALICE, 1, 1)
    assert second_page == [old]
    # Immich's date edit touches no OCR feed: the order follows at the next reconcile.
    await ctx.pool.execute('UPDATE asset SET "fileCreatedAt" = $2 WHERE id = $1', old, now + timedelta(days=2))
    assert await ctx.index.passes.reconcile(ctx.pool, facts) == 1
    assert await ctx.find("发票") == [old, new]


async def test_script_and_width_do_not_matter(ctx):
    traditional = await ctx.rows.asset(ALICE, ["統一發票", "停車場"])
    wide = await ctx.rows.asset(ALICE, ["ＩＮＶＯＩＣＥ Ｎｏ．１２３"])
    await ctx.sync()
    assert await ctx.find("发票") == [traditional]
    assert await ctx.find("停车场") == [traditional]
    assert await ctx.find("發票") == [traditional]
    assert await ctx.find("invoice") == [wide]
    assert await ctx.find("123") == [wide]


async def test_owners_partners_trash_and_each_releases_default_visibility(ctx, release):
    mine = await ctx.rows.asset(ALICE, ["发票 mine"])
    bobs = await ctx.rows.asset(BOB, ["发票 bobs"])
    carols_partner = str(uuid.uuid4())
    carols = await ctx.rows.asset(carols_partner, ["发票 carols"])
    await ctx.rows.partner(BOB, ALICE, in_timeline=True)
    await ctx.rows.partner(carols_partner, ALICE, in_timeline=False)
    trashed = await ctx.rows.asset(ALICE, ["发票 trashed"], deleted=True)
    archived = await ctx.rows.asset(ALICE, ["发票 archived"], visibility="archive")
    hidden = await ctx.rows.asset(ALICE, ["发票 hidden"], visibility="hidden")
    locked = await ctx.rows.asset(ALICE, ["发票 locked"], visibility="locked")
    bobs_locked = await ctx.rows.asset(BOB, ["发票 bobs locked"], visibility="locked")
    video = await ctx.rows.asset(ALICE, ["发票 video"], type="VIDEO", favorite=True)
    await ctx.sync()
    found = set(await ctx.find("发票"))
    # 2.x searches the timeline by default; 3.x everything but locked.
    default = {mine, bobs, video} | ({archived, hidden} if release == "3.2" else set())
    assert found == default and carols not in found
    assert set(await ctx.find("发票", withDeleted=True)) == default | {trashed}
    assert await ctx.find("发票", visibility="archive") == [archived]
    # 3.0.3+: a locked search covers only the caller's own assets.
    assert set(await ctx.find("发票", visibility="locked")) == ({locked} if release == "3.2" else {locked, bobs_locked})
    assert await ctx.find("发票", type="VIDEO") == [video]
    assert await ctx.find("发票", isFavorite=True) == [video]
    assert await ctx.find("发票", user=BOB) == [bobs]


async def test_the_filter_tree_of_immich_3_2(ctx, release):
    now = datetime.now(timezone.utc)
    old = await ctx.rows.asset(ALICE, ["发票 old"], taken=now - timedelta(days=400))
    new = await ctx.rows.asset(ALICE, ["发票 new"], taken=now)
    video = await ctx.rows.asset(ALICE, ["发票 video"], type="VIDEO")
    archived = await ctx.rows.asset(
        ALICE, ["发票 archived"], visibility="archive", favorite=True, taken=now - timedelta(days=800)
    )
    trashed = await ctx.rows.asset(ALICE, ["发票 trashed"], deleted=True)
    await ctx.sync()
    by_default = {archived} if release == "3.2" else set()  # 3.x's default visibility includes archive
    year_ago = (now - timedelta(days=365)).isoformat()
    assert set(await ctx.find("发票", filter={"takenAt": {"gte": year_ago}})) == {new, video}
    assert await ctx.find("发票", filter={"type": {"eq": "VIDEO"}}) == [video]
    assert set(await ctx.find("发票", filter={"type": {"notIn": ["VIDEO"]}})) == {old, new} | by_default
    assert await ctx.find("发票", filter={"visibility": {"in": ["archive"]}}) == [archived]
    assert await ctx.find("发票", filter={"isFavorite": {"eq": True}, "visibility": {"ne": "locked"}}) == [archived]
    assert await ctx.find("发票", filter={"trashedAt": {"ne": None}}) == [trashed]
    assert await ctx.find("发票", filter={"id": {"eq": old}}) == [old]
    either = {"or": [{"type": {"eq": "VIDEO"}}, {"takenAt": {"lt": year_ago}}]}
    assert set(await ctx.find("发票", filter=either)) == {video, old} | by_default
    # The flat fields and the tree both hold.
    assert set(await ctx.find("发票", type="IMAGE", filter=either)) == {old} | by_default
    assert await ctx.find("发票", filter={"createdAt": {"lt": (now - timedelta(days=1)).isoformat()}}) == []


async def test_re_ocr_replaces_the_text_and_deleted_assets_vanish(ctx, release):
    asset = await ctx.rows.asset(ALICE, ["发票"])
    gone = await ctx.rows.asset(ALICE, ["发票 gone"])
    await ctx.sync()
    await ctx.rows.ocr(asset, ["咖啡"])
    if release < "3":  # 2.x has no indexed feed: searches see what the background pass found
        assert await ctx.index.passes.catch_up(ctx.pool, ctx.db.facts, 100) == 0
        assert await ctx.find("咖啡") == []
        assert await ctx.sync() == 1
    else:
        assert await ctx.index.passes.catch_up(ctx.pool, ctx.db.facts, 100) == 1
    assert await ctx.find("发票") == [gone]
    assert await ctx.find("咖啡") == [asset]
    await ctx.rows.delete(gone)
    assert await ctx.find("发票") == []
    assert await ctx.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 1


async def test_text_a_crop_hid_is_not_found(ctx, release):
    if release < "2.5":
        pytest.skip("asset_ocr.isVisible exists from Immich 2.5: a 2.2 crop hides no text")
    sign = await ctx.rows.asset(ALICE, ["咖啡", "发票"])
    await ctx.sync()
    await ctx.rows.crop_out(sign, ["发票"])  # no change feed marks a crop: the reconcile finds it
    assert await ctx.index.passes.reconcile(ctx.pool, ctx.db.facts) == 1
    assert await ctx.find("发票") == [] and await ctx.find("咖啡") == [sign]
    assert await ctx.index.passes.reconcile(ctx.pool, ctx.db.facts) == 0


async def test_an_edit_in_immichs_editor_is_followed_by_the_next_sync(ctx, release, monkeypatch):
    if release < "2.5":
        pytest.skip("asset_ocr.isVisible exists from Immich 2.5: a 2.2 crop hides no text")
    # No re-read of the last minute: only a feed that shows the edit finds it.
    monkeypatch.setattr(feeds_module, "LAG", timedelta(0))
    sign = await ctx.rows.asset(ALICE, ["咖啡", "发票"])
    await ctx.rows.asset(ALICE, ["菜单"])  # the feeds' watermarks move past the sign
    assert await ctx.sync() == 2
    await ctx.rows.edit(sign, ["crop"], hidden=("发票",))  # a crop that cuts 发票 out
    assert await ctx.sync() == 1
    assert await ctx.find("发票") == [] and await ctx.find("咖啡") == [sign]
    await ctx.rows.edit(sign, [])  # the edit removed
    assert await ctx.sync() == 1
    assert await ctx.find("发票") == [sign]
    assert await ctx.sync() == 0


async def test_sync_is_idempotent_and_repairs_a_crash(ctx, monkeypatch, release):
    assets = [await ctx.rows.asset(ALICE, [f"发票 第{i}张"]) for i in range(30)]
    # A batch is 3 assets; 3.x's feed of OCR lines reads 4 lines per asset of a batch.
    first_batch = 3 * (4 if release >= "3" else 1)
    calls = 0
    real = ctx.index.passes._apply

    async def crash_in_the_second_batch(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("killed mid-sync")
        return await real(*args, **kwargs)

    monkeypatch.setattr(ctx.index.passes, "_apply", crash_in_the_second_batch)
    with pytest.raises(ConnectionResetError):
        await ctx.sync()
    # The long pass applies its batches on two lanes: the other lane's part may have committed.
    kept = await ctx.pool.fetchval("SELECT count(*) FROM aio.ocr_index")
    assert first_batch <= kept < 30
    monkeypatch.undo()
    assert await ctx.sync() == 30 - kept  # the rest, and nothing twice
    assert await ctx.sync() == 0
    assert set(await ctx.find("发票")) == set(assets)


async def test_switching_the_tokenizer_rebuilds_the_index(ctx, tokenizer):
    await ctx.rows.asset(ALICE, ["发票"])
    await ctx.sync()
    meta = dict(
        await ctx.pool.fetch("SELECT key, value FROM aio.meta WHERE key IN ('tokenizer', 'folding', 'splitting')")
    )
    assert meta == {"tokenizer": tokenizer, "folding": FOLDING, "splitting": SPLITTING[tokenizer]}
    await ctx.index.passes.prepare(ctx.pool)  # built the same way: kept
    assert await ctx.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 1
    other = "jieba" if tokenizer == "zhparser" else "zhparser"
    await aio_schema.set_meta(ctx.pool, "tokenizer", other)
    await ctx.index.passes.prepare(ctx.pool)  # another tokenizer built it: rebuilt from scratch
    assert await ctx.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 0
    assert await ctx.sync() == 1 and len(await ctx.find("发票")) == 1
    await aio_schema.set_meta(ctx.pool, "folding", "none")
    await ctx.index.passes.prepare(ctx.pool)  # another folding: rebuilt too
    assert await ctx.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == 0


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
async def test_any_text_is_safe(ctx, text):
    invoice = await ctx.rows.asset(ALICE, ["发票"])
    await ctx.sync()
    hits = await ctx.find(text)
    assert hits == ([invoice] if "发票" in text else [])
    assert await ctx.pool.fetchval("SELECT count(*) FROM asset") == 1


@pytest.mark.parametrize("release", ["3.2"])
async def test_a_search_catch_up_reads_only_when_a_feed_moved(ctx):
    facts = ctx.db.facts
    assert facts is not None
    first = await ctx.rows.asset(ALICE, ["发票"])
    await ctx.sync()
    # A difference no feed shows, inside the minute a background pass re-reads: the catch-up
    # leaves it (nothing moved), the background pass repairs it.
    await ctx.pool.execute("UPDATE aio.ocr_index SET text = 'stale' WHERE asset_id = $1", first)
    assert await ctx.index.passes.catch_up(ctx.pool, facts, 100) == 0
    second = await ctx.rows.asset(ALICE, ["新发票"])
    assert await ctx.index.passes.catch_up(ctx.pool, facts, 100) == 2
    assert set(await ctx.find("发票")) == {first, second}
    await ctx.rows.ocr(second, [])  # a re-OCR that finds no text: the audit feed moves
    assert await ctx.index.passes.catch_up(ctx.pool, facts, 100) == 1
    assert await ctx.find("发票") == [first]


async def test_the_index_migration_keeps_the_rows_and_adds_their_taken_time(ctx):
    taken = datetime(2020, 5, 1, tzinfo=timezone.utc)
    asset = await ctx.rows.asset(ALICE, ["电子 发票"], taken=taken)
    await ctx.sync()
    async with ctx.pool.acquire() as conn:  # back to the schema of the release before
        await conn.execute(
            "DROP INDEX aio.ocr_index_owner_grams; DROP INDEX aio.ocr_index_owner_taken;"
            "ALTER TABLE aio.ocr_index DROP COLUMN grams;"
            "DROP INDEX aio.ocr_index_owner_words; ALTER TABLE aio.ocr_index DROP COLUMN taken;"
            "DROP EXTENSION btree_gin; CREATE INDEX ocr_index_words ON aio.ocr_index USING gin (words);"
            "CREATE INDEX ocr_index_owner ON aio.ocr_index (owner_id)"
        )
        await aio_schema.set_meta(conn, "schema_version", "4")
        await aio_schema.migrate(conn)
        assert await conn.fetchval("SELECT taken FROM aio.ocr_index WHERE asset_id = $1", uuid.UUID(asset)) == taken
    await ctx.index.passes.prepare(ctx.pool)  # built the same way: kept
    assert await ctx.find("发票") == [asset]


async def test_lag_is_how_long_the_oldest_unread_change_has_waited(ctx):
    facts = ctx.db.facts
    await ctx.rows.asset(ALICE, ["发票"])
    await asyncio.sleep(1.1)
    assert await ctx.index.passes.lag_seconds(ctx.pool, facts) >= 1.0  # never read yet
    await ctx.sync()
    assert await ctx.index.passes.lag_seconds(ctx.pool, facts) == 0
    await ctx.rows.asset(ALICE, ["新发票"])
    await asyncio.sleep(1.1)
    assert 1.0 <= await ctx.index.passes.lag_seconds(ctx.pool, facts) < 30
    await ctx.sync()
    assert await ctx.index.passes.lag_seconds(ctx.pool, facts) == 0


async def test_a_connection_left_mid_protocol_is_dropped_like_a_lost_one(ctx, release):
    """asyncpg can hand back to its pool a connection an interrupted operation left mid-protocol
    (seen while Immich migrated on a loaded machine): the feature answers 503, the pool goes, and
    the next reconnection serves again, as after a lost connection."""
    with pytest.raises(Unavailable, match="OCR index sync is unavailable"):
        async with ctx.db.use("OCR index sync"):
            raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    assert not ctx.db.up and ctx.db.pool is None
    await ctx.db.ensure()
    await ImmichRows(ctx.pool, release).asset(ALICE, ["发票"])
    assert await ctx.sync() == 1
