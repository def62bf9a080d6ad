"""The nginx reverse proxy config, driven by a real nginx: smart search to the gateway, the rest to Immich."""

from __future__ import annotations

import asyncio
import shutil
import uuid

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from testing.immich_db import immich_world
from testing.nginx import immich_proxy
from testing.servers import serve

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (.ci/run installs it)")


async def test_requests_through_nginx(tmp_path):
    owner, admin = str(uuid.uuid4()), str(uuid.uuid4())
    async with immich_world("3.2", {owner: "key", admin: "admin-key"}, admins=(admin,)) as world:
        asset = await world.rows.asset(owner, ["门口的咖啡店招牌"])
        world.immich.owners[asset] = owner
        world.immich.clip_ranking = ["clip-1"]
        settings = Settings(
            db_hostname="127.0.0.1",
            db_database_name=world.database,
            db_password="",
            immich_server_url=world.url,
            immich_admin_api_key="admin-key",
            health_interval=0.2,
        )
        with serve(create_app(settings)) as gateway_url, immich_proxy(tmp_path, gateway_url, world.url) as proxy:
            async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
                headers = {"x-api-key": "key"}
                for _ in range(100):  # 503 until the gateway has reached the database, then indexed
                    first = await client.post("/api/search/smart", json={"query": "ocr:咖啡"}, headers=headers)
                    if first.status_code == 200 and first.json()["assets"]["items"]:
                        break
                    await asyncio.sleep(0.1)
                found = await client.post("/api/search/smart", json={"query": "ocr:咖啡"}, headers=headers)
                plain = await client.post("/api/search/smart", json={"query": "咖啡"}, headers=headers)
                other = await client.get("/api/server/ping")
                upload = await client.post("/api/search/smart", content=b"x" * 5_000_000, headers=headers)
                reprocess = await client.post(f"/api/ai/assets/{asset}/reprocess", headers=headers)
        forwarded = world.immich.forwarded[-1]["body"]
    assert [item["id"] for item in found.json()["assets"]["items"]] == [asset]
    assert [item["id"] for item in plain.json()["assets"]["items"]] == ["clip-1", asset]
    assert other.json()["res"] == "pong"
    # No body size limit in the proxy: a 5 MB body reaches Immich (which answers it).
    assert upload.status_code == 400 and len(forwarded) == 5_000_000
    # Our own routes reach the gateway through Immich's port.
    assert reprocess.status_code == 202 and reprocess.json()["assetId"] == asset
