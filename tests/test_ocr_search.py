"""`ocr:` search through the gateway over real HTTP, with a real PostgreSQL and a stand-in Immich."""

from __future__ import annotations

import contextlib
import uuid

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.helpers import free_port, serve
from tests.immich_db import ImmichRows, immich_world
from tests.standins import ImmichServer

ALICE, BOB, EVE = (str(uuid.uuid4()) for _ in range(3))
KEYS = {ALICE: "alice-key", BOB: "bob-key", EVE: "eve-key"}


@pytest.fixture
async def world():
    async with immich_world(KEYS) as world:
        yield world


@contextlib.asynccontextmanager
async def gateway(database: str | None, immich_url: str, **settings):
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
    with serve(create_app(Settings(**values))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


async def add(rows: ImmichRows, immich: ImmichServer, owner: str, lines: list[str], **kwargs) -> str:
    asset_id = await rows.asset(owner, lines, **kwargs)
    immich.owners[asset_id] = owner
    return asset_id


def search(client, query, key=KEYS[ALICE], **dto):
    return client.post("/api/search/smart", json={"query": query, **dto}, headers={"x-api-key": key})


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["assets"]["items"]]


async def test_ocr_search_answers_immichs_search_response(world):
    name, rows, immich, immich_url = world
    invoice = await add(rows, immich, ALICE, ["增值税电子普通发票", "发票代码 011002"])
    await add(rows, immich, ALICE, ["咖啡"])
    async with gateway(name, immich_url) as client:
        response = await search(client, "ocr:发票")
        assert response.status_code == 200
        body = response.json()
        assert body["albums"] == {"total": 0, "count": 0, "items": [], "facets": []}
        assert body["assets"]["count"] == body["assets"]["total"] == 1 and body["assets"]["nextPage"] is None
        assert ids(response) == [invoice] and body["assets"]["items"][0]["originalFileName"]
        for spelled in ("OCR:发票", "  ocr : 发票 ", "Ocr:发票"):
            assert ids(await search(client, spelled)) == [invoice]
        # A photo Immich OCRs now is found by the very next search (catch-up before searching).
        assert (await client.get("/health")).json()["ocrSearch"] == {
            "available": True,
            "tokenizer": "jieba",
            "error": None,
        }
        fresh = await add(rows, immich, ALICE, ["新发票"])
        assert set(ids(await search(client, "ocr:发票"))) == {invoice, fresh}


async def test_permissions_come_from_immich(world):
    name, rows, immich, immich_url = world
    mine = await add(rows, immich, ALICE, ["发票 alice"])
    shared = await add(rows, immich, BOB, ["发票 bob"])
    eves = await add(rows, immich, EVE, ["发票 eve"])
    await rows.partner(BOB, ALICE, in_timeline=True)
    immich.partners.add((BOB, ALICE))
    async with gateway(name, immich_url) as client:
        assert set(ids(await search(client, "ocr:发票"))) == {mine, shared}
        assert ids(await search(client, "ocr:发票", key=KEYS[EVE])) == [eves]
        cookie = await client.post(
            "/api/search/smart", json={"query": "ocr:发票"}, headers={"cookie": f"immich_access_token={KEYS[BOB]}"}
        )
        bearer = await client.post(
            "/api/search/smart", json={"query": "ocr:发票"}, headers={"authorization": f"Bearer {KEYS[BOB]}"}
        )
        assert ids(cookie) == ids(bearer) == [shared]
        # An asset Immich refuses for the caller is left out even if the index had it.
        immich.owners[mine] = EVE
        assert ids(await search(client, "ocr:发票")) == [shared]


async def test_auth_failures_are_passed_through(world):
    name, _, _, immich_url = world
    async with gateway(name, immich_url) as client:
        response = await search(client, "ocr:发票", key="wrong")
        assert response.status_code == 401 and response.json()["message"] == "Authentication required"
        anonymous = await client.post("/api/search/smart", json={"query": "ocr:发票"})
        assert anonymous.status_code == 401


async def test_paging_filters_and_bad_requests(world):
    name, rows, immich, immich_url = world
    assets = {await add(rows, immich, ALICE, [f"发票 {i}"]) for i in range(5)}
    async with gateway(name, immich_url) as client:
        pages = [await search(client, "ocr:发票", size=2, page=page) for page in (1, 2, 3)]
        assert [p.json()["assets"]["nextPage"] for p in pages] == ["2", "3", None]
        seen = [asset for page in pages for asset in ids(page)]
        assert len(seen) == 5 and set(seen) == assets
        assert ids(await search(client, "ocr:发票", type="VIDEO")) == []
        empty = await search(client, "ocr:   ")
        assert empty.status_code == 400 and "ocr:" in empty.json()["detail"]
        assert (await search(client, "ocr:发票", size=0)).status_code == 400
        assert (await search(client, "ocr:发票", size=1001)).status_code == 400
        punctuation = await search(client, "ocr:！？。")
        assert punctuation.status_code == 200 and ids(punctuation) == []
        hostile = await search(client, "ocr:发票'); DROP TABLE asset; -- & | !")
        assert hostile.status_code == 200


async def test_other_searches_are_forwarded_unchanged(world):
    name, _, immich, immich_url = world
    immich.clip_ranking = ["clip-1"]
    body = orjson.dumps({"query": "猫在沙发上", "page": 1, "withExif": True})
    headers = {"content-type": "application/json", "x-api-key": KEYS[ALICE], "cookie": "a=b"}
    async with gateway(name, immich_url, hybrid_search=False) as client:
        response = await client.post("/api/search/smart?lang=zh", content=body, headers=headers)
    assert response.status_code == 200 and ids(response) == ["clip-1"]
    assert response.headers["x-immich-answer"] == "yes"
    forwarded = immich.forwarded[0]
    assert forwarded["body"] == body and forwarded["query"] == "lang=zh"
    assert forwarded["headers"]["x-api-key"] == KEYS[ALICE] and forwarded["headers"]["cookie"] == "a=b"
    # A search by example image has no text: forwarded unchanged even with hybrid search on.
    by_image = orjson.dumps({"queryAssetId": str(uuid.uuid4()), "size": 5})
    async with gateway(name, immich_url) as client:
        response = await client.post("/api/search/smart", content=by_image, headers=headers)
    assert response.status_code == 200 and immich.forwarded[-1]["body"] == by_image


async def test_without_the_database_ocr_search_is_503_and_the_rest_works(world):
    _, _, immich, immich_url = world
    immich.clip_ranking = ["clip-1", "clip-2"]
    async with gateway(None, immich_url) as client:
        response = await search(client, "ocr:发票")
        assert response.status_code == 503 and "unreachable" in response.json()["detail"]
        plain = await search(client, "猫")
        assert plain.status_code == 200 and ids(plain) == ["clip-1", "clip-2"]
        assert (await client.get("/ping")).text == "pong"
        health = (await client.get("/health")).json()["ocrSearch"]
        assert health["available"] is False and "unreachable" in health["error"]


async def test_plain_queries_fuse_clip_and_ocr(world):
    name, rows, immich, immich_url = world
    sign = await add(rows, immich, ALICE, ["星巴克咖啡", "STARBUCKS COFFEE"])
    menu = await add(rows, immich, ALICE, ["咖啡 拿铁 美式"])
    immich.clip_ranking = [f"clip-{i}" for i in range(150)] + [sign] + [f"clip-{i}" for i in range(150, 300)]
    async with gateway(name, immich_url) as client:
        first = await search(client, "咖啡", size=10)
        assert first.status_code == 200
        assert sign in ids(first) and menu in ids(first)  # the first page, though CLIP ranks the sign 151st
        # The CLIP items come from Immich's own answer, the OCR-only ones fetched from Immich.
        by_id = {item["id"]: item for item in first.json()["assets"]["items"]}
        assert by_id["clip-0"]["originalFileName"] == "clip.jpg"
        assert by_id[menu]["originalFileName"] == f"{menu[:8]}.jpg"
        assert first.json()["assets"]["nextPage"] == "2"
        # clip: asks Immich alone, with the prefix stripped.
        clip_only = await search(client, "clip: 咖啡", size=10)
        assert ids(clip_only) == [f"clip-{i}" for i in range(10)]
        assert orjson.loads(immich.forwarded[-1]["body"])["query"] == "咖啡"


async def test_hybrid_pages_are_consistent(world):
    name, rows, immich, immich_url = world
    ocr_hits = [await add(rows, immich, ALICE, [f"咖啡 {i}"]) for i in range(6)]
    immich.clip_ranking = [f"clip-{i}" for i in range(8)] + ocr_hits[3:5]
    expected = set(immich.clip_ranking) | set(ocr_hits)
    async with gateway(name, immich_url) as client:
        pages = [await search(client, "咖啡", size=4, page=page) for page in (1, 2, 3, 4)]
    seen = [asset for page in pages for asset in ids(page)]
    assert len(seen) == len(set(seen)) == len(expected) == 14 and set(seen) == expected
    assert [p.json()["assets"]["nextPage"] for p in pages] == ["2", "3", "4", None]


async def test_hybrid_off_and_refusals(world):
    name, rows, immich, immich_url = world
    await add(rows, immich, ALICE, ["咖啡"])
    immich.clip_ranking = ["clip-1"]
    async with gateway(name, immich_url, hybrid_search=False) as client:
        assert ids(await search(client, "咖啡")) == ["clip-1"]
    async with gateway(name, immich_url) as client:
        refused = await search(client, "咖啡", key="wrong")
        assert refused.status_code == 401 and refused.json()["message"] == "Authentication required"
