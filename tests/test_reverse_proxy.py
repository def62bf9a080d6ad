"""The nginx reverse proxy config, driven by a real nginx: smart search to the gateway, the rest to Immich."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from testing.immich_db import immich_world
from testing.servers import free_port, serve

TEMPLATE = Path(__file__).parent.parent / "deploy" / "immich-proxy.conf.template"

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (.ci/run installs it)")


def nginx(tmp_path: Path, gateway: str, immich: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = (
        TEMPLATE.read_text()
        .replace("${GATEWAY_UPSTREAM}", gateway.removeprefix("http://"))
        .replace("${IMMICH_UPSTREAM}", immich.removeprefix("http://"))
        .replace("listen 2283;", f"listen 127.0.0.1:{port};")
    )
    (tmp_path / "proxy.conf").write_text(server)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (tmp_path / "nginx.conf").write_text(
        f"""
        daemon off;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log warn;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {temp["body"]};
            proxy_temp_path {temp["proxy"]};
            fastcgi_temp_path {temp["fastcgi"]};
            uwsgi_temp_path {temp["uwsgi"]};
            scgi_temp_path {temp["scgi"]};
            include {tmp_path}/proxy.conf;
        }}
        """
    )
    process = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return process, port
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError((tmp_path / "error.log").read_text())


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
        with serve(create_app(settings)) as gateway_url:
            process, port = nginx(tmp_path, gateway_url, world.url)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
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
            finally:
                process.terminate()
                process.wait(10)
        forwarded = world.immich.forwarded[-1]["body"]
    assert [item["id"] for item in found.json()["assets"]["items"]] == [asset]
    assert [item["id"] for item in plain.json()["assets"]["items"]] == ["clip-1", asset]
    assert other.json()["res"] == "pong"
    # No body size limit in the proxy: a 5 MB body reaches Immich (which answers it).
    assert upload.status_code == 400 and len(forwarded) == 5_000_000
    # Our own routes reach the gateway through Immich's port.
    assert reprocess.status_code == 202 and reprocess.json()["assetId"] == asset
