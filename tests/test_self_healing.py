"""Self-healing, fast, against stand-ins (tests/e2e shows it on the real Immich): the gateway
starts Immich's queues for the photos an outage or a refused CLIP model name left without
results, and says why it refused."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from gateway.app import create_app
from gateway.settings import Settings
from testing.images import text_image
from testing.ml import OCR_ENTRIES, clip_entries, immich_request
from testing.servers import free_port, serve
from testing.standins import Behaviour, ImmichServer, fake_ai, stock_immich_server
from testing.waiting import a_step_begun_after_now, eventually

ADMIN = "admin-key"


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    return eventually(condition, 10, what, interval=0.02)


def settings(ai_url: str, immich_url: str, **values: Any) -> Settings:
    return Settings(
        mt_photos_api=ai_url,
        immich_api=f"http://127.0.0.1:{free_port()}",
        immich_server_url=immich_url,
        immich_admin_api_key=ADMIN,
        db_port=free_port(),  # no database: healing needs only Immich's API
        health_interval=0.05,
        connect_timeout=1.0,
        read_timeout=5.0,
        **values,
    )


@contextlib.contextmanager
def healing_gateway() -> Iterator[tuple[Behaviour, ImmichServer, httpx.Client]]:
    """The gateway with an admin key before a stand-in AI service and Immich, once its start-up
    heal (both queues, for what failed while the gateway itself was down) is done and forgotten."""
    behaviour = Behaviour(dimension=1024, model="RN50")
    immich = ImmichServer()
    immich.add_user(str(uuid.uuid4()), ADMIN, is_admin=True)
    with (
        serve(fake_ai(behaviour)) as ai_url,
        serve(stock_immich_server(immich)) as immich_url,
        serve(create_app(settings(ai_url, immich_url))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        wait_for(lambda: sorted(immich.started()) == ["ocr", "smartSearch"], "the start-up heal")
        wait_for(lambda: client.get("/health").json()["selfHealing"]["owedQueues"] == [], "nothing owed")
        immich.jobs.clear()
        yield behaviour, immich, client


def test_queues_of_failed_requests_are_started_once_the_ai_service_is_back():
    with healing_gateway() as (behaviour, immich, client):
        behaviour.status = behaviour.ping_status = 503  # the AI service goes down
        wait_for(lambda: not client.get("/health").json()["backends"]["mt-photos-ai"]["healthy"], "the outage is seen")
        image = text_image(["停电"]).data
        assert client.post("/predict", **immich_request(OCR_ENTRIES, image=image)).status_code >= 500
        heal = client.get("/health").json()["selfHealing"]
        assert heal["owedQueues"] == ["ocr"] and heal["requestsWithoutResults"] == 1
        assert immich.started() == []  # nothing is started while the AI service is down

        immich.running.add("ocr")  # Immich still busy with the queue: the start is owed, not lost
        behaviour.status = behaviour.ping_status = 200
        wait_for(lambda: client.get("/health").json()["backends"]["mt-photos-ai"]["healthy"], "the AI service is back")
        a_step_begun_after_now(lambda: client.get("/health").json(), "heal", 10)  # with the AI service up
        assert immich.started() == [] and client.get("/health").json()["selfHealing"]["owedQueues"] == ["ocr"]
        immich.running.clear()
        wait_for(lambda: immich.started() == ["ocr"], "the OCR queue is started")
        assert [body for _, _, body, _ in immich.jobs] == [{"command": "start", "force": False}]
        wait_for(lambda: client.get("/health").json()["selfHealing"]["owedQueues"] == [], "nothing owed")


def test_a_refused_clip_name_is_logged_once_shown_in_health_and_heals_when_fixed(caplog):
    with healing_gateway() as (_, immich, client):
        wrong = immich_request(clip_entries("textual", "ViT-B-16__openai"), text="猫")
        for _ in range(3):
            refused = client.post("/predict", **wrong)
            assert refused.status_code == 422
        reason = refused.json()["detail"]
        assert "512 dimensions" in reason and "RN50__openai" in reason
        logged = [r for r in caplog.records if "CLIP request refused" in r.getMessage()]
        assert len(logged) == 1 and logged[0].levelname == "WARNING" and reason in logged[0].getMessage()
        assert client.get("/health").json()["clip"]["refused"] == reason
        assert immich.started() == []  # a refusal is not an outage

        fitting = client.post("/predict", **immich_request(clip_entries("textual", "RN50__openai"), text="猫"))
        assert fitting.status_code == 200
        assert "refused" not in client.get("/health").json()["clip"]
        # Immich went without vectors meanwhile: its smart-search queue is started for them.
        wait_for(lambda: immich.started() == ["smartSearch"], "the smart-search queue is started")


def test_immich_failing_a_queue_start_is_a_warning_and_the_queue_stays_owed(caplog):
    """Immich answers 500 to a job start while its own database restarts (seen on the real
    3.1.0 and 2.7.5): an expected outage, one WARNING line, no traceback; the queue stays owed
    and is started once Immich answers again."""
    with healing_gateway() as (behaviour, immich, client):
        immich.jobs_status = 500
        behaviour.status = 500  # a request the AI service fails: the OCR queue is owed
        image = text_image(["停电"]).data
        with caplog.at_level("WARNING", logger="aio_common.background"):
            assert client.post("/predict", **immich_request(OCR_ENTRIES, image=image)).status_code >= 500
            behaviour.status = 200
            wait_for(lambda: client.get("/health").json()["loops"]["heal"]["lastError"], "the start failed")
            assert client.get("/health").json()["selfHealing"]["owedQueues"] == ["ocr"]
            immich.jobs_status = 200
            wait_for(lambda: immich.started() == ["ocr"], "the OCR queue is started")
        heal_lines = [r for r in caplog.records if "heal" in r.getMessage()]
        assert heal_lines and all(r.levelname == "WARNING" and not r.exc_info for r in heal_lines)
