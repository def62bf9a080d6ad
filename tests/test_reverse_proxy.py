"""The nginx reverse proxy config, driven by a real nginx: smart search to the gateway, the rest to Immich."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.helpers import free_port, serve
from tests.immich_db import ImmichRows, scratch_database
from tests.standins import ImmichServer, stock_immich_server

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
    owner = str(uuid.uuid4())
    immich = ImmichServer()
    immich.add_user(owner, "key")
    async with scratch_database() as name:
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:5432/{name}", min_size=1, max_size=2)
        asset = await ImmichRows(pool).asset(owner, ["门口的咖啡店招牌"])
        immich.owners[asset] = owner
        immich.clip_ranking = ["clip-1"]
        with serve(stock_immich_server(immich)) as immich_url:
            settings = Settings(
                db_hostname="127.0.0.1", db_database_name=name, db_password="", immich_server_url=immich_url
            )
            with serve(create_app(settings)) as gateway_url:
                process, port = nginx(tmp_path, gateway_url, immich_url)
                try:
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                        headers = {"x-api-key": "key"}
                        found = await client.post("/api/search/smart", json={"query": "ocr:咖啡"}, headers=headers)
                        plain = await client.post("/api/search/smart", json={"query": "咖啡"}, headers=headers)
                        other = await client.get("/api/server/ping")
                        upload = await client.post("/api/search/smart", content=b"x" * 5_000_000, headers=headers)
                finally:
                    process.terminate()
                    process.wait(10)
        await pool.close()
    assert [item["id"] for item in found.json()["assets"]["items"]] == [asset]
    assert [item["id"] for item in plain.json()["assets"]["items"]] == ["clip-1", asset]
    assert other.json()["res"] == "pong"
    # No body size limit in the proxy: a 5 MB body reaches Immich (which answers it).
    assert upload.status_code == 400 and len(immich.forwarded[-1]["body"]) == 5_000_000
