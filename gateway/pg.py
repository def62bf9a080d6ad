"""The asyncpg connection type the gateway's database code takes: a plain connection or one
borrowed from a pool. Its own module, so the schema migrations and the connection manager that
runs them need not import each other."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

Connection: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
