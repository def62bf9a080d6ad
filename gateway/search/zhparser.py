"""zhparser in a database of its own on Immich's server (ZHPARSER_DATABASE), never in Immich's.

The index stores plain tsvectors: the gateway sends folded text to this database, takes back
zhparser's words and writes them into `aio.ocr_index`. So Immich's database holds nothing that
needs zhparser, and a dump of it (Immich's backup job) restores onto any PostgreSQL Immich
supports, with or without zhparser, even in one transaction that stops at the first error.
An earlier install kept the extension and the `chinese` configuration in Immich's database:
`remove_from` takes them out again (at each start, and on uninstall).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg

from aio_common.errors import Unavailable
from gateway.pg import Connection
from gateway.search.tokenize import ZHPARSER_SETTINGS

log = logging.getLogger(__name__)

SETUP_SQL = (Path(__file__).parent / "zhparser.sql").read_text()
# Each document's words as tsvector text, in the order given.
DOCUMENTS = "SELECT to_tsvector('chinese', d)::text AS words FROM unnest($1::text[]) WITH ORDINALITY u(d, n) ORDER BY n"
# The words of each run of a query as zhparser splits them (mapped types only), in order.
TOKENS = """
SELECT array(SELECT lower(d.token) FROM ts_debug('chinese', r) d WHERE d.lexemes IS NOT NULL AND d.lexemes <> '{}')
  AS tokens
FROM unnest($1::text[]) WITH ORDINALITY u(r, n) ORDER BY n
"""

# A text search configuration other than ours on zhparser: then the extension is someone else's too.
OTHER_USERS = """
SELECT string_agg(c.cfgname, ', ') FROM pg_ts_config c JOIN pg_ts_parser p ON p.oid = c.cfgparser
WHERE p.prsname = 'zhparser' AND c.cfgname <> 'chinese'
"""
OURS_CHINESE = """
SELECT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_ts_parser p ON p.oid = c.cfgparser
               WHERE c.cfgname = 'chinese' AND p.prsname = 'zhparser')
"""


class ZhparserUnavailable(Unavailable):
    """zhparser's database cannot be made or reached; the message says what to do."""


class Zhparser:
    """A small pool on zhparser's database, opened by `open` each time the index is prepared."""

    def __init__(self, connection: dict[str, Any], connect_timeout: float, query_timeout: float, size: int) -> None:
        self._connection = connection
        self.database: str = connection["database"]
        self._connect_timeout = connect_timeout
        self._query_timeout = query_timeout
        self._size = size
        self._pool: asyncpg.Pool | None = None

    async def open(self, immich: Connection) -> None:
        """Make the database (from Immich's connection, on first use), the extension and the
        `chinese` configuration in it, and connect. Raises ZhparserUnavailable."""
        await self.close()
        try:
            pool = await self._connect()
        except asyncpg.InvalidCatalogNameError:
            try:
                await immich.execute(f'CREATE DATABASE "{self.database}"')
                log.info("zhparser's database created", extra={"database": self.database})
            except asyncpg.DuplicateDatabaseError:
                pass  # another gateway made it at the same moment
            except asyncpg.InsufficientPrivilegeError as exc:
                raise ZhparserUnavailable(
                    f"database {self.database} does not exist and Immich's database user may not create it ({exc}):"
                    f' create it as a superuser (CREATE DATABASE "{self.database}")'
                ) from None
            pool = await self._connect()
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(SETUP_SQL)
                for name, value in ZHPARSER_SETTINGS.items():  # for anyone else who splits with it here
                    await conn.execute(f'ALTER DATABASE "{self.database}" SET {name} = {value}')
        except asyncpg.PostgresError as exc:
            await pool.close()
            raise ZhparserUnavailable(f"zhparser cannot be enabled in database {self.database}: {exc}") from None
        self._pool = pool

    async def _connect(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            **self._connection,
            min_size=1,
            max_size=self._size,
            timeout=self._connect_timeout,
            command_timeout=self._query_timeout,
            server_settings=ZHPARSER_SETTINGS,
        )

    async def documents(self, folded: list[str], timeout: float | None = None) -> list[str]:
        """Each folded text's words, as tsvector text for the index."""
        rows = await self._ready().fetch(DOCUMENTS, folded, timeout=timeout)
        return [row["words"] for row in rows]

    async def tokens(self, runs: list[str]) -> list[list[str]]:
        """zhparser's words of each run of a folded query."""
        return [list(row["tokens"]) for row in await self._ready().fetch(TOKENS, runs)]

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ZhparserUnavailable(f"zhparser's database {self.database} is not open")
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()


async def remove_from(conn: Connection) -> list[str]:
    """Take our zhparser objects out of the database `conn` is on (Immich's, as an earlier
    install left it): the `chinese` configuration, the database's zhparser settings, and the
    extension unless another configuration uses it. What was done, a line each."""
    done: list[str] = []
    if await conn.fetchval(OURS_CHINESE):
        await conn.execute("DROP TEXT SEARCH CONFIGURATION chinese")
        done.append("dropped text search configuration chinese")
    database = await conn.fetchval("SELECT current_database()")
    for name in ZHPARSER_SETTINGS:
        await conn.execute(f'ALTER DATABASE "{database}" RESET {name}')
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'zhparser')"):
        others = await conn.fetchval(OTHER_USERS)
        if others:
            done.append(f"kept the zhparser extension: used by {others}")
        else:
            await conn.execute("DROP EXTENSION zhparser")
            done.append("dropped extension zhparser")
    return done
