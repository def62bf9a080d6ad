"""Re-processing one asset's OCR or CLIP result through Immich's jobs: route, tag loop, CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.helpers import serve
from tests.immich_db import ReprocessRows, immich_world

OWNER, OTHER, ADMIN = (str(uuid.uuid4()) for _ in range(3))
KEYS = {OWNER: "owner-key", OTHER: "other-key", ADMIN: "admin-key"}
START = {"command": "start", "force": False}


@pytest.fixture
async def world():
    async with immich_world(KEYS, admins=(ADMIN,), rows=ReprocessRows) as world:
        yield world


def settings_for(name: str, immich_url: str, **overrides) -> Settings:
    values = {
        "db_hostname": "127.0.0.1",
        "db_database_name": name,
        "db_password": "",
        "immich_server_url": immich_url,
        "immich_admin_api_key": KEYS[ADMIN],
        "sync_interval": 0.2,
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def gateway(name: str, immich_url: str, **overrides):
    with serve(create_app(settings_for(name, immich_url, **overrides))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


async def photo(rows: ReprocessRows) -> str:
    asset = await rows.asset(OWNER, ["发票"])
    await rows.embed(asset)
    return asset


def reprocess(client, asset: str, key: str = KEYS[OWNER], **body):
    return client.post(f"/api/ai/assets/{asset}/reprocess", json=body or None, headers={"x-api-key": key})


async def until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_the_owner_resets_both_results_and_the_queues_start_once(world):
    name, rows, immich, immich_url = world
    asset = await photo(rows)
    untouched = await photo(rows)
    async with gateway(name, immich_url) as client:
        response = await reprocess(client, asset)
    assert response.status_code == 202
    assert response.json() == {"assetId": asset, "queued": ["ocr", "smartSearch"]}
    assert await rows.state(asset) == {"ocr": False, "clip": False, "tags": 0}
    assert await rows.state(untouched) == {"ocr": True, "clip": True, "tags": 0}
    assert immich.jobs == [("ocr", START, ADMIN), ("smartSearch", START, ADMIN)]
    assert await rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == 0


async def test_one_result_only(world):
    name, rows, immich, immich_url = world
    asset = await photo(rows)
    async with gateway(name, immich_url) as client:
        response = await reprocess(client, asset, ocr=False, clip=True)
        nothing = await reprocess(client, asset, ocr=False, clip=False)
    assert response.json()["queued"] == ["smartSearch"] and [j[0] for j in immich.jobs] == ["smartSearch"]
    assert await rows.state(asset) == {"ocr": True, "clip": False, "tags": 0}
    assert nothing.status_code == 422


async def test_permissions(world):
    name, rows, immich, immich_url = world
    asset = await photo(rows)
    async with gateway(name, immich_url) as client:
        foreign = await reprocess(client, asset, key=KEYS[OTHER])
        unknown = await reprocess(client, str(uuid.uuid4()))
        garbage = await reprocess(client, "not-a-uuid")
        anonymous = await reprocess(client, asset, key="nope")
        assert (foreign.status_code, unknown.status_code, garbage.status_code) == (404, 404, 404)
        assert anonymous.status_code == 401
        assert immich.jobs == [] and await rows.state(asset) == {"ocr": True, "clip": True, "tags": 0}
        admin = await reprocess(client, asset, key=KEYS[ADMIN])
    assert admin.status_code == 202 and await rows.state(asset) == {"ocr": False, "clip": False, "tags": 0}


async def test_without_an_admin_key_it_says_so(world):
    name, rows, _, immich_url = world
    asset = await photo(rows)
    async with gateway(name, immich_url, immich_admin_api_key="") as client:
        response = await reprocess(client, asset)
    assert response.status_code == 503 and "IMMICH_ADMIN_API_KEY" in response.json()["detail"]


async def test_a_crash_between_reset_and_queue_is_repaired(world):
    name, rows, immich, immich_url = world
    asset = await photo(rows)
    immich.jobs_status = 500  # Immich cannot start jobs: the reset is done, the queue is not
    async with gateway(name, immich_url, sync_interval=0.3) as client:
        failed = await reprocess(client, asset)
        assert failed.status_code == 502 and "ocr queue" in failed.json()["detail"]
        assert await rows.state(asset) == {"ocr": False, "clip": False, "tags": 0}
        assert await rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == 2
        immich.jobs_status = 200
        await until(lambda: _pending_is(rows, 0))
    assert sorted(j[0] for j in immich.jobs) == ["ocr", "smartSearch"]


async def test_tagged_photos_are_reprocessed_then_untagged(world):
    name, rows, immich, immich_url = world
    tagged = [await photo(rows), await photo(rows)]
    other = await photo(rows)
    await rows.tag(OWNER, "AI/Reprocess", tagged)
    await rows.tag(OWNER, "Holiday", [other])
    immich.jobs_status = 500
    async with gateway(name, immich_url, sync_interval=0.2):
        await asyncio.sleep(1.0)
        # Queuing failed: the photos are reset but keep their tag.
        assert await rows.state(tagged[0]) == {"ocr": False, "clip": False, "tags": 1}
        immich.jobs_status = 200
        await until(lambda: _untagged(rows, tagged))
    for asset in tagged:
        assert await rows.state(asset) == {"ocr": False, "clip": False, "tags": 0}
    assert await rows.state(other) == {"ocr": True, "clip": True, "tags": 1}
    assert {j[0] for j in immich.jobs} == {"ocr", "smartSearch"}


async def test_command_line(world):
    name, rows, _, immich_url = world
    asset = await photo(rows)
    await rows.asset(OWNER)  # never OCR'd
    env = {
        **os.environ,
        "DB_HOSTNAME": "127.0.0.1",
        "DB_DATABASE_NAME": name,
        "DB_PASSWORD": "",
        "IMMICH_SERVER_URL": immich_url,
        "IMMICH_ADMIN_API_KEY": KEYS[ADMIN],
    }
    run = [sys.executable, "-m", "gateway", "reprocess"]
    one = await asyncio.to_thread(subprocess.run, [*run, asset, "--ocr"], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    assert "1 assets reset; queues started: ocr" in one.stdout
    assert await rows.state(asset) == {"ocr": False, "clip": True, "tags": 0}
    every = await asyncio.to_thread(subprocess.run, [*run, "--all-missing"], env=env, capture_output=True, text=True)
    assert every.returncode == 0, every.stderr
    assert "ocr: 2 assets without a result queued" in every.stdout
    assert "smartSearch: 1 assets without a result queued" in every.stdout
    usage = await asyncio.to_thread(subprocess.run, run, env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "--all-missing" in usage.stderr


async def _pending_is(rows: ReprocessRows, count: int) -> bool:
    return await rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == count


async def _untagged(rows: ReprocessRows, assets: list[str]) -> bool:
    return [(await rows.state(a))["tags"] for a in assets] == [0] * len(assets)
