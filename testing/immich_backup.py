"""Immich's database backup and its two restores, run as Immich runs them (2.5+ and 3.x,
`server/src/services/database-backup.service.ts`): the backup job's `pg_dump --clean
--if-exists` of Immich's database; the restore from Immich's maintenance mode, which pipes its
own preamble (cut the other connections, drop and make the schema `public` again) and the dump
into `psql --single-transaction --set ON_ERROR_STOP=on`; and the documented manual restore, the
dump into plain `psql`, which goes on past errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Immich's preamble, for its database user `postgres`.
PREAMBLE = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid();
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
GRANT ALL ON SCHEMA public TO "postgres";
GRANT ALL ON SCHEMA public TO public;
"""


def _server(port: int) -> list[str]:
    return ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]


def pg_dump(database: str, port: int) -> bytes:
    """A backup as Immich's backup job makes it (before its gzip)."""
    done = subprocess.run(
        ["pg_dump", *_server(port), "--clean", "--if-exists", database], capture_output=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def restore(dump: bytes, database: str, port: int, *, immichs_way: bool) -> subprocess.CompletedProcess[str]:
    """Restore `dump` into `database` (which exists): Immich's way (one transaction that stops
    at the first error), or the documented plain `psql`. psql's stderr holds any ERROR."""
    if immichs_way:
        command = ["psql", *_server(port), "--dbname", database, "--single-transaction", "--set", "ON_ERROR_STOP=on"]
        sql = PREAMBLE.encode() + dump
    else:
        command, sql = ["psql", *_server(port), "--dbname", database], dump
    done = subprocess.run([*command, "--output=/dev/null"], input=sql, capture_output=True, timeout=300, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, "", done.stderr.decode(errors="replace"))


def errors(restored: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in restored.stderr.splitlines() if "ERROR" in line]


def newest_backup(media: Path) -> Path | None:
    """The newest finished backup in Immich's media folder (a running one ends in .tmp)."""
    found = sorted((media / "backups").glob("immich-db-backup-*.sql.gz"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
