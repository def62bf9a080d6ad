"""Cost of the mixed CLIP + OCR ranking: a plain query's first page through the gateway vs
Immich's own answer (a stand-in with a fixed 150 ms delay for its CLIP search) and vs the
`ocr:` query alone, in one run on 20k indexed assets. The Immich call and the OCR query run
concurrently, so the target is hybrid <= 1.2 x (Immich + OCR query).
Run: `.venv/bin/python -m bench.hybrid_search`
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from bench.ocr_search import load, vocabulary
from gateway.app import create_app
from gateway.search.index import OcrIndex
from gateway.settings import Settings
from testing.immich_db import database_for, scratch_database, zhparser_beside
from testing.servers import serve
from testing.standins import ImmichServer, stock_immich_server

ASSETS = 20_000
IMMICH_DELAY_S = 0.150
ROUNDS = 30


async def run() -> None:
    owner = uuid.uuid4()
    immich = ImmichServer(search_delay=IMMICH_DELAY_S)
    immich.add_user(str(owner), "key")
    async with scratch_database() as name:
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:5432/{name}", min_size=1, max_size=2)
        await load(
            pool, [owner], ASSETS, random.Random(5), vocabulary(), timedelta(days=30), datetime.now(timezone.utc)
        )
        database = database_for(name)
        await database.ensure()
        assert database.pool is not None and database.facts is not None
        index = OcrIndex(1000, "auto", workers=os.cpu_count() or 1, zhparser=zhparser_beside())
        await index.passes.prepare(database.pool)
        await index.passes.sync(database.pool, database.facts)
        await index.close()
        await database.close()
        asset_ids = [str(r["id"]) for r in await pool.fetch("SELECT id FROM asset ORDER BY random() LIMIT 300")]
        immich.clip_ranking = asset_ids
        immich.owners.update({a: str(owner) for a in asset_ids})
        for row in await pool.fetch("SELECT id FROM asset"):
            immich.owners[str(row["id"])] = str(owner)
        with serve(stock_immich_server(immich)) as immich_url:
            settings = Settings(
                db_hostname="127.0.0.1", db_database_name=name, db_password="", immich_server_url=immich_url
            )
            with serve(create_app(settings)) as gateway_url:
                async with httpx.AsyncClient(timeout=30, headers={"x-api-key": "key"}) as client:
                    timings: dict[str, list[float]] = {"immich": [], "ocr": [], "hybrid": []}
                    calls = {
                        "immich": (f"{immich_url}/api/search/smart", "发票"),
                        "ocr": (f"{gateway_url}/api/search/smart", "ocr:发票"),
                        "hybrid": (f"{gateway_url}/api/search/smart", "发票"),
                    }
                    for round_ in range(ROUNDS + 2):
                        for kind, (url, query) in calls.items():
                            started = time.perf_counter()
                            response = await client.post(url, json={"query": query, "size": 100})
                            assert response.status_code == 200, response.text
                            if round_ >= 2:  # two warm-up rounds
                                timings[kind].append((time.perf_counter() - started) * 1000)
        await pool.close()
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    for kind, value in medians.items():
        print(f"{kind:7s} first page (size 100): median {value:7.1f} ms")
    print(f"hybrid / Immich alone: {medians['hybrid'] / medians['immich']:.2f}")
    print(f"hybrid / (Immich + ocr: query): {medians['hybrid'] / (medians['immich'] + medians['ocr']):.2f}")


if __name__ == "__main__":
    asyncio.run(run())
