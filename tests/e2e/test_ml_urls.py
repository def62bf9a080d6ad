"""Immich's machine-learning URL list with the stock server after the gateway: Immich falls back
to it whenever the gateway is down, mixing another CLIP model's vectors into search. The gateway
reads the list Immich saved and says so, once in its log and in /health."""

from __future__ import annotations

import json
from typing import Any

from testing.waiting import eventually
from tests.e2e.conftest import Stack


def _set_urls(stack: Stack, urls: list[str]) -> None:
    def change(config: dict[str, Any]) -> None:
        config["machineLearning"]["urls"] = urls

    stack.immich.configure(change)


def test_a_fallback_url_after_the_gateway_is_reported(stack: Stack):
    assert stack.health()["immichMlUrls"]["warning"] is None
    _set_urls(stack, [stack.gateway.url, stack.faces_url])
    try:

        def reported() -> dict[str, Any] | None:
            state: dict[str, Any] = stack.health()["immichMlUrls"]
            return state if state["othersAfterGateway"] else None

        state = eventually(reported, 30, "the gateway reports the stock server listed after it")
        assert state["urls"] == [stack.gateway.url, stack.faces_url]
        assert state["othersAfterGateway"] == [stack.faces_url]
        assert stack.faces_url in state["warning"]
        # The other way round (the gateway as Immich's fallback) mixes nothing of ours: no warning.
        _set_urls(stack, [stack.faces_url, stack.gateway.url])
        eventually(lambda: stack.health()["immichMlUrls"]["warning"] is None, 30, "the warning is gone")
        assert stack.health()["immichMlUrls"]["urls"] == [stack.faces_url, stack.gateway.url]
    finally:
        _set_urls(stack, [stack.gateway.url])
    eventually(
        # Immich saves no list equal to its default (IMMICH_MACHINE_LEARNING_URL, the gateway here).
        lambda: stack.health()["immichMlUrls"]["urls"] in (None, [stack.gateway.url]),
        30,
        "the list is back",
        detail=lambda: json.dumps({k: stack.health()[k] for k in ("immichMlUrls", "loops")}),
    )
    lines = [json.loads(line) for line in stack.gateway.log_text().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["level"] == "WARNING" and "after this gateway" in line["message"]]
    assert len(warnings) == 1, warnings  # once per change, not once per check
