"""Mixed ranking for plain searches: Immich's CLIP ranking fused with the OCR word ranking by
reciprocal rank fusion (score = sum of weight / (k + rank) over the lists an asset is in).

Paging is consistent: page p is computed from both rankings taken p x size deep, replaying
pages 1..p-1 the same way and skipping what they showed, so no asset appears twice and, paging
on until `nextPage` is null, none is lost. Rankings are fetched that deep, so later pages cost
more; `clip:` and `ocr:` queries page each list on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fusion:
    k: float = 60.0
    clip_weight: float = 1.0
    ocr_weight: float = 1.0

    def fuse(self, clip: list[str], ocr: list[str]) -> list[str]:
        """Both rankings merged, best first, each asset once; ties keep CLIP's order first."""
        scores: dict[str, float] = {}
        for weight, ranking in ((self.clip_weight, clip), (self.ocr_weight, ocr)):
            for rank, asset_id in enumerate(ranking, start=1):
                scores[asset_id] = scores.get(asset_id, 0.0) + weight / (self.k + rank)
        first_seen = {asset_id: i for i, asset_id in enumerate(dict.fromkeys(clip + ocr))}
        return sorted(scores, key=lambda asset_id: (-scores[asset_id], first_seen[asset_id]))

    def page(self, clip: list[str], ocr: list[str], page: int, size: int) -> list[str]:
        """Page `page` (1-based) of `size` assets; `clip` and `ocr` must reach page x size deep
        where they have that many."""
        shown: set[str] = set()
        current: list[str] = []
        for number in range(1, page + 1):
            depth = number * size
            current = [a for a in self.fuse(clip[:depth], ocr[:depth]) if a not in shown][:size]
            shown.update(current)
        return current
