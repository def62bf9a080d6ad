"""Immich's PostgreSQL: one pool shared by the OCR index, search and re-processing.

Only a supervised background loop connects and reconnects (`ensure`), so no request ever waits
on a connection attempt. While the database is down, `use(feature)` raises at once a 503 that
names the feature and the cause; a request whose query hits a connection failure marks the
database down until the loop has it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from aio_common.errors import ApiError, Unavailable
from gateway.immich.facts import Columns, ImmichFacts, Version
from gateway.immich.sql import ASSET_TABLE
from gateway.pg import Connection

log = logging.getLogger(__name__)

# What a lost, refused or hung connection raises; and a connection an interrupted operation left
# mid-protocol (asyncpg can hand one back to its pool: "cannot switch to state"), which goes
# with its pool like a lost one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)


class ImmichNotMigrated(Unavailable):
    """Immich's database exists, but Immich has not created its tables in it yet."""


# What a database that is not up (yet) raises: Immich creates its database and tables when it
# first starts.
NOT_UP_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    asyncpg.InvalidCatalogNameError,
    ImmichNotMigrated,
)


class Database:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        connect_timeout: float,
        query_timeout: float,
        server_version: Callable[[], Awaitable[Version]],
        set_up: Callable[[Connection], Awaitable[None]],
    ) -> None:
        self._host, self._port, self._user, self._password, self._database = host, port, user, password, database
        self.where = f"{host}:{port}/{database}"
        self.connect_timeout = connect_timeout
        self.query_timeout = query_timeout
        self._server_version = server_version
        # Our own schema's set-up (gateway.aio_schema), run on each new connection before use.
        self._set_up = set_up
        self.pool: asyncpg.Pool | None = None
        self.facts: ImmichFacts | None = None
        self.error = "the database has not been reached yet"
        # Incremented on each new connection, so users of the database redo their own set-up.
        self.generation = 0

    @property
    def up(self) -> bool:
        return self.pool is not None and self.facts is not None

    async def ensure(self) -> None:
        """Connect if needed, else check the connection; learn what this Immich has. Raises on
        failure (the calling loop backs off)."""
        if self.pool is None:
            await self._connect()
        else:
            try:
                await self.pool.fetchval("SELECT 1", timeout=self.connect_timeout)
            except CONNECTION_ERRORS as exc:
                await self.mark_down(f"database {self.where} stopped answering: {_describe(exc)}")
                raise
        assert self.facts is not None
        if self.facts.version_from == "schema":
            with contextlib.suppress(ApiError, ValueError):
                self.facts = ImmichFacts(await self._server_version(), "server", self.facts.columns)

    async def _connect(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                host=self._host,
                port=self._port,
                user=self._user,
                password=self._password,
                database=self._database,
                min_size=1,
                max_size=10,
                timeout=self.connect_timeout,
                command_timeout=self.query_timeout,
                # A search statement is prepared once per shape and run with other words: a plan
                # made for its parameters, never a generic one (which, after five runs, guessed a
                # common word rare and took 5x longer at a million photos). No JIT: compiling
                # took 20 ms of a 25 ms search whose LIMIT the cost estimate does not see.
                server_settings={"plan_cache_mode": "force_custom_plan", "jit": "off"},
            )
        except DATABASE_ERRORS as exc:
            self.error = f"database {self.where} unreachable: {_describe(exc)}"
            raise
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval(f"SELECT to_regclass('public.{ASSET_TABLE}')") is None:
                    raise ImmichNotMigrated(
                        f"database {self.where} has no Immich tables yet: Immich creates them when it first starts"
                    )
                columns = await Columns.discover(conn)
                await self._set_up(conn)
        except ImmichNotMigrated as exc:
            self.error = exc.message
            await _close(pool)
            raise
        except DATABASE_ERRORS as exc:
            self.error = f"database {self.where}: our schema could not be set up: {_describe(exc)}"
            await _close(pool)
            raise
        try:
            facts = ImmichFacts(await self._server_version(), "server", columns)
        except (ApiError, ValueError) as exc:
            facts = ImmichFacts(columns.inferred_version(), "schema", columns)
            log.warning("Immich's version unknown: inferred from its tables", extra={"error": str(exc)})
        self.pool, self.facts, self.generation = pool, facts, self.generation + 1
        log.info("database connected", extra={"database": self.where, **facts.state()})

    async def mark_down(self, reason: str) -> None:
        """Forget the pool after a connection failure; the background loop connects again."""
        self.error = reason
        pool, self.pool = self.pool, None
        if pool is not None:
            log.warning("database unavailable", extra={"error": reason})
            await _close(pool)

    @contextlib.asynccontextmanager
    async def use(self, feature: str) -> AsyncIterator[tuple[asyncpg.Pool, ImmichFacts]]:
        """The pool and facts for `feature`, or at once a 503 naming the feature and the cause."""
        pool, facts = self.pool, self.facts
        if pool is None or facts is None:
            raise Unavailable(f"{feature} is unavailable: {self.error}")
        try:
            yield pool, facts
        except CONNECTION_ERRORS as exc:
            await self.mark_down(f"database {self.where} failed: {_describe(exc)}")
            raise Unavailable(f"{feature} is unavailable: {self.error}") from None
        except asyncpg.PostgresError as exc:
            raise Unavailable(f"{feature} failed in the database: {_describe(exc)}") from None

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await _close(pool)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close(pool: asyncpg.Pool) -> None:
    """Close without waiting on a hung server: terminate after a short grace."""
    try:
        await asyncio.wait_for(pool.close(), timeout=2)
    except (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
        pool.terminate()
