"""AI replicas behind one URL, as a Kubernetes Service puts them (the manifests in
deploy/kubernetes), and behind a list of URLs (MT_PHOTOS_API=a,b): spreading, one replica
down, and a rollout that changes the CLIP model under the dimension guard."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from testing.ml import clip_entries, immich_request
from testing.service_proxy import Endpoints, service
from testing.standins import Behaviour, fake_ai
from testing.waiting import eventually
from tests.test_gateway import dead_url, gateway, predict, replicas, standin

TEXT = {"text": "猫"}


def vector_length(answer: httpx.Response) -> int:
    return len(orjson.loads(answer.json()["clip"]))


async def concurrently(gateway_url: str, count: int) -> list[httpx.Response]:
    """`count` CLIP requests at once: the gateway opens several connections to the Service."""
    request = immich_request(clip_entries("textual", "ViT-B-16__openai"), **TEXT)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        return await asyncio.gather(*(http.post("/predict", **request) for _ in range(count)))


async def test_one_url_spreads_concurrent_requests_over_the_pods():
    with standin(fake_ai) as (a_url, a), standin(fake_ai) as (b_url, b), service(Endpoints([a_url, b_url])) as url:
        with gateway(mt_photos_api=url, immich_api=dead_url()) as client:
            answers = await concurrently(str(client.base_url), 8)
            [replica] = replicas(client)
    assert all(answer.status_code == 200 for answer in answers)
    assert a.received and b.received  # the Service chose per connection; the gateway opened several
    assert replica["healthy"] and replica["url"] == url


def test_one_url_with_a_dead_pod_still_answers_every_request():
    """A pod that died before the Service noticed: its connections fail, and the gateway's one
    retry takes a new connection, which the Service gives to another pod."""
    entries = clip_entries("textual", "ViT-B-16__openai")
    endpoints = Endpoints([])
    with service(endpoints) as url, gateway(mt_photos_api=url, immich_api=dead_url()) as client:
        with standin(fake_ai) as (live_url, live):
            endpoints.ready = [dead_url(), live_url]
            answers = [predict(client, entries, **TEXT) for _ in range(6)]
            assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
            assert len(live.received) == 6
        # The last pod is gone too: the gateway says so (503, naming the Service), and /health too.
        down = predict(client, entries, **TEXT)
        assert down.status_code == 503 and url in down.json()["detail"]
        eventually(lambda: not replicas(client)[0]["healthy"], 10, "the Service is marked down", interval=0.05)
        with standin(fake_ai) as (back_url, back):
            endpoints.ready = [back_url]
            eventually(lambda: replicas(client)[0]["healthy"], 10, "the Service is marked up again", interval=0.05)
            assert predict(client, entries, **TEXT).status_code == 200 and len(back.received) == 1


def test_a_list_with_one_replica_down_sends_everything_to_the_other():
    with standin(fake_ai) as (live_url, live):
        gone = dead_url()
        with gateway(mt_photos_api=f"{gone},{live_url}", immich_api=dead_url()) as client:
            answers = [predict(client, clip_entries("textual", "ViT-B-16__openai"), **TEXT) for _ in range(6)]
            eventually(lambda: not replicas(client)[0]["healthy"], 10, "the dead replica is marked down", interval=0.05)
    assert [a.status_code for a in answers] == [200] * 6 and len(live.received) == 6


def test_a_rollout_behind_one_url_never_passes_a_vector_of_the_other_model():
    """ViT-B-16 (512) pods replaced by RN50 (1024) pods behind the same Service: while both
    serve, each answer's length is checked against Immich's model name, and a vector of the
    other model is refused, never passed on; once the old pods are gone, the old name is
    refused (422 with the names that fit) and an RN50 name is served."""
    old, new = Behaviour(dimension=512, model="ViT-B-16"), Behaviour(dimension=1024, model="RN50")
    entries = clip_entries("textual", "ViT-B-16__openai")
    endpoints = Endpoints([])
    with standin(fake_ai, new) as (new_url, _), service(endpoints) as url:
        with gateway(mt_photos_api=url, immich_api=dead_url()) as client:
            with standin(fake_ai, old) as (old_url, _):
                endpoints.ready = [old_url]
                eventually(lambda: client.get("/health").json()["clip"]["dimension"] == 512, 10, "ViT-B-16 learned")
                assert vector_length(predict(client, entries, **TEXT)) == 512
                endpoints.ready = [old_url, new_url]
                during = asyncio.run(concurrently(str(client.base_url), 12))  # several connections
                endpoints.ready = [new_url]
            # The old pods are gone (their connections with them).

            def old_name_refused() -> bool:
                return predict(client, entries, **TEXT).status_code == 422

            eventually(old_name_refused, 10, "the old name is refused once only RN50 serves", interval=0.05)
            assert "RN50__openai" in predict(client, entries, **TEXT).json()["detail"]
            assert vector_length(predict(client, clip_entries("textual", "RN50__openai"), **TEXT)) == 1024
            assert client.get("/health").json()["clip"]["dimension"] == 1024
    for answer in during:
        assert answer.status_code in (200, 502), answer.text
        if answer.status_code == 200:
            assert vector_length(answer) == 512
    assert all("1024-dimensional CLIP vector" in a.json()["detail"] for a in during if a.status_code == 502)
    assert new.received and old.received  # both models served during the rollout
