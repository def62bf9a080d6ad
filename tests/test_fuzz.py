"""The OpenAPI documents tell the truth: the committed ones are what the running services publish,
and a schemathesis campaign with every check (`--checks all`) over each, driven by the committed
document, finds no server error and no conformance failure.

CI runs a campaign of at least 1,000 requests a service with a fixed seed; `make fuzz` runs
FUZZ_SCALE times as many examples with a new seed each time.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from testing.immich_db import immich_world
from testing.openapi_docs import AI_DOC, GATEWAY_DOC, document, documented_ai, documented_gateway
from testing.servers import serve
from testing.standins import Behaviour, stock_immich_ml

ROOT = Path(__file__).resolve().parent.parent
# Examples per operation: the AI service's documents have fewer operations with inputs.
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {"openapi-ai.json": 250 * SCALE, "openapi-gateway.json": 100 * SCALE}
SEED = os.environ.get("FUZZ_SEED", "20261201")
MIN_REQUESTS = int(os.environ.get("FUZZ_MIN_REQUESTS", "1000"))
USER, ADMIN = str(uuid.uuid4()), str(uuid.uuid4())
KEYS = {USER: "fuzz-user-key", ADMIN: "fuzz-admin-key"}


@pytest.fixture(scope="module")
def ai_url(vit_root: Path):
    with documented_ai(vit_root) as url:
        yield url


def test_the_committed_documents_are_what_the_services_publish(ai_url):
    with documented_gateway(ai_url) as gateway_url:
        published = {AI_DOC: document(ai_url), GATEWAY_DOC: document(gateway_url)}
    for path, doc in published.items():
        assert json.loads(path.read_text()) == doc, f"{path.name} is stale: run `python -m testing.openapi_docs`"


def test_the_ai_service_passes_the_campaign(clip_root, tmp_path):
    # Its document is the same for every model: the smallest (RN50) keeps the campaign short.
    with documented_ai(clip_root, clip_model="RN50") as url:
        report = campaign(AI_DOC, url, ["api-key: mt_photos_ai_extra"], tmp_path)
    inference = collections.Counter(status for _, path, status in report if path in ("/predict", "/ocr", "/clip/img"))
    assert inference[200] >= 100, inference  # valid requests reach the models


async def test_the_gateway_passes_the_campaign(ai_url, tmp_path):
    async with immich_world("3.2", KEYS, admins=(ADMIN,)) as world:
        for lines in (["增值税电子普通发票", "发票代码 011002"], ["咖啡 Coffee ¥28"], ["停车场 P"]):
            world.immich.owners[await world.rows.asset(USER, lines)] = USER
        settings = {
            "db_hostname": "127.0.0.1",
            "db_database_name": world.database,
            "db_password": "",
            "immich_server_url": world.url,
            "immich_admin_api_key": KEYS[ADMIN],
            "sync_interval": 0.2,
        }
        with serve(stock_immich_ml(Behaviour())) as stock_url:
            with documented_gateway(ai_url, immich_api=stock_url, **settings) as url:
                async with httpx.AsyncClient(base_url=url) as client:
                    for _ in range(300):
                        if (await client.get("/health")).json()["ocrSearch"]["caughtUp"]:
                            break
                        await asyncio.sleep(0.1)
                report = await asyncio.to_thread(campaign, GATEWAY_DOC, url, [f"x-api-key: {KEYS[USER]}"], tmp_path)
    searches = collections.Counter(status for _, path, status in report if path == "/api/search/smart")
    assert searches[200] >= 10, searches


def campaign(doc: Path, url: str, headers: list[str], tmp_path: Path) -> list[tuple[str, str, int]]:
    """Run schemathesis over `doc` against `url`; every request's method, path and status."""
    har = tmp_path / "campaign.har"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        str(doc),
        "--url",
        url,
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES[doc.name]),
        "--report",
        "har",
        "--report-har-path",
        str(har),
        *(["--seed", SEED] if SEED else []),
        *(argument for header in headers for argument in ("-H", header)),
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    # The failures and the summary, long lines (request bodies) cut.
    shown = run.stdout[run.stdout.find("FAILURES") :] if "FAILURES" in run.stdout else run.stdout[-3000:]
    shown = "\n".join(line[:400] for line in shown.splitlines())
    print(f"{doc.name}: {shown}")
    assert run.returncode == 0, shown + run.stderr[-2000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = [entry["response"]["status"] for entry in entries]
    assert len(entries) >= MIN_REQUESTS, f"only {len(entries)} requests"
    assert not [s for s in statuses if s >= 500], collections.Counter(statuses)
    print(f"{doc.name}: {len(entries)} requests, statuses {sorted(collections.Counter(statuses).items())}")
    return [
        (entry["request"]["method"], httpx.URL(entry["request"]["url"]).path, entry["response"]["status"])
        for entry in entries
    ]
