"""`ocr:` and mixed search through the gateway over real HTTP, with a real PostgreSQL holding each
Immich release's tables, each tokenizer, and a stand-in Immich API of that release."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import pytest

from aio_common.errors import Answered
from gateway.app import create_app
from gateway.immich.api import Caller
from gateway.immich.dto import SmartSearch
from gateway.parts import Parts
from gateway.settings import Settings
from testing.immich_db import DIMENSION, World, immich_world
from testing.servers import free_port, serve
from testing.standins import Behaviour, fake_ai
from tests.conftest import needs_pgvector

ALICE, BOB, EVE = (str(uuid.uuid4()) for _ in range(3))
KEYS = {ALICE: "alice-key", BOB: "bob-key", EVE: "eve-key"}
SDK = Path(__file__).parent / "sdk"


@pytest.fixture
async def world(release):
    async with immich_world(release, KEYS) as world:
        yield world


def settings_for(database: str | None, immich_url: str, **settings) -> Settings:
    values = {
        "db_hostname": "127.0.0.1",
        "db_database_name": database or "none",
        "db_port": 5432 if database else free_port(),
        "db_password": "",
        "immich_server_url": immich_url,
        "mt_photos_api": "http://127.0.0.1:9",
        "immich_api": "http://127.0.0.1:9",
        "connect_timeout": 1.0,
        "sync_interval": 0.2,
        **settings,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def gateway(database: str | None, immich_url: str, **settings):
    """The gateway, once its index is ready (when it has a database)."""
    with serve(create_app(settings_for(database, immich_url, **settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            if database:
                await until_ready(client)
            yield client


async def until_ready(client: httpx.AsyncClient, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (await client.get("/health")).json()["ocrSearch"]["caughtUp"]:
        assert asyncio.get_running_loop().time() < deadline, (await client.get("/health")).json()
        await asyncio.sleep(0.05)


async def add(world: World, owner: str, lines: list[str], **kwargs) -> str:
    asset_id = await world.rows.asset(owner, lines, **kwargs)
    world.immich.owners[asset_id] = owner
    return asset_id


def search(client, query, key=KEYS[ALICE], **dto):
    return client.post("/api/search/smart", json={"query": query, **dto}, headers={"x-api-key": key})


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["assets"]["items"]]


async def test_ocr_search_answers_immichs_search_response(world, tokenizer):
    invoice = await add(world, ALICE, ["增值税电子普通发票", "发票代码 011002"])
    await add(world, ALICE, ["咖啡"])
    async with gateway(world.database, world.url, ocr_tokenizer=tokenizer) as client:
        response = await search(client, "ocr:发票")
        assert response.status_code == 200
        body = response.json()
        assert body["albums"] == {"total": 0, "count": 0, "items": [], "facets": []}
        assert body["assets"]["count"] == body["assets"]["total"] == 1
        assert body["assets"]["nextPage"] is None and body["assets"]["nextCursor"] is None
        assert ids(response) == [invoice] and body["assets"]["items"][0]["originalFileName"]
        for spelled in ("OCR:发票", "  ocr : 发票 ", "Ocr:發票"):
            assert ids(await search(client, spelled)) == [invoice]
        health = (await client.get("/health")).json()
        assert health["ocrSearch"] == {
            "available": True,
            "caughtUp": True,
            "tokenizer": tokenizer,
            "ocrField": True,
            "error": None,
        }
        assert health["immich"]["version"].startswith(world.release)
        # A photo Immich OCRs now is found by the very next search on 3.x (catch-up before
        # searching), within SYNC_INTERVAL on 2.x (the background pass).
        fresh = await add(world, ALICE, ["新发票"])
        for _ in range(1 if world.release >= "3" else 50):
            found = set(ids(await search(client, "ocr:发票")))
            if found == {invoice, fresh}:
                break
            await asyncio.sleep(0.1)
        assert found == {invoice, fresh}


async def test_the_search_core_runs_without_a_web_server(world):
    """The README's `python -c` use: the gateway's parts and its search core, no app, no HTTP
    server of ours; the caller is still checked by Immich and sees only what Immich lets them."""
    invoice = await add(world, ALICE, ["增值税电子普通发票"])
    await add(world, EVE, ["发票 eve"])
    parts = Parts(settings_for(world.database, world.url))
    try:
        await parts.db.ensure()
        await parts.index_keeper.sync_step()
        found = await parts.search.ocr_words(Caller.api_key(KEYS[ALICE]), SmartSearch(query="发票"))
        assert [item["id"] for item in found.items] == [invoice] and found.next_page is None
        assert found.answer()["assets"]["items"] == found.items
        with pytest.raises(Answered) as refused:
            await parts.search.ocr_words(Caller.api_key("wrong"), SmartSearch(query="发票"))
        assert refused.value.status == 401
    finally:
        await parts.close()


async def test_every_credential_form_immich_accepts(world):
    shared = await add(world, BOB, ["发票 bob"])
    key = KEYS[BOB]
    forms = [
        {"headers": {"x-api-key": key}},
        {"headers": {"cookie": f"immich_access_token={key}"}},
        {"headers": {"authorization": f"Bearer {key}"}},
        {"headers": {"x-immich-user-token": key}},  # mobile apps up to 2.5
        {"headers": {"x-immich-session-token": key}},
        {"params": {"apiKey": key}},
        {"params": {"sessionKey": key}},
    ]
    async with gateway(world.database, world.url) as client:
        for form in forms:
            response = await client.post("/api/search/smart", json={"query": "ocr:发票"}, **form)
            assert response.status_code == 200, form
            assert ids(response) == [shared], form


async def test_permissions_come_from_immich(world):
    mine = await add(world, ALICE, ["发票 alice"])
    shared = await add(world, BOB, ["发票 bob"])
    eves = await add(world, EVE, ["发票 eve"])
    await world.rows.partner(BOB, ALICE, in_timeline=True)
    world.immich.partners.add((BOB, ALICE))
    async with gateway(world.database, world.url) as client:
        assert set(ids(await search(client, "ocr:发票"))) == {mine, shared}
        assert ids(await search(client, "ocr:发票", key=KEYS[EVE])) == [eves]
        # An asset Immich refuses for the caller is left out even if the index had it.
        world.immich.owners[mine] = EVE
        assert ids(await search(client, "ocr:发票")) == [shared]


async def test_an_anonymous_search_is_refused_before_anything_is_written(world):
    await add(world, ALICE, ["发票"])
    async with gateway(world.database, world.url, sync_interval=3600) as client:
        await add(world, ALICE, ["新发票"])  # not indexed yet: the loop waits an hour
        before = await world.rows.pool.fetchval("SELECT count(*) FROM aio.ocr_index")
        wrong = await search(client, "ocr:发票", key="wrong")
        anonymous = await client.post("/api/search/smart", json={"query": "ocr:发票"})
        assert wrong.status_code == anonymous.status_code == 401
        assert wrong.json()["message"] == "Authentication required"
        assert await world.rows.pool.fetchval("SELECT count(*) FROM aio.ocr_index") == before == 1
        # The caller is known: caught up first (3.x; a 2.x search sees the last background pass).
        assert len(ids(await search(client, "ocr:发票"))) == (2 if world.release >= "3" else 1)


async def test_paging_filters_and_bad_requests(world):
    assets = {await add(world, ALICE, [f"发票 {i}"]) for i in range(5)}
    async with gateway(world.database, world.url) as client:
        pages = [await search(client, "ocr:发票", size=2, page=page) for page in (1, 2, 3)]
        assert [p.json()["assets"]["nextPage"] for p in pages] == ["2", "3", None]
        seen = [asset for page in pages for asset in ids(page)]
        assert len(seen) == 5 and set(seen) == assets
        assert ids(await search(client, "ocr:发票", type="VIDEO")) == []
        assert ids(await search(client, "ocr:发票", filter={"type": {"eq": "VIDEO"}})) == []
        empty = await search(client, "ocr:   ")
        assert empty.status_code == 400 and "ocr:" in empty.json()["detail"]
        # As far out as Immich lets a client page (JavaScript's exact integers): empty, not a failure.
        far = await search(client, "ocr:发票", page=2**53 - 1, size=1000)
        assert far.status_code == 200 and ids(far) == [] and far.json()["assets"]["nextPage"] is None
        for bad in ({"size": 0}, {"size": 1001}, {"page": 0}, {"page": 2**53}, {"filter": {"type": {"eq": "BOOK"}}}):
            refused = await search(client, "ocr:发票", **bad)
            assert refused.status_code == 400, bad
            assert refused.json()["detail"]
        punctuation = await search(client, "ocr:！？。")
        assert punctuation.status_code == 200 and ids(punctuation) == []
        hostile = await search(client, "ocr:发票'); DROP TABLE asset; -- & | !")
        assert hostile.status_code == 200
        nul = await search(client, "ocr:发票\x00")  # no PostgreSQL text holds a NUL
        assert nul.status_code == 200 and set(ids(nul)) == assets


async def test_filters_not_applied_are_named(world):
    await add(world, ALICE, ["发票"])
    async with gateway(world.database, world.url) as client:
        plain = await search(client, "ocr:发票")
        assert "x-immich-aio-unapplied" not in plain.headers
        filtered = await search(client, "ocr:发票", city="Beijing", filter={"albumIds": {"any": [str(uuid.uuid4())]}})
        assert filtered.status_code == 200
        assert filtered.headers["x-immich-aio-unapplied"] == "city,filter.albumIds"


@pytest.mark.skipif(
    shutil.which("node") is None or not (SDK / "node_modules").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/sdk` (Immich's own SDK as the client; .ci/run installs it)",
)
async def test_immichs_own_sdk_3_2_as_the_client(world):
    old = await add(world, ALICE, ["发票 2019"], type="VIDEO")
    new = await add(world, ALICE, ["发票 2026"])

    def sdk(url: str, dto: dict) -> dict:
        done = subprocess.run(
            ["node", str(SDK / "search.mjs"), f"{url}/api", KEYS[ALICE], json.dumps(dto)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return orjson.loads(done.stdout)

    async with gateway(world.database, world.url) as client:
        url = str(client.base_url)
        everything = await asyncio.to_thread(sdk, url, {"query": "ocr:发票"})
        images = await asyncio.to_thread(sdk, url, {"query": "ocr:发票", "filter": {"type": {"eq": "IMAGE"}}})
        either = {"or": [{"type": {"eq": "VIDEO"}}, {"isFavorite": {"eq": True}}]}
        videos = await asyncio.to_thread(sdk, url, {"query": "ocr:发票", "filter": either})
        refused = await asyncio.to_thread(sdk, url, {"query": "ocr:发票", "size": 5000})
    assert {item["id"] for item in everything["assets"]["items"]} == {old, new}
    assert [item["id"] for item in images["assets"]["items"]] == [new]
    assert [item["id"] for item in videos["assets"]["items"]] == [old]
    assert images["assets"]["nextCursor"] is None
    assert refused["status"] == 400 and "size" in refused["body"]["detail"]


async def test_other_searches_are_forwarded_unchanged(world):
    world.immich.clip_ranking = ["clip-1"]
    body = orjson.dumps({"query": "猫在沙发上", "page": 1, "withExif": True})
    headers = {"content-type": "application/json", "x-api-key": KEYS[ALICE], "cookie": "a=b"}
    async with gateway(world.database, world.url, mixed_search=False) as client:
        response = await client.post("/api/search/smart?lang=zh", content=body, headers=headers)
    assert response.status_code == 200 and ids(response) == ["clip-1"]
    assert response.headers["x-immich-answer"] == "yes"
    forwarded = world.immich.forwarded[0]
    assert forwarded["body"] == body and forwarded["query"] == "lang=zh"
    assert forwarded["headers"]["x-api-key"] == KEYS[ALICE] and forwarded["headers"]["cookie"] == "a=b"
    # A search by example image has no text: forwarded unchanged even with mixed search on.
    by_image = orjson.dumps({"queryAssetId": str(uuid.uuid4()), "size": 5})
    async with gateway(world.database, world.url) as client:
        response = await client.post("/api/search/smart", content=by_image, headers=headers)
    assert response.status_code == 200 and world.immich.forwarded[-1]["body"] == by_image


async def test_without_the_database_ocr_search_is_503_and_the_rest_works(world):
    world.immich.clip_ranking = ["clip-1", "clip-2"]
    async with gateway(None, world.url) as client:
        response = await search(client, "ocr:发票")
        assert response.status_code == 503 and "unreachable" in response.json()["detail"]
        plain = await search(client, "猫")
        assert plain.status_code == 200 and ids(plain) == ["clip-1", "clip-2"]
        # Immich's own ocr field: Immich's own matching answers, and the header says so.
        for route, body in (("metadata", {"ocr": "发票"}), ("smart", {"query": "x", "ocr": "发票"})):
            answer = await client.post(f"/api/search/{route}", json=body, headers={"x-api-key": KEYS[ALICE]})
            assert answer.headers["x-immich-answer"] == "yes", route
            assert answer.headers["x-immich-aio-degraded"] == "ocr-index-unavailable"
            assert orjson.loads(world.immich.forwarded[-1]["body"]) == body
        assert (await client.get("/ping")).text == "pong"
        health = (await client.get("/health")).json()["ocrSearch"]
        assert health["available"] is False and "unreachable" in health["error"]


async def test_plain_queries_fuse_clip_and_ocr(world):
    sign = await add(world, ALICE, ["星巴克咖啡", "STARBUCKS COFFEE"])
    menu = await add(world, ALICE, ["咖啡 拿铁 美式"])
    world.immich.clip_ranking = [f"clip-{i}" for i in range(150)] + [sign] + [f"clip-{i}" for i in range(150, 300)]
    async with gateway(world.database, world.url) as client:
        first = await search(client, "咖啡", size=10)
        assert first.status_code == 200
        assert sign in ids(first) and menu in ids(first)  # the first page, though CLIP ranks the sign 151st
        # The CLIP items come from Immich's own answer, the OCR-only ones fetched from Immich.
        by_id = {item["id"]: item for item in first.json()["assets"]["items"]}
        assert by_id["clip-0"]["originalFileName"] == "clip.jpg"
        assert by_id[menu]["originalFileName"] == f"{menu[:8]}.jpg"
        assert first.json()["assets"]["nextPage"] == "2" and first.json()["assets"]["nextCursor"] is None
        # clip: asks Immich alone, with the prefix stripped.
        clip_only = await search(client, "clip: 咖啡", size=10)
        assert ids(clip_only) == [f"clip-{i}" for i in range(10)]
        assert orjson.loads(world.immich.forwarded[-1]["body"])["query"] == "咖啡"
        # A filter the OCR ranking cannot apply: Immich's ranking alone, the request unchanged.
        in_album = await search(client, "咖啡", size=10, albumIds=[str(uuid.uuid4())])
        assert menu not in ids(in_album)
        assert orjson.loads(world.immich.forwarded[-1]["body"])["albumIds"]


async def test_a_mixed_search_whose_clip_half_fails_is_answered_by_its_ocr_half(world):
    sign = await add(world, ALICE, ["星巴克咖啡"])
    world.immich.clip_down = True  # Immich's ML server (the AI service) is down
    async with gateway(world.database, world.url) as client:
        mixed = await search(client, "咖啡")
        assert mixed.status_code == 200 and ids(mixed) == [sign]
        assert mixed.headers["x-immich-aio-degraded"] == "clip-unavailable"
        # clip: alone has nothing else to answer with: Immich's own failure, unchanged.
        clip_only = await search(client, "clip:咖啡")
        assert clip_only.status_code == 500 and clip_only.json()["message"] == "Failed to search smart"
        # Nothing found by OCR: an empty answer, which says the CLIP half was missing.
        nothing = await search(client, "不存在的词")
        assert nothing.status_code == 200 and ids(nothing) == []
        assert nothing.headers["x-immich-aio-degraded"] == "clip-unavailable"
        world.immich.clip_down = False
        healthy = await search(client, "咖啡")
        assert "x-immich-aio-degraded" not in healthy.headers


async def test_mixed_pages_are_consistent(world):
    ocr_hits = [await add(world, ALICE, [f"咖啡 {i}"]) for i in range(6)]
    world.immich.clip_ranking = [f"clip-{i}" for i in range(8)] + ocr_hits[3:5]
    expected = set(world.immich.clip_ranking) | set(ocr_hits)
    async with gateway(world.database, world.url) as client:
        pages = [await search(client, "咖啡", size=4, page=page) for page in (1, 2, 3, 4)]
    seen = [asset for page in pages for asset in ids(page)]
    assert len(seen) == len(set(seen)) == len(expected) == 14 and set(seen) == expected
    assert [p.json()["assets"]["nextPage"] for p in pages] == ["2", "3", "4", None]


async def test_mixed_depth_is_bounded(world):
    world.immich.clip_ranking = [f"clip-{i}" for i in range(30)]
    async with gateway(world.database, world.url, mixed_max_depth=10) as client:
        last = await search(client, "咖啡", size=5, page=2)
        beyond = await search(client, "咖啡", size=5, page=3)
    assert ids(last) == [f"clip-{i}" for i in range(5, 10)] and last.json()["assets"]["nextPage"] is None
    assert beyond.status_code == 400 and "MIXED_MAX_DEPTH" in beyond.json()["detail"]


async def test_mixed_off_and_refusals(world):
    await add(world, ALICE, ["咖啡"])
    world.immich.clip_ranking = ["clip-1"]
    async with gateway(world.database, world.url, mixed_search=False) as client:
        assert ids(await search(client, "咖啡")) == ["clip-1"]
    async with gateway(world.database, world.url) as client:
        refused = await search(client, "咖啡", key="wrong")
        assert refused.status_code == 401 and refused.json()["message"] == "Authentication required"


def metadata(client, dto, key=KEYS[ALICE]):
    return client.post("/api/search/metadata", json=dto, headers={"x-api-key": key})


async def test_immichs_own_ocr_search_type_is_answered_from_the_word_index(world, tokenizer):
    """The web app's OCR search: POST /api/search/metadata with `ocr`, as it sends it."""
    old = datetime(2024, 1, 1, tzinfo=timezone.utc)
    invoice = await add(world, ALICE, ["統一發票 中奖号码"], taken=old)  # traditional script
    receipt = await add(world, ALICE, ["电子发票"], taken=old + timedelta(days=30))
    wide = await add(world, ALICE, ["ＩＮＶＯＩＣＥ　２０２４"], taken=old + timedelta(days=60))  # full width
    await add(world, ALICE, ["研究生命起源"], taken=old + timedelta(days=90))  # 研究 / 生命 / 起源
    student = await add(world, ALICE, ["研究生招生简章"], taken=old + timedelta(days=120))
    partners = await add(world, BOB, ["发票 bob"], taken=old + timedelta(days=150))
    await add(world, EVE, ["发票 eve"])
    world.immich.partners.add((BOB, ALICE))
    await world.rows.partner(BOB, ALICE, in_timeline=True)
    web = {"ocr": "发票", "visibility": "timeline", "page": 1, "withExif": True}
    async with gateway(world.database, world.url, ocr_tokenizer=tokenizer) as client:
        newest_first = await metadata(client, web)
        assert newest_first.status_code == 200, newest_first.text
        # Folded scripts, the caller's and timeline partners' photos, newest taken first (Immich's order).
        assert ids(newest_first) == [partners, receipt, invoice]
        assert newest_first.json()["assets"]["nextPage"] is None
        assert ids(await metadata(client, {**web, "order": "asc"})) == [invoice, receipt, partners]
        tree = {"filter": {"ocr": {"matches": "发票"}, "visibility": {"eq": "timeline"}}}  # 3.2's filter tree
        assert ids(await metadata(client, tree)) == [partners, receipt, invoice]
        assert ids(await metadata(client, {**web, "ocr": "invoice"})) == [wide]  # any case, any width
        assert ids(await metadata(client, {**web, "ocr": "研究生"})) == [student]  # words, not characters
        # Immich's paging: page by number, nextPage while more follow.
        first = await metadata(client, {**web, "size": 2})
        second = await metadata(client, {**web, "size": 2, "page": 2})
        assert ids(first) + ids(second) == [partners, receipt, invoice]
        assert first.json()["assets"]["nextPage"] == "2" and second.json()["assets"]["nextPage"] is None
        # The index applies the filters both searches share; exifInfo only when asked for.
        dated = await metadata(client, {**web, "takenBefore": (old + timedelta(days=45)).isoformat()})
        assert ids(dated) == [receipt, invoice]
        plain = (await metadata(client, {"ocr": "发票"})).json()["assets"]["items"]
        assert all("exifInfo" in item for item in newest_first.json()["assets"]["items"])
        assert plain and all("exifInfo" not in item for item in plain)
        assert world.immich.forwarded == []
        refused = await metadata(client, web, key="wrong")
        assert refused.status_code == 401 and refused.json()["message"] == "Authentication required"


async def test_other_metadata_searches_go_to_immich_unchanged(world):
    await add(world, ALICE, ["发票"])
    async with gateway(world.database, world.url) as client:
        bodies = [
            {"ocr": "发票", "city": "Paris"},  # a filter the index does not apply
            {"ocr": "发票", "visibility": "locked"},  # Immich checks the elevated session
            {"originalFileName": "IMG_1.jpg"},  # no ocr at all
            {"ocr": "  "},
            {"ocr": "发票", "size": 0},  # Immich names the fault
        ]
        for body in bodies:
            answer = await metadata(client, body)
            # Immich's answer: its search result, or its own error (a size of 0 is its 400).
            assert answer.headers.get("x-immich-answer") == "yes" or answer.json()["statusCode"] == 400, body
            assert orjson.loads(world.immich.forwarded[-1]["body"]) == body
        raw = b"not json"
        answer = await client.post("/api/search/metadata", content=raw, headers={"x-api-key": KEYS[ALICE]})
        assert world.immich.forwarded[-1]["body"] == raw
    world.immich.forwarded.clear()
    async with gateway(world.database, world.url, ocr_field_search=False) as client:
        answer = await metadata(client, {"ocr": "发票"})
        assert answer.headers["x-immich-answer"] == "yes"
        assert orjson.loads(world.immich.forwarded[-1]["body"]) == {"ocr": "发票"}
        assert (await client.get("/health")).json()["ocrSearch"]["ocrField"] is False


# A CLIP model of the stand-in's dimension, as an operator declares one Immich's table lacks.
TEST_MODEL = "test-clip-4d"


@contextlib.asynccontextmanager
async def clip_gateway(world: World, **settings):
    """The gateway with a CLIP stand-in whose text vector is (0.5, 0.5, 0.5, 0.5), and Immich's
    CLIP model set to a name of that dimension."""
    ai = Behaviour(dimension=DIMENSION, model="RN50")
    await world.rows.configure({"machineLearning": {"clip": {"modelName": TEST_MODEL}}})
    with serve(fake_ai(ai)) as ai_url:
        extra = {"mt_photos_api": ai_url, "clip_extra_models": f"{TEST_MODEL}:{DIMENSION}"}
        async with gateway(world.database, world.url, **extra, **settings) as client:
            yield client, ai


def smart(client, dto, key=KEYS[ALICE]):
    return client.post("/api/search/smart", json=dto, headers={"x-api-key": key})


@needs_pgvector
async def test_smart_search_with_ocr_ranks_the_word_matches_by_clip(world, tokenizer):
    """Smart search with `ocr` (flat, and 3.2's filter.ocr): Immich's CLIP order (distance to the
    query's vector, then id) over the word index's matches, with Immich's filters and paging."""
    near = await add(world, ALICE, ["電子發票"])  # traditional script
    middle = await add(world, ALICE, ["发票 收据"])
    far = await add(world, BOB, ["ＦＡ票 发票"])  # a timeline partner's
    unembedded = await add(world, ALICE, ["发票"])  # no CLIP vector yet: Immich leaves it out
    await add(world, ALICE, ["发展票据"])  # 发 and 票 in other words
    await add(world, EVE, ["发票"])  # nobody shares with alice
    favourite = await add(world, ALICE, ["发票"], favorite=True)
    world.immich.partners.add((BOB, ALICE))
    await world.rows.partner(BOB, ALICE, in_timeline=True)
    # Cosine distance to (1, 1, 1, 1): favourite 0, near 0.13, middle 0.29, far 0.5.
    for asset, vector in [(favourite, [1, 1, 1, 1]), (near, [1, 1, 1, 0]), (middle, [1, 1, 0, 0]), (far, [1, 0, 0, 0])]:
        await world.rows.embed(asset, vector)
    await world.rows.embed(await add(world, ALICE, ["收据"]), [1, 1, 1, 1])  # closest, but no word match
    async with clip_gateway(world, ocr_tokenizer=tokenizer) as (client, ai):
        flat = await smart(client, {"query": "一张发票的照片", "ocr": "发票"})
        assert flat.status_code == 200, flat.text
        assert ids(flat) == [favourite, near, middle, far]
        assert ai.received[-1].text == "一张发票的照片"  # the query's vector, from the ML URL as Immich gets it
        assert ai.received[-1].entries == {"clip": {"textual": {"modelName": TEST_MODEL, "options": {}}}}
        tree = await smart(
            client, {"query": "发票", "filter": {"ocr": {"matches": "发票"}, "isFavorite": {"eq": False}}}
        )
        assert ids(tree) == [near, middle, far]
        assert ids(await smart(client, {"query": "x", "ocr": "发票", "isFavorite": True})) == [favourite]
        pages = [await smart(client, {"query": "x", "ocr": "发票", "size": 3, "page": n}) for n in (1, 2)]
        assert [ids(page) for page in pages] == [[favourite, near, middle], [far]]
        assert [page.json()["assets"]["nextPage"] for page in pages] == ["2", None]
        assert all("exifInfo" not in item for item in pages[0].json()["assets"]["items"])
        with_exif = await smart(client, {"query": "x", "ocr": "发票", "withExif": True})
        assert all("exifInfo" in item for item in with_exif.json()["assets"]["items"])
        # By example: the example asset's stored vector ranks (near's is (1, 1, 1, 0)).
        example = await smart(client, {"queryAssetId": near, "ocr": "发票"})
        assert ids(example) == [near, favourite, middle, far]
        assert ids(await smart(client, {"query": "x", "ocr": "研究生"})) == []
        assert unembedded not in ids(flat) and world.immich.forwarded == []
        refused = await smart(client, {"query": "x", "ocr": "发票"}, key="wrong")
        assert refused.status_code == 401 and refused.json()["message"] == "Authentication required"


@needs_pgvector
async def test_smart_search_with_ocr_goes_to_immich_where_immich_must_answer(world):
    asset = await add(world, ALICE, ["发票"])
    await world.rows.embed(asset)
    foreign = await add(world, EVE, ["发票"])
    await world.rows.embed(foreign)
    unembedded = await add(world, ALICE, ["发票"])
    async with clip_gateway(world) as (client, ai):
        bodies = [
            {"query": "x", "ocr": "发票", "city": "Paris"},  # a filter the index does not apply
            {"query": "x", "ocr": "发票", "visibility": "locked"},  # Immich checks the elevated session
            {"query": "x", "filter": {"or": [{"ocr": {"matches": "发票"}}, {"isFavorite": {"eq": True}}]}},
            {"ocr": "发票"},  # nothing to rank by: Immich's 400
            {"query": "x", "ocr": "发票", "size": 0},
            {"queryAssetId": foreign, "ocr": "发票"},  # an example the caller may not read
            {"queryAssetId": unembedded, "ocr": "发票"},  # an example without a vector
            {"query": "ocr:发票", "ocr": {}},  # not a string: Immich's 400
            {"query": "x", "filter": {"ocr": "发票"}},
        ]
        for body in bodies:
            answer = await smart(client, body)
            assert answer.headers.get("x-immich-answer") == "yes" or answer.json()["statusCode"] == 400, body
            assert orjson.loads(world.immich.forwarded[-1]["body"]) == body
        # Smart search turned off in Immich: Immich's own answer (its 400) is the one to give.
        await world.rows.configure({"machineLearning": {"clip": {"enabled": False, "modelName": TEST_MODEL}}})
        before = len(ai.received)
        await smart(client, {"query": "x", "ocr": "发票"})
        assert orjson.loads(world.immich.forwarded[-1]["body"]) == {"query": "x", "ocr": "发票"}
        assert len(ai.received) == before
        # Immich's CLIP model does not fit the served one: the guard refuses, Immich answers.
        await world.rows.configure({"machineLearning": {"clip": {"modelName": "ViT-B-32__openai"}}})
        await smart(client, {"query": "y", "ocr": "发票"})
        assert orjson.loads(world.immich.forwarded[-1]["body"]) == {"query": "y", "ocr": "发票"}
    world.immich.forwarded.clear()
    async with clip_gateway(world, ocr_field_search=False) as (client, _):
        await smart(client, {"query": "x", "ocr": "发票"})
        assert orjson.loads(world.immich.forwarded[-1]["body"]) == {"query": "x", "ocr": "发票"}
