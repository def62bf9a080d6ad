"""Chinese-CLIP (cn-clip) image and text embeddings: float32, L2-normalised, one model only."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch
from cn_clip import clip as cn_clip
from cn_clip.clip import utils as cn_clip_utils
from PIL import Image

log = logging.getLogger(__name__)

CONTEXT_LENGTH = 52
_CONFIG_DIR = Path(cn_clip_utils.__file__).parent / "model_configs"


class ClipUnavailable(Exception):
    """The weights are missing and could not be fetched; the message says where they go."""


def model_facts(name: str) -> tuple[int, int, str]:
    """(embedding dimension, input resolution, weight file name) of a cn-clip model, from cn-clip itself."""
    struct = cn_clip_utils._MODEL_INFO[name]["struct"]
    vision = json.loads((_CONFIG_DIR / f"{struct.split('@')[0]}.json").read_text())
    return vision["embed_dim"], cn_clip_utils._MODEL_INFO[name]["input_resolution"], cn_clip_utils._MODELS[name][1]


class ClipEngine:
    def __init__(self, name: str, download_root: Path, device: str, auto_download: bool) -> None:
        self.name = name
        self.device = device
        self.dimension, self.resolution, filename = model_facts(name)
        self.weights = download_root / filename
        if not self.weights.is_file() and not auto_download:
            raise ClipUnavailable(self._missing_message("CLIP_AUTO_DOWNLOAD is off"))
        try:
            # cn-clip prints its configs on stdout; keep them out of the service's log stream.
            with contextlib.redirect_stdout(io.StringIO()):
                model, self.preprocess = cn_clip.load_from_name(name, device=device, download_root=str(download_root))
        except Exception as exc:  # the hub raises many kinds; all mean "no weights"
            raise ClipUnavailable(self._missing_message(f"{type(exc).__name__}: {exc}")) from exc
        self.model = model.eval()

    def _missing_message(self, cause: str) -> str:
        return (
            f"CLIP model {self.name} is not available: weights file {self.weights} is missing "
            f"and could not be fetched ({cause}). Download {self.weights.name} from the OFA-Sys "
            f"Chinese-CLIP release (Hugging Face or ModelScope) into {self.weights.parent}, "
            "or run once with internet access so cn-clip fetches it."
        )

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        with self._inference():
            features = self.model.encode_image(batch)
        return _normalised(features)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        # cn-clip's tokenizer truncates to the context length: long text is cut, not refused.
        tokens = cn_clip.tokenize(texts, context_length=CONTEXT_LENGTH).to(self.device)
        with self._inference():
            features = self.model.encode_text(tokens)
        return _normalised(features)

    def _inference(self) -> contextlib.AbstractContextManager[None]:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=torch.float16))
        return stack


def _normalised(features: torch.Tensor) -> np.ndarray:
    vectors = features.float()
    vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return vectors.cpu().numpy().astype(np.float32)


def create_random_checkpoint(name: str, download_root: Path, seed: int = 0) -> Path:
    """Write a checkpoint of a randomly initialised cn-clip model where `load_from_name` looks.

    For tests and benchmarks: no weights can be downloaded there, but the loading path is real.
    """
    _, _, filename = model_facts(name)
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = cn_clip_utils.create_model(cn_clip_utils._MODEL_INFO[name]["struct"])
    download_root.mkdir(parents=True, exist_ok=True)
    path = download_root / filename
    torch.save({"state_dict": model.state_dict()}, path)
    return path
