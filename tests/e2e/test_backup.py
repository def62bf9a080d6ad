"""Immich's own backup job, run on the real Immich with the word index in place, restores both
ways Immich restores it (its maintenance mode's single transaction, and plain `psql`) onto a
server that never had zhparser (as Immich's stock image) and onto one with it. Immich and a
gateway then start on each restore: Immich with every photo and no schema drift, the gateway
finding its index or rebuilding it by itself, `ocr:` answering as before."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testing import immich_backup
from testing.immich_server import immich_server, psql
from testing.postgres import Cluster, private_cluster
from testing.servers import ServiceProcess
from testing.waiting import eventually
from tests.e2e.conftest import Stack


@pytest.fixture(scope="module")
def backup(stack: Stack, photos: dict[str, str]) -> bytes:
    """The SQL of a backup Immich's own job wrote, with every photo indexed."""
    alice = stack.user("alice")
    eventually(lambda: stack.found(alice, "咖啡"), 60, "the cafe is indexed")
    eventually(stack.index_matches_immich, 60, "the index holds every photo with OCR text")
    before = immich_backup.newest_backup(stack.immich.media)
    started = stack.immich.api("POST", "/api/jobs", stack.admin, json={"name": "backup-database"})
    assert started.status_code < 300, started.text

    def written() -> Path | None:
        newest = immich_backup.newest_backup(stack.immich.media)
        return newest if newest != before else None

    return gzip.decompress(eventually(written, 120, "Immich's backup job wrote a file").read_bytes())


@pytest.fixture(scope="module")
def servers(stack: Stack) -> Iterator[dict[str, Cluster]]:
    with private_cluster(without=("zhparser",)) as bare:
        yield {"without zhparser": bare, "with zhparser": stack.postgres}


def _restored(backup: bytes, cluster: Cluster, *, immichs_way: bool) -> str:
    name = f"restored_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{name}"', port=cluster.port)
    done = immich_backup.restore(backup, name, cluster.port, immichs_way=immichs_way)
    assert done.returncode == 0 and immich_backup.errors(done) == [], done.stderr[-3000:]
    return name


@pytest.mark.parametrize("server", ["without zhparser", "with zhparser"])
def test_immichs_backup_restores_and_search_comes_back(
    stack: Stack, backup: bytes, servers: dict[str, Cluster], server: str, tmp_path: Path
):
    cluster, alice = servers[server], stack.user("alice")
    count = "SELECT count(*) FROM asset"
    assets, before = stack.sql(count), stack.found(alice, "咖啡")

    plain = _restored(backup, cluster, immichs_way=False)  # the documented manual restore
    assert psql(count, plain, cluster.port) == assets
    psql(f'DROP DATABASE "{plain}"', port=cluster.port)

    database = _restored(backup, cluster, immichs_way=True)
    gateway = ServiceProcess(
        "gateway",
        {**stack.gateway.env, "DB_PORT": str(cluster.port), "DB_DATABASE_NAME": database},
        "PORT",
        tmp_path / "gateway.log",
    )

    def start_gateway(immich) -> None:
        gateway.env["IMMICH_SERVER_URL"] = immich.url
        gateway.start()

    restored = (database, stack.immich.media)
    with immich_server(stack.immich.version, tmp_path, gateway.url, start_gateway, cluster.port, restored) as immich:
        try:
            assert "No schema drift detected" in immich.log_tail(200_000), immich.log_tail()
            assert psql(count, database, cluster.port) == assets

            def found() -> list[str] | None:
                answer = httpx.post(
                    f"{gateway.url}/api/search/smart", json={"query": "ocr:咖啡"}, headers=alice.key_headers, timeout=60
                )
                return [item["id"] for item in answer.json()["assets"]["items"]] if answer.status_code == 200 else None

            assert eventually(found, 180, "ocr: answers on the restored database") == before
            search = httpx.get(f"{gateway.url}/health", timeout=10).json()["ocrSearch"]
            assert search["tokenizer"] == ("jieba" if server == "without zhparser" else "zhparser"), search
            assert psql("SELECT count(*) FROM pg_extension WHERE extname = 'zhparser'", database, cluster.port) == "0"
        finally:
            gateway.stop()
