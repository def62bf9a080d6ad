"""Re-processing one asset's OCR or CLIP result through Immich's jobs, against each release's
tables and API: route, queue starts, the tag loop with each release's tag columns, command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from gateway.app import create_app
from gateway.reprocess import cli
from gateway.settings import Settings
from testing.immich_db import World, immich_world
from testing.servers import serve
from testing.waiting import eventually

OWNER, OTHER, ADMIN = (str(uuid.uuid4()) for _ in range(3))
KEYS = {OWNER: "owner-key", OTHER: "other-key", ADMIN: "admin-key"}
START = {"command": "start", "force": False}


@pytest.fixture
async def world(release):
    async with immich_world(release, KEYS, admins=(ADMIN,)) as world:
        yield world


def settings_for(world: World, **overrides) -> Settings:
    values = {
        "db_hostname": "127.0.0.1",
        "db_database_name": world.database,
        "db_password": "",
        "immich_server_url": world.url,
        "immich_admin_api_key": KEYS[ADMIN],
        "mt_photos_api": "http://127.0.0.1:9",
        "immich_api": "http://127.0.0.1:9",
        "sync_interval": 0.2,
        "health_interval": 0.2,
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def gateway(world: World, **overrides):
    with serve(create_app(settings_for(world, **overrides))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await until(lambda: _database_up(client))
            yield client


async def photo(world: World, owner: str = OWNER) -> str:
    asset = await world.rows.asset(owner, ["发票"])
    await world.rows.embed(asset)
    return asset


def reprocess(client, asset: str, key: str = KEYS[OWNER], **body):
    return client.post(f"/api/ai/assets/{asset}/reprocess", json=body or None, headers={"x-api-key": key})


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def untouched(world: World) -> dict[str, object]:
    state: dict[str, object] = {"ocr": True, "clip": True, "tags": 0}
    if world.release != "2.2":
        state["exifTags"] = []
    return state


async def test_the_owner_resets_both_results_and_the_queues_start_once(world):
    asset = await photo(world)
    other = await photo(world)
    async with gateway(world) as client:
        response = await reprocess(client, asset)
    assert response.status_code == 202
    assert response.json() == {"assetId": asset, "queued": ["ocr", "smartSearch"], "pending": [], "kept": {}}
    assert await world.rows.state(asset) == {**untouched(world), "ocr": False, "clip": False}
    assert await world.rows.state(other) == untouched(world)
    # Through PUT /api/jobs/{name}, the route that starts a queue on every release.
    assert world.immich.jobs == [("jobs", "ocr", START, ADMIN), ("jobs", "smartSearch", START, ADMIN)]
    assert await world.rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == 0


async def test_one_result_only(world):
    asset = await photo(world)
    async with gateway(world) as client:
        response = await reprocess(client, asset, ocr=False, clip=True)
        nothing = await reprocess(client, asset, ocr=False, clip=False)
    assert response.json()["queued"] == ["smartSearch"] and world.immich.started() == ["smartSearch"]
    assert await world.rows.state(asset) == {**untouched(world), "clip": False}
    assert nothing.status_code == 422


async def test_an_edited_photo_keeps_what_immichs_jobs_cannot_redo(world):
    if world.release < "2.5":
        pytest.skip("Immich's editor exists from 2.5")
    cropped, rotated = await photo(world), await photo(world)
    await world.rows.edit(cropped, ["crop", "rotate"], hidden=("发票",))
    await world.rows.edit(rotated, ["rotate"])
    async with gateway(world) as client:
        refused = await reprocess(client, cropped)
        partly = await reprocess(client, rotated)
    # Immich's OCR job would show the cut-out text again, its Smart Search job fails on an edited
    # photo: nothing to do for the cropped one, OCR only for the rotated one.
    assert refused.status_code == 409 and "Remove the edit first" in refused.text, refused.text
    assert await world.rows.state(cropped) == untouched(world)
    assert partly.status_code == 202, partly.text
    assert partly.json()["queued"] == ["ocr"] and list(partly.json()["kept"]) == ["smartSearch"]
    assert await world.rows.state(rotated) == {**untouched(world), "ocr": False}
    assert world.immich.started() == ["ocr"]


async def test_permissions(world):
    asset = await photo(world)
    async with gateway(world) as client:
        foreign = await reprocess(client, asset, key=KEYS[OTHER])
        unknown = await reprocess(client, str(uuid.uuid4()))
        garbage = await reprocess(client, "not-a-uuid")
        anonymous = await reprocess(client, asset, key="nope")
        assert (foreign.status_code, unknown.status_code, garbage.status_code) == (404, 404, 404)
        assert anonymous.status_code == 401
        assert world.immich.jobs == [] and await world.rows.state(asset) == untouched(world)
        admin = await reprocess(client, asset, key=KEYS[ADMIN])
    assert admin.status_code == 202 and await world.rows.state(asset) == {
        **untouched(world),
        "ocr": False,
        "clip": False,
    }


async def test_without_an_admin_key_it_says_so(world):
    asset = await photo(world)
    async with gateway(world, immich_admin_api_key="") as client:
        response = await reprocess(client, asset)
    assert response.status_code == 503 and "IMMICH_ADMIN_API_KEY" in response.json()["detail"]


async def test_a_failed_queue_start_is_repaired_by_the_loop(world):
    asset = await photo(world)
    world.immich.jobs_status = 500  # Immich cannot start jobs: the reset is done, the queues are not
    async with gateway(world) as client:
        failed = await reprocess(client, asset)
        assert failed.status_code == 502 and "ocr queue" in failed.json()["detail"]
        assert await world.rows.state(asset) == {**untouched(world), "ocr": False, "clip": False}
        assert await world.rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == 2
        world.immich.jobs_status = 200
        await until(lambda: _pending_is(world, 0))
    assert sorted(world.immich.started()) == ["ocr", "smartSearch"]


async def test_a_404_from_the_job_route_is_an_error_not_a_success(world):
    asset = await photo(world)
    world.immich.jobs_status = 404
    async with gateway(world) as client:
        refused = await reprocess(client, asset)
    assert refused.status_code == 502 and "404" in refused.json()["detail"]
    assert world.immich.jobs == []  # PUT /api/queues was never used as a stand-in
    assert await world.rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == 2


async def test_no_transaction_is_open_while_immich_is_called(world):
    asset = await photo(world)
    world.immich.jobs_delay = 1.0
    async with gateway(world) as client:
        call = asyncio.create_task(reprocess(client, asset))
        await until(lambda: _immich_called(world))
        open_transactions = await world.rows.pool.fetch(
            "SELECT state, query FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            world.database,
        )
        response = await call
    assert response.status_code == 202
    assert open_transactions == []


async def test_a_queue_already_running_stays_pending_then_starts(world):
    asset = await photo(world)
    world.immich.running = {"ocr"}
    async with gateway(world) as client:
        response = await reprocess(client, asset)
        assert response.status_code == 202
        assert response.json() == {"assetId": asset, "queued": ["smartSearch"], "pending": ["ocr"], "kept": {}}
        assert await world.rows.pool.fetchval("SELECT queue FROM aio.reprocess_pending") == "ocr"
        world.immich.running = set()
        await until(lambda: _pending_is(world, 0))
    assert sorted(world.immich.started()) == ["ocr", "smartSearch"]


async def test_tagged_photos_are_reprocessed_then_untagged_the_way_immich_untags(world):
    mine = [await photo(world), await photo(world)]
    admins = await photo(world, owner=ADMIN)
    other = await photo(world)
    await world.rows.tag(OWNER, "AI/Reprocess", mine)
    admin_tag = await world.rows.tag(ADMIN, "AI/Reprocess", [admins])
    await world.rows.tag(OWNER, "Holiday", [other])
    world.immich.jobs_status = 500
    async with gateway(world) as client:

        async def queuing_failed() -> bool:
            return (await client.get("/health")).json()["loops"]["reprocess"]["lastError"] is not None

        await until(queuing_failed)
        # Queuing failed: the photos are reset but keep their tag.
        assert (await world.rows.state(mine[0]))["tags"] == 1
        world.immich.jobs_status = 200
        await until(lambda: _untagged(world, [*mine, admins]))
        reset = {**untouched(world), "ocr": False, "clip": False}
        for asset in [*mine, admins]:
            assert await world.rows.state(asset) == reset  # tag_asset and asset_exif.tags both cleared
        if world.release != "2.2":
            # `tags` locked, as Immich's untag locks it: metadata extraction keeps the database's
            # list over the XMP sidecar's, so the tag does not come back (shown on the real server).
            locked = await world.rows.pool.fetch(
                'SELECT "lockedProperties" FROM asset_exif WHERE "assetId" = ANY($1::uuid[])',
                [uuid.UUID(a) for a in [*mine, admins]],
            )
            assert [row["lockedProperties"] for row in locked] == [["tags"]] * 3
        assert await world.rows.state(other) == {
            **untouched(world),
            "tags": 1,
            **({"exifTags": ["Holiday"]} if world.release != "2.2" else {}),
        }
        assert {queue for queue in world.immich.started()} == {"ocr", "smartSearch"}
        # The admin's own tag through Immich's API (it may untag only its own), the owner's in SQL.
        assert world.immich.untagged == [(admin_tag, [admins], ADMIN)]
        # A tag that comes back (a sidecar) triggers one more, harmless run.
        starts = len(world.immich.started())
        await world.rows.embed(mine[0])
        await world.rows.tag(OTHER, "AI/Reprocess", [mine[0]])
        await until(lambda: _untagged(world, [mine[0]]))
        assert len(world.immich.started()) == starts + 2
        assert await world.rows.state(mine[0]) == reset


async def test_command_line(world):
    asset = await photo(world)
    await world.rows.asset(OWNER)  # never OCR'd, and no vector
    await world.rows.asset(OWNER, visibility="hidden")  # Immich's queues skip hidden assets
    env = {
        **os.environ,
        "DB_HOSTNAME": "127.0.0.1",
        "DB_DATABASE_NAME": world.database,
        "DB_PASSWORD": "",
        "IMMICH_SERVER_URL": world.url,
        "IMMICH_ADMIN_API_KEY": KEYS[ADMIN],
    }
    run = [sys.executable, "-m", "gateway", "reprocess"]
    one = await asyncio.to_thread(subprocess.run, [*run, asset, "--ocr"], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    assert "1 assets reset; queues started: ocr" in one.stdout
    assert await world.rows.state(asset) == {**untouched(world), "ocr": False}
    every = await asyncio.to_thread(
        subprocess.run, [*run, "--all-missing", "--no-wait"], env=env, capture_output=True, text=True
    )
    assert every.returncode == 0, every.stderr
    assert "ocr: 2 assets without a result queued" in every.stdout
    assert "smartSearch: 1 assets without a result queued" in every.stdout
    usage = await asyncio.to_thread(subprocess.run, run, env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "--all-missing" in usage.stderr
    bad = await asyncio.to_thread(subprocess.run, [*run, "nope"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "not an asset id" in bad.stderr


async def _database_up(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/health")).json()["ocrSearch"]["available"])


async def _immich_called(world: World) -> bool:
    """Whether the gateway is now waiting on Immich's job route (the claim is committed)."""
    claimed = await world.rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending WHERE claimed_until > now()")
    return bool(claimed)


async def _pending_is(world: World, count: int) -> bool:
    return await world.rows.pool.fetchval("SELECT count(*) FROM aio.reprocess_pending") == count


async def _untagged(world: World, assets: list[str]) -> bool:
    return [(await world.rows.state(a))["tags"] for a in assets] == [0] * len(assets)


async def test_all_missing_starts_the_queues_and_follows_them_to_the_end(world, caplog, capsys):
    assets = [await world.rows.asset(OWNER) for _ in range(3)]  # previews, no OCR text, no CLIP vector

    async def immich_works() -> None:
        # As Immich: the jobs run once their queues are started, which is after the count.
        def started() -> bool:
            return sorted(world.immich.started()) == ["ocr", "smartSearch"]

        await asyncio.to_thread(eventually, started, 30, "both queues started", interval=0.01)
        for asset in assets:
            await world.rows.ocr(asset, ["发票"])
            await world.rows.embed(asset)

    worker = asyncio.create_task(immich_works())
    with caplog.at_level(logging.INFO, logger="gateway.reprocess.cli"):
        await cli.run(settings_for(world), [], True, ocr=True, clip=True, follow_every=0.05, stall_after=10)
    await worker
    out = capsys.readouterr().out
    assert "ocr: 3 assets without a result queued" in out and "smartSearch: 3 assets without a result queued" in out
    assert out.rstrip().endswith("every asset has its result")
    assert sorted(world.immich.started()) == ["ocr", "smartSearch"]
    assert caplog.records[-1].getMessage().startswith("re-processing: 6/6 results (100%)")


async def test_following_stops_when_immich_makes_no_progress(world, capsys):
    await world.rows.asset(OWNER)
    await cli.run(settings_for(world), [], True, ocr=True, clip=False, follow_every=0.05, stall_after=0.3)
    out = capsys.readouterr().out
    assert "results still missing: 1, and none was made in 0.3 s" in out and "Administration, Jobs" in out


async def test_the_loop_never_starts_the_queues_a_request_is_about_to_start(world):
    """The background loop's step between a request's reset and its queue start finds nothing
    to start: the request claimed its rows when it noted them (under load the loop used to take
    them, and the request answered that it queued nothing)."""
    from gateway.parts import Parts

    parts = Parts(settings_for(world))
    try:
        await parts.db.ensure()
        reprocessor = parts.reprocessor
        asset = await photo(world)
        start, loop_steps = reprocessor._start, []

        async def the_loop_runs_first(claimed):
            reprocessor._start = start  # type: ignore[method-assign]  # the loop's own step, unpatched
            loop_steps.append(await reprocessor.start_pending())
            return await start(claimed)

        reprocessor._start = the_loop_runs_first  # type: ignore[method-assign]
        outcome = await reprocessor.reprocess([uuid.UUID(asset)], ocr=True, clip=True)
    finally:
        await parts.close()
    assert loop_steps[0].started == [] and outcome.started == ["ocr", "smartSearch"]
    assert world.immich.started() == ["ocr", "smartSearch"]  # each queue once
