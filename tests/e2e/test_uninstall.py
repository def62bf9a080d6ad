"""A clean way out: `python -m gateway uninstall` removes our schema from Immich's database and
zhparser's database of its own, and touches no Immich table; Immich starts
again on it with no schema drift and its own OCR search works without the gateway. (Run last in
the package: the gateway is started again afterwards and makes its index anew by itself.)"""

from __future__ import annotations

import subprocess
import sys

from testing.immich_server import psql
from testing.waiting import eventually
from tests.e2e.conftest import Stack


def _uninstall(stack: Stack) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, with the gateway's settings (DB_*)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "uninstall", "--yes"],
        env=stack.gateway.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_uninstall_gives_immich_its_database_back(stack: Stack, photos):
    alice = stack.user("alice")
    before = eventually(lambda: stack.found(alice, "咖啡"), 60, "the cafe is indexed")
    tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
    immich_tables, assets = stack.sql(tables), stack.sql("SELECT count(*) FROM asset")
    stack.gateway.stop()  # a running gateway makes its index again
    try:
        done = _uninstall(stack)
        assert done.returncode == 0, done.stderr
        for line in ("dropped schema aio", "dropped database zhparser"):
            assert line in done.stdout
        assert "http://immich-machine-learning:3003" in done.stdout and "ViT-B-32__openai" in done.stdout
        assert stack.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'aio'") == "0"
        assert stack.sql("SELECT count(*) FROM pg_extension WHERE extname = 'zhparser'") == "0"
        assert stack.sql("SELECT count(*) FROM pg_ts_config WHERE cfgname = 'chinese'") == "0"
        assert psql("SELECT count(*) FROM pg_database WHERE datname = 'zhparser'", port=stack.postgres.port) == "0"
        assert (stack.sql(tables), stack.sql("SELECT count(*) FROM asset")) == (immich_tables, assets)

        logged = len(stack.immich.log_path.read_text(errors="replace"))
        stack.immich.restart()
        started = stack.immich.log_path.read_text(errors="replace")[logged:]
        assert "No schema drift detected" in started, started[-3000:]
        # Immich's own OCR search, straight to Immich: no gateway involved.
        found = stack.immich.ok("POST", "/api/search/metadata", alice, json={"ocr": "咖啡"})
        assert stack.photos["cafe"] in [item["id"] for item in found["assets"]["items"]]
        again = _uninstall(stack)
        assert again.returncode == 0 and "nothing of ours was in the database" in again.stdout
    finally:
        stack.gateway.start()
    # Back in: the gateway makes its schema and index again by itself.
    assert eventually(lambda: stack.found(alice, "咖啡"), 180, "ocr: answers again") == before
    eventually(stack.index_matches_immich, 60, "the index holds every photo with OCR text, and no other")
