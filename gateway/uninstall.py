"""`python -m gateway uninstall [--yes]`: give Immich's database back as it was before this product.

Removes, in one transaction, our schema `aio` from Immich's database (the word index and its
bookkeeping; its rows only reference Immich's assets) and whatever of zhparser an earlier
install left there (the `chinese` configuration, its settings, the extension unless another
configuration uses it); then zhparser's own database (ZHPARSER_DATABASE). No Immich table is
touched. Stop the gateway first: a running one makes its index again. Then
it says what Immich itself still needs from the user.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from gateway.search.zhparser import remove_from
from gateway.settings import Settings

AFTERWARDS = """What Immich still needs from you:
  1. Immich's .env: remove the AIO_DIR and COMPOSE_FILE lines, then `docker compose up -d
     --remove-orphans` (Immich's own database image and port 2283 come back).
  2. Administration > Settings > Machine Learning: the URL back to the stock server
     (http://immich-machine-learning:3003), and under Smart Search a CLIP model of Immich's own
     (ViT-B-32__openai is its default). A new model name makes Immich drop the Chinese-CLIP
     vectors; then run the Smart Search job for all assets, and the OCR job if you want Immich's
     own OCR text."""


async def uninstall(settings: Settings) -> list[str]:
    """Remove our objects from Immich's database server; what was done, a line each."""
    conn = await asyncpg.connect(**settings.db_connection(), timeout=settings.connect_timeout)
    done: list[str] = []
    try:
        async with conn.transaction():
            if await conn.fetchval("SELECT to_regnamespace('aio') IS NOT NULL"):
                await conn.execute("DROP SCHEMA aio CASCADE")
                done.append("dropped schema aio (the word index)")
            done += await remove_from(conn)
        database = settings.zhparser_database
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", database):
            await conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            done.append(f"dropped database {database} (zhparser's chinese configuration)")
    finally:
        await conn.close()
    return done or ["nothing of ours was in the database"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="immich-gateway uninstall", description=__doc__)
    parser.add_argument("--yes", action="store_true", help="do it without asking")
    args = parser.parse_args(argv)
    settings = Settings()
    where = f"{settings.db_hostname}:{settings.db_port}/{settings.db_database_name}"
    if not args.yes and input(f"Remove this product's objects from {where}? [y/N] ").strip().lower() != "y":
        raise SystemExit("nothing removed")
    try:
        done = asyncio.run(uninstall(settings))
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SystemExit(f"error: the database {where} cannot be changed: {exc}") from None
    for line in done:
        print(f"{where}: {line}")
    print(AFTERWARDS)
