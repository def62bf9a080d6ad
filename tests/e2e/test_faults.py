"""Faults in the real topology: the AI service down, the gateway killed mid-search, the database
restarted, Immich itself dying. After each, nothing is lost and nobody has to start a job by hand."""

from __future__ import annotations

import os
import signal
import threading

import httpx

from testing.waiting import eventually
from tests.e2e.conftest import Stack


def test_an_ai_service_killed_mid_batch_degrades_search_and_heals_without_an_operator(stack: Stack, photos):
    alice = stack.user("alice")
    eventually(lambda: stack.found(alice, "发票"), 60, "the invoice is indexed")
    batch = [stack.upload(alice, f"batch-{i}", [f"批量上传第{i}张", f"Batch {i}"]) for i in range(4)]
    eventually(lambda: any(stack.ocr_text(asset) for asset in batch), 180, "the batch is being processed")
    stack.ai.kill()
    try:
        # Immich's CLIP half of a plain search fails (its ML server is down): the OCR half answers.
        eventually(lambda: not stack.health()["backends"]["mt-photos-ai"]["healthy"], 30, "the outage is seen")
        plain = stack.search(alice, {"query": "发票"})
        assert plain.status_code == 200, plain.text
        assert plain.headers["x-immich-aio-degraded"] == "clip-unavailable"
        assert [item["id"] for item in plain.json()["assets"]["items"]] == [photos["invoice"]]
        # Photos uploaded during the outage: Immich runs each ML job once, and every one fails.
        during = [stack.upload(alice, f"outage-{i}", [f"停电期间第{i}张", f"Outage {i}"]) for i in range(3)]
        stack.immich.wait_idle()
        assert [stack.processed(asset) for asset in during] == [False] * 3
        assert set(stack.health()["selfHealing"]["owedQueues"]) == {"ocr", "smartSearch"}
    finally:
        stack.ai.start()
    for asset in [*batch, *during]:
        eventually(lambda a=asset: stack.processed(a), 180, f"healed without an operator: {asset}")
    eventually(lambda: stack.health()["selfHealing"]["owedQueues"] == [], 60, "nothing owed")
    assert photos["invoice"] in stack.ocr_ids(alice, "发票")


def test_the_gateway_killed_mid_search_loses_nothing_and_the_proxy_falls_back_to_immich(stack: Stack, photos):
    alice = stack.user("alice")
    before = eventually(lambda: stack.found(alice, "发票"), 60, "the invoice is indexed")
    answers: list[httpx.Response] = []
    started = threading.Barrier(5)

    def search() -> None:
        started.wait()
        for _ in range(5):
            answers.append(stack.search(alice, {"query": "发票"}))

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    stack.gateway.kill()
    for thread in threads:
        thread.join(120)
    try:
        # Every search got an answer, from the gateway or from Immich behind the proxy's fallback:
        # none is nginx's own 502 page.
        assert len(answers) == 20
        assert all(answer.headers["content-type"].startswith("application/json") for answer in answers)
        down = stack.search(alice, {"query": "发票"})
        straight = stack.immich.api("POST", "/api/search/smart", alice, json={"query": "发票"})
        assert down.status_code == straight.status_code and down.json().keys() == straight.json().keys()
    finally:
        stack.gateway.start()
    assert eventually(lambda: stack.found(alice, "发票"), 60, "ocr: answers again") == before
    eventually(stack.index_matches_immich, 60, "the index holds every photo with OCR text, and no other")


def test_a_database_restart_loses_nothing(stack: Stack, photos):
    alice = stack.user("alice")
    before = eventually(lambda: stack.found(alice, "咖啡"), 60, "the cafe is indexed")
    stack.postgres.restart()  # the tests' own server (testing/postgres.py), never the machine's

    assert eventually(lambda: stack.found(alice, "咖啡"), 120, "ocr: answers after the restart") == before
    eventually(stack.index_matches_immich, 60, "the index holds every photo with OCR text, and no other")
    # The whole pipeline works again: a new photo is processed, indexed and found.
    asset = stack.upload(alice, "after-restart", ["数据库重启之后", "After Restart"])
    eventually(lambda: stack.processed(asset), 180, "processed after the restart")
    assert eventually(lambda: stack.found(alice, "重启"), 60, "indexed after the restart") == [asset]


def test_immich_exiting_is_started_again_and_searches_come_back(stack: Stack, photos):
    """Immich's process dies (2.7.5's API worker did so once here when its database connection
    broke mid-write): started again as its container's restart policy does, the gateway's
    searches answer again with the same photos."""
    alice = stack.user("alice")
    before = eventually(lambda: stack.found(alice, "咖啡"), 60, "the cafe is indexed")
    restarts = stack.immich.restarts
    assert stack.immich.process is not None
    os.killpg(stack.immich.process.pid, signal.SIGKILL)
    eventually(lambda: stack.immich.restarts == restarts + 1, 120, "Immich is started again")
    assert eventually(lambda: stack.found(alice, "咖啡"), 120, "ocr: answers after Immich is back") == before
