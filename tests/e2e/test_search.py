"""Searches through the proxy on Immich's port, as Immich's clients send them, checked against
what Immich itself answers the same user."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from testing.waiting import eventually
from tests.e2e.conftest import Stack

SDK = Path(__file__).parent.parent / "sdk"


def test_ocr_search_with_every_credential_form_a_client_sends(stack: Stack, photos):
    alice = stack.user("alice")
    url = f"{stack.proxy.url}/api/search/smart"
    dto = {"query": "ocr:发票"}
    eventually(lambda: stack.found(alice, "发票"), 60, "the invoice is indexed")
    forms = {
        "x-api-key": {"headers": {"x-api-key": alice.api_key}},
        "?apiKey=": {"params": {"apiKey": alice.api_key}},
        "bearer": {"headers": {"authorization": f"Bearer {alice.access_token}"}},
        "cookie": {"headers": {"cookie": f"immich_access_token={alice.access_token}"}},
        "x-immich-user-token": {"headers": {"x-immich-user-token": alice.access_token}},
    }
    found, mixed = {}, {}
    for form, how in forms.items():
        answer = httpx.post(url, json=dto, timeout=60, **how)
        assert answer.status_code == 200, (form, answer.text)
        found[form] = [item["id"] for item in answer.json()["assets"]["items"]]
        # A plain query: Immich's CLIP ranking (it checks the same credential) fused with ours.
        plain = httpx.post(url, json={"query": "发票"}, timeout=60, **how)
        assert plain.status_code == 200 and "x-immich-aio-degraded" not in plain.headers, (form, plain.text)
        mixed[form] = [item["id"] for item in plain.json()["assets"]["items"]][:1]
    assert found == {key: [photos["invoice"]] for key in forms}
    assert mixed == {key: [photos["invoice"]] for key in forms}
    refused = httpx.post(url, json=dto, headers={"x-api-key": "not-a-key"}, timeout=60)
    assert refused.status_code == 401  # Immich's own refusal, passed back


@pytest.mark.skipif(
    shutil.which("node") is None or not (SDK / "node_modules").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/sdk` (Immich's own SDK as the client; .ci/run installs it)",
)
def test_immichs_own_sdk_searches_through_the_proxy(stack: Stack, photos):
    alice = stack.user("alice")

    def sdk(dto: dict) -> dict:
        done = subprocess.run(
            ["node", str(SDK / "search.mjs"), f"{stack.proxy.url}/api", alice.api_key, json.dumps(dto)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(done.stdout)

    ocr = eventually(lambda: sdk({"query": "ocr:咖啡"})["assets"]["items"], 60, "the SDK finds the cafe")
    assert [item["id"] for item in ocr] == [photos["cafe"]]
    # A plain query: the mixed ranking, Immich's AssetResponseDto items, the cafe among them.
    plain = sdk({"query": "咖啡"})
    assert photos["cafe"] in [item["id"] for item in plain["assets"]["items"]]
    assert all("originalFileName" in item for item in plain["assets"]["items"])


def test_other_users_photos_never_and_partners_photos_when_in_the_timeline(stack: Stack, photos):
    alice, bob = stack.user("alice"), stack.user("bob")
    menu = photos["menu"]
    eventually(lambda: stack.found(bob, "烤鸭"), 60, "bob's menu is indexed")
    assert stack.ocr_ids(alice, "烤鸭") == [] and menu not in stack.immich_smart_ids(alice, "烤鸭")
    assert stack.ocr_ids(bob, "发票") == []
    # Bob shares his library with Alice; she shows it in her timeline.
    stack.immich.ok("POST", "/api/partners", bob, json={"sharedWithId": alice.id})
    try:
        assert stack.ocr_ids(alice, "烤鸭") == []  # shared, not yet in her timeline
        stack.immich.ok("PUT", f"/api/partners/{bob.id}", alice, json={"inTimeline": True})
        assert stack.ocr_ids(alice, "烤鸭") == [menu]
        assert menu in stack.immich_smart_ids(alice, "烤鸭")  # Immich's own smart search agrees
    finally:
        stack.immich.ok("DELETE", f"/api/partners/{alice.id}", bob)
    assert stack.ocr_ids(alice, "烤鸭") == []


def test_archive_trash_and_permanent_delete_as_immichs_own_search(stack: Stack, photos):
    alice = stack.user("alice")
    archived = stack.upload(alice, "archived", ["档案柜编号七", "Archive Box"])
    trashed = stack.upload(alice, "trashed", ["停车场收据", "Parking Receipt"])
    for asset in (archived, trashed):
        eventually(lambda a=asset: stack.processed(a), 180, f"Immich processed {asset}")
    eventually(lambda: stack.found(alice, "收据") and stack.found(alice, "档案"), 60, "both are indexed")

    stack.immich.ok("PUT", "/api/assets", alice, json={"ids": [archived], "visibility": "archive"})
    ours = archived in stack.ocr_ids(alice, "档案")
    # Each release's default visibility: Immich's own answer decides.
    assert ours == (archived in stack.immich_smart_ids(alice, "档案"))
    assert ours == (stack.immich.major >= 3)  # 2.x: the timeline only; 3.x: all but locked
    asked = stack.search(alice, {"query": "ocr:档案", "visibility": "archive"}).json()
    assert [item["id"] for item in asked["assets"]["items"]] == [archived]

    stack.immich.ok("DELETE", "/api/assets", alice, json={"ids": [trashed]})
    assert stack.ocr_ids(alice, "收据") == []
    assert trashed not in stack.immich_smart_ids(alice, "收据")
    stack.immich.ok("DELETE", "/api/assets", alice, json={"ids": [trashed], "force": True})
    eventually(lambda: stack.sql(f"SELECT count(*) FROM asset WHERE id = '{trashed}'") == "0", 60, "deleted")
    eventually(
        lambda: stack.sql(f"SELECT count(*) FROM aio.ocr_index WHERE asset_id = '{trashed}'") == "0",
        60,
        "the index forgot the deleted photo",
    )
    assert stack.ocr_ids(alice, "收据") == []


def test_plain_and_clip_searches_are_answered_by_immich(stack: Stack, photos):
    alice = stack.user("alice")
    clip = stack.search(alice, {"query": "clip:发票"})
    assert clip.status_code == 200
    # Immich's CLIP ranking over everything Alice may see, her photos only.
    assert {item["id"] for item in clip.json()["assets"]["items"]} == stack.immich_smart_ids(alice, "发票")
    plain = stack.search(alice, {"query": "发票"})
    assert plain.status_code == 200
    ids = [item["id"] for item in plain.json()["assets"]["items"]]
    assert ids[0] == photos["invoice"]  # first by OCR, so first in the fusion whatever CLIP says
    assert set(ids) <= stack.immich_smart_ids(alice, "发票")
    # Not a text query at all: Immich's own answer, passed back unchanged.
    odd = stack.search(alice, {"queryAssetId": photos["cafe"]})
    straight = stack.immich.api("POST", "/api/search/smart", alice, json={"queryAssetId": photos["cafe"]})
    assert odd.status_code == straight.status_code


def test_no_credential_in_any_log_line(stack: Stack, photos):
    """Every credential form, then every log: the gateway's, the AI service's and nginx's."""
    alice = stack.user("alice")
    url = f"{stack.proxy.url}/api/search/smart"
    for query in ("ocr:发票", "发票", "clip:发票"):
        for params in ({"apiKey": alice.api_key}, {"sessionKey": alice.access_token}):
            httpx.post(url, json={"query": query}, params=params, timeout=60)
        httpx.post(url, json={"query": query}, headers={"authorization": f"Bearer {alice.access_token}"}, timeout=60)
        httpx.post(url, json={"query": query}, headers={"x-api-key": alice.api_key}, timeout=60)
    httpx.post(f"{stack.proxy.url}/api/ai/assets/{photos['cafe']}/reprocess?apiKey={alice.api_key}", timeout=60)
    stack.immich.wait_idle()
    secrets = [
        secret for user in (stack.admin, *stack.immich.users.values()) for secret in (user.api_key, user.access_token)
    ]
    logs = {
        "gateway": stack.gateway.log_text(),
        "ai service": stack.ai.log_text(),
        "nginx access": stack.proxy.access_log.read_text(),
        "nginx error": stack.proxy.error_log.read_text() if stack.proxy.error_log.exists() else "",
    }
    leaked = {name: [s[:6] for s in secrets if s in text] for name, text in logs.items()}
    assert leaked == {key: [] for key in logs}
    # The searches were logged, without their credentials.
    assert re.search(r"POST /api/search/smart", logs["nginx access"])
    assert "/api/search/smart" in logs["gateway"]


@pytest.fixture
def traps(stack: Stack, photos) -> dict[str, str]:
    """Alice's photos whose text Immich's character pairs match wrongly or not at all (uploading
    the same file again gives the same asset: Immich keeps one copy)."""
    alice = stack.user("alice")
    found = {
        "boundary": stack.upload(alice, "boundary", ["研究生命起源", "Origin of Life"]),
        "student": stack.upload(alice, "student", ["研究生招生简章", "Graduate Admissions"]),
        "traditional": stack.upload(alice, "traditional", ["統一發票", "Uniform Invoice"]),
    }
    for asset in found.values():
        eventually(lambda a=asset: stack.processed(a), 180, f"Immich stored OCR text and a CLIP vector for {asset}")
    words = {"boundary": "起源", "student": "招生", "traditional": "統一"}
    for name, word in words.items():
        eventually(lambda n=name, w=word: found[n] in (stack.found(alice, w) or []), 60, f"{name} is indexed")
    return found


def test_immichs_own_ocr_search_type_through_the_proxy_is_word_precise_and_folded(stack: Stack, photos, traps):
    """The web app's OCR search request (the mobile apps send the same route), through the proxy
    and straight to Immich."""
    alice = stack.user("alice")
    boundary, student, traditional = traps["boundary"], traps["student"], traps["traditional"]

    def both(words: str) -> tuple[list[dict], list[dict]]:
        web = {"ocr": words, "visibility": "timeline", "page": 1, "withExif": True}
        ours = httpx.post(f"{stack.proxy.url}/api/search/metadata", json=web, headers=alice.key_headers, timeout=60)
        assert ours.status_code == 200, ours.text
        immichs = stack.immich.ok("POST", "/api/search/metadata", alice, json=web)
        return ours.json()["assets"]["items"], immichs["assets"]["items"]

    ours, immichs = both("研究生")
    assert [item["id"] for item in ours] == [student]  # a word, not two characters
    assert boundary in [item["id"] for item in immichs]  # Immich's trigram pairs find 研究 + 生命
    ours, immichs = both("发票")
    # Either script, newest taken first as Immich orders; Immich's own finds the simplified only.
    assert [item["id"] for item in ours] == [traditional, photos["invoice"]]
    assert [item["id"] for item in immichs] == [photos["invoice"]]
    # Immich's answer, item for item: the same fields, exifInfo included (withExif).
    [theirs] = immichs
    mine = next(item for item in ours if item["id"] == theirs["id"])
    assert set(theirs) <= set(mine) and mine["exifInfo"] and mine["originalFileName"] == theirs["originalFileName"]
    # Another user never sees Alice's photos; Immich's own agrees.
    bob = stack.user("bob")
    bobs = httpx.post(f"{stack.proxy.url}/api/search/metadata", json={"ocr": "发票"}, headers=bob.key_headers)
    assert (
        bobs.json()["assets"]["items"]
        == []
        == stack.immich.ok("POST", "/api/search/metadata", bob, json={"ocr": "发票"})["assets"]["items"]
    )


def test_smart_search_with_ocr_through_the_proxy_is_immichs_clip_order_over_word_matches(stack: Stack, photos, traps):
    """Smart search with `ocr` (the web app's smart search with an OCR filter; the mobile apps'
    context search with OCR text): through the proxy and straight to Immich."""
    alice = stack.user("alice")

    def both(dto: dict) -> tuple[list[str], list[str]]:
        ours = httpx.post(f"{stack.proxy.url}/api/search/smart", json=dto, headers=alice.key_headers, timeout=60)
        assert ours.status_code == 200, ours.text
        immichs = stack.immich.ok("POST", "/api/search/smart", alice, json=dto)
        return [i["id"] for i in ours.json()["assets"]["items"]], [i["id"] for i in immichs["assets"]["items"]]

    # Where Immich's matching is right (English words), the same photos in the same CLIP order.
    ours, immichs = both({"query": "an invoice", "ocr": "invoice"})
    assert sorted(ours) == sorted([photos["invoice"], traps["traditional"]]) and ours == immichs
    ours, immichs = both({"queryAssetId": photos["invoice"], "ocr": "invoice", "withExif": True})
    assert ours == immichs and ours[0] == photos["invoice"]  # the example itself is nearest
    # Words, not character pairs; either script.
    ours, immichs = both({"query": "招生", "ocr": "研究生"})
    assert ours == [traps["student"]] and traps["boundary"] in immichs
    ours, immichs = both({"query": "发票", "ocr": "发票"})
    assert sorted(ours) == sorted([photos["invoice"], traps["traditional"]]) and immichs == [photos["invoice"]]
    # Immich's filters still apply: nothing of Alice's is a favourite.
    assert both({"query": "发票", "ocr": "发票", "isFavorite": True}) == ([], [])


def test_names_single_characters_and_prefixes_are_found_on_both_routes(stack: Stack, photos):
    """What the dictionaries lack (a shop's name), a single character and the start of a Latin
    word: found by `ocr:`, by Immich's OCR search type and by smart search with `ocr` through the
    proxy, at least as Immich's own matching finds them straight from Immich."""
    alice = stack.user("alice")
    shop = stack.upload(alice, "shop", ["蜜雪冰城", "MIXUE ICE CREAM"])
    grooming = stack.upload(alice, "grooming", ["猫咪美容院"])
    for asset in (shop, grooming):
        eventually(lambda a=asset: stack.processed(a), 180, f"Immich stored OCR text and a CLIP vector for {asset}")
    eventually(lambda: grooming in (stack.found(alice, "美容") or []), 60, "the grooming sign is indexed")
    for words, asset in {"蜜雪冰城": shop, "猫": grooming, "mixu": shop}.items():
        assert asset in stack.ocr_ids(alice, words), words
        web = {"ocr": words, "visibility": "timeline"}
        ours = httpx.post(f"{stack.proxy.url}/api/search/metadata", json=web, headers=alice.key_headers, timeout=60)
        immichs = stack.immich.ok("POST", "/api/search/metadata", alice, json=web)["assets"]["items"]
        assert ours.status_code == 200, ours.text
        found = [item["id"] for item in ours.json()["assets"]["items"]]
        assert asset in found and {item["id"] for item in immichs} <= set(found), (words, immichs)
        smart = {"query": words, "ocr": words}
        ours = httpx.post(f"{stack.proxy.url}/api/search/smart", json=smart, headers=alice.key_headers, timeout=60)
        immichs = stack.immich.ok("POST", "/api/search/smart", alice, json=smart)["assets"]["items"]
        found = [item["id"] for item in ours.json()["assets"]["items"]]
        assert asset in found and {item["id"] for item in immichs} <= set(found), (words, immichs)
