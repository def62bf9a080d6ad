"""Reciprocal rank fusion and its paging, on hand-made rankings."""

from __future__ import annotations

import random

from gateway.search.mixed import Fusion


def test_a_sign_clip_ranks_low_reaches_the_first_page():
    clip = [f"photo{i}" for i in range(200)] + ["coffee-sign"]
    ocr = ["coffee-sign", "menu"]
    first_page = Fusion().page(clip, ocr, page=1, size=10)
    assert first_page[0] in ("photo0", "coffee-sign") and "coffee-sign" in first_page[:2]
    assert "menu" in first_page


def test_an_asset_in_both_lists_wins():
    assert Fusion().fuse(["a", "b", "c"], ["c", "d"])[0] == "c"


def test_weights_tilt_the_order():
    assert Fusion(clip_weight=1, ocr_weight=0.1).fuse(["a", "b"], ["b2"])[:2] == ["a", "b"]
    assert Fusion(clip_weight=0.1, ocr_weight=1).fuse(["a", "b"], ["b2"])[0] == "b2"


def test_pages_never_repeat_and_lose_nothing():
    rng = random.Random(3)
    for _ in range(50):
        universe = [f"a{i}" for i in range(60)]
        clip = rng.sample(universe, rng.randint(0, 40))
        ocr = rng.sample(universe, rng.randint(0, 25))
        size = rng.randint(1, 9)
        fusion = Fusion()
        seen: list[str] = []
        page = 1
        while True:
            items = fusion.page(clip, ocr, page, size)
            if not items:
                break
            seen.extend(items)
            page += 1
        assert len(seen) == len(set(seen))
        assert set(seen) == set(clip) | set(ocr)
