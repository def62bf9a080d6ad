"""The admin picks a CLIP model name whose dimension the AI service does not serve."""

from __future__ import annotations

from typing import Any

from testing.waiting import eventually
from tests.e2e.conftest import CLIP_DIMENSION, CLIP_NAME, Stack

OTHER = "ViT-B-16__openai"  # 512 dimensions


def set_clip_model(stack: Stack, name: str) -> None:
    def change(config: dict[str, Any]) -> None:
        config["machineLearning"]["clip"]["modelName"] = name

    stack.immich.configure(change)


def test_a_refused_clip_name_is_logged_once_with_its_reason_and_healed_when_fixed(stack: Stack, photos):
    alice = stack.user("alice")
    set_clip_model(stack, OTHER)  # Immich drops every CLIP vector when the model changes
    try:
        first = stack.upload(alice, "guard-1", ["模型维度不符", "Wrong Model"])
        second = stack.upload(alice, "guard-2", ["第二张照片", "Second Photo"])
        for asset in (first, second):
            eventually(lambda a=asset: stack.ocr_text(a), 180, f"OCR still works for {asset}")
        stack.immich.wait_idle()
        assert stack.clip_dimension(first) == stack.clip_dimension(second) == 0
        log = stack.gateway.log_text()
        refusals = [line for line in log.splitlines() if "CLIP request refused" in line]
        assert len(refusals) == 1 and '"WARNING"' in refusals[0]
        assert f"{OTHER} has 512 dimensions" in refusals[0] and CLIP_NAME in refusals[0]
        assert f"{OTHER} has 512 dimensions" in stack.health()["clip"]["refused"]
    finally:
        set_clip_model(stack, CLIP_NAME)
    # The first CLIP request that passes (here a search) owes Immich's smart-search queue, and the
    # gateway starts it: every photo gets its vector again, with no operator.
    assert stack.search(alice, {"query": "clip:照片"}).status_code == 200
    assert "refused" not in stack.health()["clip"]
    everyone = [*photos.values(), first, second]
    for asset in everyone:
        eventually(lambda a=asset: stack.clip_dimension(a) == CLIP_DIMENSION, 180, f"a vector again for {asset}")
