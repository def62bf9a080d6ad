"""Immich's backups restore onto a server with or without zhparser, both ways Immich restores
them, and the word index comes back by itself: it lives in Immich's database as plain tables,
and zhparser in a database of its own (gateway/search/zhparser.py). An earlier install's
zhparser objects in Immich's database are taken out when the gateway starts. The same on the
real Immich, with its own backup job: tests/e2e/test_backup.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gateway.immich.dto import SmartSearch
from gateway.search.index import OcrIndex
from gateway.search.zhparser import SETUP_SQL
from testing import immich_backup
from testing.immich_db import ImmichRows, database_for, scratch_database, zhparser_beside
from testing.immich_server import psql
from testing.postgres import Cluster, private_cluster
from testing.postgres import missing as missing_postgres
from tests.conftest import EXTENSION_HINT, extension_available

pytestmark = pytest.mark.skipif(
    not extension_available("zhparser"), reason=f"zhparser is not installed in the local PostgreSQL: {EXTENSION_HINT}"
)

OWNER = str(uuid.uuid4())
HAS_ZHPARSER = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'zhparser')"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Cluster]]:
    """Two fresh servers: one that never had zhparser (as Immich's stock image), one with it."""
    if reason := missing_postgres():
        pytest.skip(reason)
    with private_cluster(without=("zhparser",)) as bare, private_cluster() as ours:
        yield {"without zhparser": bare, "with zhparser": ours}


async def _backup_of_an_indexed_library() -> tuple[bytes, str]:
    """Immich's backup of a database an earlier install left with zhparser in it, after the
    gateway started on it and indexed a photo; and that photo's id."""
    async with scratch_database("3.2") as name:
        db = database_for(name)
        await db.ensure()
        assert db.pool is not None and db.facts is not None
        await db.pool.execute(SETUP_SQL)  # where an earlier install put zhparser
        index = OcrIndex(3, "auto", 2, zhparser_beside())
        try:
            await index.passes.prepare(db.pool)
            assert index.words.tokenizer == "zhparser"
            assert not await db.pool.fetchval(HAS_ZHPARSER), "zhparser was taken out of Immich's database"
            assert await db.pool.fetchval("SELECT count(*) FROM pg_ts_config WHERE cfgname = 'chinese'") == 0
            invoice = await ImmichRows(db.pool, "3.2").asset(OWNER, ["增值税电子普通发票"])
            assert await index.passes.sync(db.pool, db.facts) == 1
            return immich_backup.pg_dump(name, 5432), invoice
        finally:
            await index.close()
            await db.close()


@pytest.mark.parametrize("server", ["without zhparser", "with zhparser"])
@pytest.mark.parametrize("immichs_way", [True, False], ids=["immich-restore", "plain-psql"])
async def test_a_backup_restores_and_the_index_comes_back(servers, server, immichs_way):
    dump, invoice = await _backup_of_an_indexed_library()
    cluster = servers[server]
    name = f"restored_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE DATABASE "{name}"', port=cluster.port)
    restored = immich_backup.restore(dump, name, cluster.port, immichs_way=immichs_way)
    assert restored.returncode == 0 and immich_backup.errors(restored) == [], restored.stderr[-3000:]
    assert psql("SELECT count(*) FROM asset", name, cluster.port) == "1"
    assert psql("SELECT count(*) FROM aio.ocr_index", name, cluster.port) == "1"

    # The gateway on the restored database: it keeps the index where it can split words the
    # same way, and rebuilds it with jieba where zhparser is missing.
    db = database_for(name, port=cluster.port)
    await db.ensure()
    assert db.pool is not None and db.facts is not None
    index = OcrIndex(3, "auto", 2, zhparser_beside(port=cluster.port))
    try:
        await index.passes.prepare(db.pool)
        kept = await db.pool.fetchval("SELECT count(*) FROM aio.ocr_index")
        assert (index.words.tokenizer, kept) == (("jieba", 0) if server == "without zhparser" else ("zhparser", 1))
        await index.passes.sync(db.pool, db.facts)
        query = await index.query.parse(db.pool, "发票")
        found = await index.query.search(db.pool, db.facts, query, SmartSearch(query="发票"), OWNER, 10, 0)
        assert found == [invoice]
        assert not await db.pool.fetchval(HAS_ZHPARSER)
    finally:
        await index.close()
        await db.close()
