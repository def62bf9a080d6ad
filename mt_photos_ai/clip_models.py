"""The Chinese-CLIP models this service can serve: what each needs and gives, without importing
cn-clip (so the torch-free install knows them too). The facts are cn-clip's own; a test checks
them against the installed cn-clip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ClipModelName = Literal["ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "RN50"]

# Preprocessing shared by every cn-clip model: a bicubic resize to the square resolution, then
# these per-channel mean and standard deviation; texts padded to 52 tokens.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
CONTEXT_LENGTH = 52


@dataclass(frozen=True)
class ClipModel:
    name: str
    dimension: int
    resolution: int
    # The weight file cn-clip loads from CLIP_DOWNLOAD_ROOT (or fetches when online).
    weights: str


MODELS: dict[str, ClipModel] = {
    model.name: model
    for model in (
        ClipModel("ViT-B-16", 512, 224, "clip_cn_vit-b-16.pt"),
        ClipModel("ViT-L-14", 768, 224, "clip_cn_vit-l-14.pt"),
        ClipModel("ViT-L-14-336", 768, 336, "clip_cn_vit-l-14-336.pt"),
        ClipModel("ViT-H-14", 1024, 224, "clip_cn_vit-h-14.pt"),
        ClipModel("RN50", 1024, 224, "clip_cn_rn50.pt"),
    )
}
