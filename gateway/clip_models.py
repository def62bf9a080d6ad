"""Immich's CLIP model names and their embedding dimensions (Immich's CLIP_MODEL_INFO table,
server/src/constants.ts, up to the SigLIP2 models of 2.3+).

Immich accepts only these names and sizes its vector column from them; a Chinese-CLIP model is
served under a name of the same dimension. CLIP_EXTRA_MODELS adds names a later Immich knows.
"""

from __future__ import annotations

CLIP_DIMENSIONS: dict[str, int] = {
    "RN101__openai": 512,
    "RN101__yfcc15m": 512,
    "ViT-B-16__laion400m_e31": 512,
    "ViT-B-16__laion400m_e32": 512,
    "ViT-B-16__openai": 512,
    "ViT-B-32__laion2b-s34b-b79k": 512,
    "ViT-B-32__laion2b_e16": 512,
    "ViT-B-32__laion400m_e31": 512,
    "ViT-B-32__laion400m_e32": 512,
    "ViT-B-32__openai": 512,
    "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k": 512,
    "XLM-Roberta-Large-Vit-B-32": 512,
    "RN50x4__openai": 640,
    "ViT-B-16-plus-240__laion400m_e31": 640,
    "ViT-B-16-plus-240__laion400m_e32": 640,
    "XLM-Roberta-Large-Vit-B-16Plus": 640,
    "LABSE-Vit-L-14": 768,
    "RN50x16__openai": 768,
    "ViT-B-16-SigLIP-256__webli": 768,
    "ViT-B-16-SigLIP-384__webli": 768,
    "ViT-B-16-SigLIP-512__webli": 768,
    "ViT-B-16-SigLIP-i18n-256__webli": 768,
    "ViT-B-16-SigLIP__webli": 768,
    "ViT-L-14-336__openai": 768,
    "ViT-L-14-quickgelu__dfn2b": 768,
    "ViT-L-14__laion2b-s32b-b82k": 768,
    "ViT-L-14__laion400m_e31": 768,
    "ViT-L-14__laion400m_e32": 768,
    "ViT-L-14__openai": 768,
    "XLM-Roberta-Large-Vit-L-14": 768,
    "nllb-clip-base-siglip__mrl": 768,
    "nllb-clip-base-siglip__v1": 768,
    "RN50__cc12m": 1024,
    "RN50__openai": 1024,
    "RN50__yfcc15m": 1024,
    "RN50x64__openai": 1024,
    "ViT-H-14-378-quickgelu__dfn5b": 1024,
    "ViT-H-14-quickgelu__dfn5b": 1024,
    "ViT-H-14__laion2b-s32b-b79k": 1024,
    "ViT-L-16-SigLIP-256__webli": 1024,
    "ViT-L-16-SigLIP-384__webli": 1024,
    "ViT-g-14__laion2b-s12b-b42k": 1024,
    "XLM-Roberta-Large-ViT-H-14__frozen_laion5b_s13b_b90k": 1024,
    "ViT-SO400M-14-SigLIP-384__webli": 1152,
    "nllb-clip-large-siglip__mrl": 1152,
    "nllb-clip-large-siglip__v1": 1152,
    "ViT-B-16-SigLIP2__webli": 768,
    "ViT-B-32-SigLIP2-256__webli": 768,
    "ViT-L-16-SigLIP2-256__webli": 1024,
    "ViT-L-16-SigLIP2-384__webli": 1024,
    "ViT-L-16-SigLIP2-512__webli": 1024,
    "ViT-SO400M-14-SigLIP2__webli": 1152,
    "ViT-SO400M-14-SigLIP2-378__webli": 1152,
    "ViT-SO400M-16-SigLIP2-256__webli": 1152,
    "ViT-SO400M-16-SigLIP2-384__webli": 1152,
    "ViT-SO400M-16-SigLIP2-512__webli": 1152,
    "ViT-gopt-16-SigLIP2-256__webli": 1536,
    "ViT-gopt-16-SigLIP2-384__webli": 1536,
}

# The name to pick in Immich for each cn-clip model: same dimension, and a name that says which
# architecture it is.
SUGGESTED_NAME = {
    "ViT-B-16": "ViT-B-16__openai",
    "ViT-L-14": "ViT-L-14__openai",
    "ViT-L-14-336": "ViT-L-14-336__openai",
    "ViT-H-14": "ViT-H-14__laion2b-s32b-b79k",
    "RN50": "RN50__openai",
}


class ClipNames:
    """Immich's table plus the operator's extra names (CLIP_EXTRA_MODELS)."""

    def __init__(self, extra: dict[str, int]) -> None:
        self.dimensions = {**CLIP_DIMENSIONS, **extra}

    def dimension(self, name: str) -> int | None:
        """The dimension Immich gives `name`; an `org/` prefix is dropped as Immich drops it."""
        return self.dimensions.get(name.rsplit("/", 1)[-1])

    def with_dimension(self, dimension: int) -> list[str]:
        return sorted(name for name, dim in self.dimensions.items() if dim == dimension)
