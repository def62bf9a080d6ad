"""Results that follow Immich's editor (2.5+ through the API, 3.x in the web too): a crop that
cuts a line of text out, the edit removed again, a 90° rotation. Immich's editor job hides the
lines a crop cuts out (and shows them again when the edit goes) without a mark in asset_ocr's
change feed; the index follows it through Immich's asset updates within a sync, not at the
next full comparison (INDEX_RECONCILE_INTERVAL, ten minutes here)."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.search.feeds import LAG
from testing.images import text_image
from testing.immich_server import User
from testing.waiting import eventually
from tests.e2e.conftest import Stack

# Words no other test searches for, in the admin's library: the search tests count what they find.
TOP, BOTTOM = "雪山登山队", "游泳馆会员卡"
# Lines at y = 80 and y = 720 of a 1440×960 photo: the crop keeps the top half.
LINES = [TOP, "", "", "", BOTTOM]
TOP_HALF = {"x": 0, "y": 0, "width": 1440, "height": 480}


def _ocr_search(stack: Stack, user: User, words: str) -> list[str]:
    """`ocr:` and Immich's own OCR search type, through the proxy: both answered from the index."""
    found = []
    for dto in ({"query": f"ocr:{words}"}, {"ocr": words}):
        route = "smart" if "query" in dto else "metadata"
        answer = httpx.post(f"{stack.proxy.url}/api/search/{route}", json=dto, headers=user.key_headers, timeout=60)
        assert answer.status_code == 200, answer.text
        found.append([item["id"] for item in answer.json()["assets"]["items"]])
    return found[0] if found[0] == found[1] else [f"the routes differ: {found}"]


def _boxes(stack: Stack, asset: str) -> str:
    return stack.sql(
        "SELECT string_agg(concat_ws(',', text, \"isVisible\", x1, y1, x3, y3), ';' ORDER BY y1)"
        f" FROM asset_ocr WHERE \"assetId\" = '{asset}'"
    )


def _vector(stack: Stack, asset: str) -> str:
    return stack.sql(f"SELECT embedding::text FROM smart_search WHERE \"assetId\" = '{asset}'")


def _edited_previews(stack: Stack, asset: str) -> int:
    return int(stack.sql(f'SELECT count(*) FROM asset_file WHERE "assetId" = \'{asset}\' AND "isEdited"'))


def _edit(stack: Stack, user: User, asset: str, edits: list[dict[str, Any]] | None) -> None:
    """Apply `edits` (None: remove them) and wait until Immich's editor job has run."""
    if edits is None:
        answer = stack.immich.api("DELETE", f"/api/assets/{asset}/edits", user)
    else:
        answer = stack.immich.api("PUT", f"/api/assets/{asset}/edits", user, json={"edits": edits})
    assert answer.status_code < 300, answer.text
    want = 0 if edits is None else 1
    eventually(
        lambda: _edited_previews(stack, asset) >= want if want else _edited_previews(stack, asset) == 0,
        60,
        "Immich's editor job ran",
    )
    stack.immich.wait_idle()


def test_results_follow_a_crop_its_removal_and_a_rotation(stack: Stack):
    admin = stack.admin
    image = text_image(LINES, font_size=64)
    asset = stack.immich.upload(admin, image.data, "edited.jpg")
    eventually(lambda: stack.processed(asset), 180, "Immich stored OCR text and a CLIP vector")
    eventually(lambda: asset in _ocr_search(stack, admin, "会员卡"), 60, "the photo is indexed")
    # Each pass re-reads the minute before the newest OCR change it has seen: a photo read more
    # than a minute later moves that past this one, so only a feed that shows the edit finds it.
    older = f"now() - interval '{int(LAG.total_seconds()) + 5} seconds'"
    eventually(
        lambda: stack.sql(f'SELECT "ocrAt" < {older} FROM asset_job_status WHERE "assetId" = \'{asset}\'') == "t",
        120,
        "a minute has passed since Immich read the photo",
    )
    later = stack.immich.upload(admin, text_image(["市立图书馆"], font_size=64).data, "later.jpg")
    eventually(lambda: later in _ocr_search(stack, admin, "图书馆"), 180, "a later photo is indexed")
    boxes, vector = _boxes(stack, asset), _vector(stack, asset)

    _edit(stack, admin, asset, [{"action": "crop", "parameters": TOP_HALF}])
    hidden = {line.split(",")[0]: line.split(",")[1] for line in _boxes(stack, asset).split(";")}
    assert hidden == {TOP: "t", BOTTOM: "f"}, hidden  # Immich hid the line the crop cut out
    eventually(lambda: asset not in _ocr_search(stack, admin, "会员卡"), 30, "the cut-out line is no longer found")
    assert asset in _ocr_search(stack, admin, "登山")
    assert _vector(stack, asset) == vector  # Immich keeps the whole photo's CLIP vector

    _edit(stack, admin, asset, None)
    assert _boxes(stack, asset) == boxes
    eventually(lambda: asset in _ocr_search(stack, admin, "会员卡"), 30, "the line is found again")

    _edit(stack, admin, asset, [{"action": "rotate", "parameters": {"angle": 90}}])
    # The boxes stay in the original's coordinates, every line visible: the same text is found.
    assert _boxes(stack, asset) == boxes
    assert asset in _ocr_search(stack, admin, "会员卡") and asset in _ocr_search(stack, admin, "登山")
    assert _vector(stack, asset) == vector


def _ocr_at(stack: Stack, asset: str) -> str:
    return stack.sql(f'SELECT "ocrAt" FROM asset_job_status WHERE "assetId" = \'{asset}\'')


def test_reprocessing_an_edited_photo_keeps_what_immich_cannot_redo(stack: Stack):
    """Immich's OCR job reads the unedited photo (the cut-out line would be found again) and its
    Smart Search job fails on an edited photo (the vector would be lost): found here on the real
    Immich before re-processing learnt to keep those results."""
    admin = stack.admin
    asset = stack.immich.upload(admin, text_image(LINES, font_size=64).data, "edited-reprocessed.jpg")
    eventually(lambda: stack.processed(asset), 180, "Immich stored OCR text and a CLIP vector")
    route = f"{stack.proxy.url}/api/ai/assets/{asset}/reprocess"

    _edit(stack, admin, asset, [{"action": "crop", "parameters": TOP_HALF}])
    eventually(lambda: asset not in _ocr_search(stack, admin, "会员卡"), 60, "the cut-out line is not found")
    refused = httpx.post(route, headers=admin.key_headers, timeout=60)
    assert refused.status_code == 409 and "Remove the edit first" in refused.text, refused.text
    stack.immich.wait_idle()
    assert stack.clip_dimension(asset) > 0 and asset not in _ocr_search(stack, admin, "会员卡")

    _edit(stack, admin, asset, [{"action": "rotate", "parameters": {"angle": 90}}])
    eventually(lambda: asset in _ocr_search(stack, admin, "会员卡"), 60, "uncropped, the line is found again")
    before = _ocr_at(stack, asset)
    answer = httpx.post(route, headers=admin.key_headers, timeout=60)
    assert answer.status_code == 202, answer.text
    assert answer.json()["queued"] == ["ocr"] and list(answer.json()["kept"]) == ["smartSearch"], answer.text
    eventually(lambda: _ocr_at(stack, asset) not in ("", before), 180, "Immich read the photo again")
    stack.immich.wait_idle()
    assert stack.clip_dimension(asset) > 0
    assert asset in _ocr_search(stack, admin, "会员卡") and asset in _ocr_search(stack, admin, "登山")
