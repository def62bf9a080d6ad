"""Re-processing through Immich's own jobs: by our route and by Immich's tag, for a normal user
and the admin (whose key the gateway holds)."""

from __future__ import annotations

import httpx
import pytest

from testing.immich_server import User
from testing.waiting import a_step_begun_after_now, eventually
from tests.e2e.conftest import Stack

TAG = "AI/Reprocess"


def ocr_at(stack: Stack, asset: str) -> str:
    return stack.sql(f'SELECT "ocrAt" FROM asset_job_status WHERE "assetId" = \'{asset}\'')


def tagged(stack: Stack, asset: str) -> bool:
    count = stack.sql(
        f'SELECT count(*) FROM tag_asset ta JOIN tag t ON t.id = ta."tagId" '
        f"WHERE ta.\"assetId\" = '{asset}' AND t.value = '{TAG}'"
    )
    return count != "0"


def processed_again(stack: Stack, asset: str, before: str) -> bool:
    return ocr_at(stack, asset) not in ("", before) and stack.processed(asset)


def test_reprocess_by_route_for_the_owner_and_the_admin_only(stack: Stack):
    alice, bob = stack.user("alice"), stack.user("bob")
    asset = stack.upload(alice, "route", ["重新识别这张照片", "Reprocess Me"])
    eventually(lambda: stack.processed(asset), 180, "Immich processed the photo")
    route = f"{stack.proxy.url}/api/ai/assets/{asset}/reprocess"
    assert httpx.post(route, headers=bob.key_headers, timeout=60).status_code == 404
    for caller in (alice, stack.admin):
        stack.immich.wait_idle()
        before = ocr_at(stack, asset)
        answer = httpx.post(route, headers=caller.key_headers, timeout=60)
        assert answer.status_code == 202, answer.text
        eventually(lambda b=before: processed_again(stack, asset, b), 180, f"re-processed for {caller.email}")
    assert "重新识别" in stack.ocr_text(asset)


@pytest.mark.parametrize("who", ["alice", "admin"])
def test_reprocess_by_tag_once_and_the_tag_stays_gone(stack: Stack, who: str):
    owner: User = stack.admin if who == "admin" else stack.user(who)
    asset = stack.upload(owner, f"tagged-{who}", [f"标签触发{who}", "Tagged Photo"])
    eventually(lambda: stack.processed(asset), 180, "Immich processed the photo")
    stack.immich.wait_idle()
    before = ocr_at(stack, asset)
    [tag] = [t for t in stack.immich.ok("PUT", "/api/tags", owner, json={"tags": [TAG]}) if t["value"] == TAG]
    stack.immich.ok("PUT", f"/api/tags/{tag['id']}/assets", owner, json={"ids": [asset]})
    eventually(lambda: processed_again(stack, asset, before), 180, "the tagged photo was re-processed")
    eventually(lambda: not tagged(stack, asset), 60, "the gateway removed the tag")
    stack.immich.wait_idle()
    after = ocr_at(stack, asset)

    # Immich's metadata refresh reads the file and its XMP sidecar again: the tag must not return,
    # so the photo is not re-processed a second time.
    stack.immich.ok("POST", "/api/assets/jobs", owner, json={"assetIds": [asset], "name": "refresh-metadata"})
    stack.immich.wait_idle()
    a_step_begun_after_now(stack.health, "reprocess", 60)  # it reads the tags as the refresh left them
    assert not tagged(stack, asset)
    assert TAG not in stack.sql(f"SELECT array_to_string(tags, ',') FROM asset_exif WHERE \"assetId\" = '{asset}'")
    stack.immich.wait_idle()
    assert ocr_at(stack, asset) == after
