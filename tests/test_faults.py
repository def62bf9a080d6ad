"""The gateway under faults and hostile use: a hung database, loops that fail, deep pages, and
bodies that would be copied. (What compose publishes is checked in test_deploy.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx

from aio_common.background import Loop
from aio_common.forms import Form
from gateway.app import create_app
from gateway.settings import Settings
from testing.immich_db import immich_world
from testing.servers import serve

USER = str(uuid.uuid4())


@contextlib.contextmanager
def hung_database() -> Iterator[int]:
    """A server that accepts connections and never answers: a database that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


async def test_a_hung_database_delays_no_search():
    async with immich_world("3.2", {USER: "key"}) as world:
        world.immich.clip_ranking = ["clip-1", "clip-2"]
        with hung_database() as port:
            settings = Settings(
                db_hostname="127.0.0.1",
                db_port=port,
                db_password="",
                immich_server_url=world.url,
                connect_timeout=1.0,
                mt_photos_api="http://127.0.0.1:9",
                immich_api="http://127.0.0.1:9",
            )
            with serve(create_app(settings)) as url:
                async with httpx.AsyncClient(base_url=url, timeout=30, headers={"x-api-key": "key"}) as client:

                    async def timed(query: str) -> tuple[httpx.Response, float]:
                        started = time.monotonic()
                        response = await client.post("/api/search/smart", json={"query": query})
                        return response, time.monotonic() - started

                    plain = await asyncio.gather(*(timed("猫") for _ in range(5)))
                    ocr, ocr_took = await timed("ocr:发票")
    # Only the database loop waits on the database; the searches answer at once.
    assert all(
        r.status_code == 200 and [i["id"] for i in r.json()["assets"]["items"]] == ["clip-1", "clip-2"]
        for r, _ in plain
    )
    assert max(took for _, took in plain) < 0.9
    assert ocr.status_code == 503 and "unavailable" in ocr.json()["detail"] and ocr_took < 0.9


async def test_a_failing_loop_keeps_running_backs_off_and_says_why():
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError(f"boom {calls}")

    loop = Loop("test", step, interval=0.01)
    loop.start()
    for _ in range(300):
        if calls >= 4:
            break
        await asyncio.sleep(0.01)
    state = loop.state()
    await loop.stop()
    assert calls >= 4 and state["running"] is True
    # An error is shown only until the next success.
    assert state["lastError"] is None and state["lastErrorAt"] is None and state["lastSuccess"] is not None
    assert state["consecutiveFailures"] == 0
    assert loop.state()["running"] is False  # stopped and awaited


async def test_an_expected_outage_is_one_warning_per_change_without_a_traceback(caplog):
    errors = [ConnectionRefusedError("Immich is starting")] * 3 + [ConnectionRefusedError("Immich is migrating")]
    failures = list(errors)
    seen: list[dict] = []

    async def step() -> None:
        seen.append(loop.state())  # what /health shows between the steps
        if failures:
            raise failures.pop(0)

    loop = Loop("reprocess", step, interval=0.001, max_backoff=0.001, expected=(OSError,))
    with caplog.at_level(logging.INFO, logger="aio_common.background"):
        loop.start()
        for _ in range(1000):
            if loop.state()["lastSuccess"]:
                break
            await asyncio.sleep(0.005)
        await loop.stop()
    records = [r for r in caplog.records if r.name == "aio_common.background"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == ["reprocess waits: Immich is starting", "reprocess waits: Immich is migrating"]
    assert not any(r.exc_info for r in records) and not any(r.levelno >= logging.ERROR for r in records)
    assert [r.getMessage() for r in records if r.levelno == logging.INFO] == ["reprocess recovered"]
    assert any(s["lastError"] == "ConnectionRefusedError: Immich is starting" and s["lastErrorAt"] for s in seen)


def test_backoff_doubles_per_failure_up_to_its_limit():
    loop = Loop("test", lambda: asyncio.sleep(0), interval=1.0, max_backoff=10.0)
    delays = []
    for failures in range(6):
        loop.failures = failures
        delays.append(loop.delay())
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_asking_whether_a_form_has_an_image_copies_nothing():
    class Counting(Form):
        reads = 0

        def __getitem__(self, name: str) -> bytes:
            Counting.reads += 1
            return super().__getitem__(name)

    form = Counting(b"entries-image", {"entries": (0, 7), "image": (8, 13)})
    assert "image" in form and "text" not in form and Counting.reads == 0
    assert bytes(form.view("image")) == b"image" and Counting.reads == 0


async def test_a_deep_mixed_page_is_refused_fast_and_ping_stays_quick():
    async with immich_world("3.2", {USER: "key"}) as world:
        world.immich.clip_ranking = [f"clip-{i}" for i in range(3000)]
        settings = Settings(
            db_hostname="127.0.0.1",
            db_database_name=world.database,
            db_password="",
            immich_server_url=world.url,
            mt_photos_api="http://127.0.0.1:9",
            immich_api="http://127.0.0.1:9",
        )
        with serve(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60, headers={"x-api-key": "key"}) as client:
                deep = await client.post("/api/search/smart", json={"query": "咖啡", "page": 300, "size": 1000})
                deepest = asyncio.create_task(
                    client.post("/api/search/smart", json={"query": "咖啡", "page": 2, "size": 1000})
                )
                pings = []
                while not deepest.done():
                    started = time.monotonic()
                    assert (await client.get("/ping")).text == "pong"
                    pings.append(time.monotonic() - started)
                    await asyncio.sleep(0.005)
                last = await deepest
    assert deep.status_code == 400 and "MIXED_MAX_DEPTH" in deep.json()["detail"]
    assert last.status_code == 200 and len(last.json()["assets"]["items"]) == 1000
    assert pings and max(pings) < 0.25
