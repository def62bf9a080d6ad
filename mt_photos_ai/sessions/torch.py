"""CLIP on torch through cn-clip's own loading path (load_from_name: the weights in
CLIP_DOWNLOAD_ROOT, fetched through huggingface_hub when missing and allowed). On CUDA it runs
under fp16 autocast; vectors come back as float32."""

from __future__ import annotations

import contextlib
import gc
import io
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cn_clip import clip as cn_clip

from mt_photos_ai.clip_models import ClipModel
from mt_photos_ai.sessions import ClipUnavailable

VOCAB = Path(cn_clip.__file__).parent / "vocab.txt"
# How long the hub may take to answer before the weights count as unfetchable (offline).
HUB_PROBE_TIMEOUT = 5.0


def load_model(model: ClipModel, root: Path, device: str, auto_download: bool) -> Any:
    """cn-clip's model in eval mode (float32 on the CPU), or ClipUnavailable naming the real
    cause: weights missing and not fetched, a corrupt file, weights of another model, or memory."""
    weights = root / model.weights
    if not weights.is_file() and not auto_download:
        raise ClipUnavailable(_missing(model, weights, "CLIP_AUTO_DOWNLOAD is off"))
    if not weights.is_file() and (offline := _hub_unreachable()):
        raise ClipUnavailable(_missing(model, weights, offline))
    try:
        # cn-clip prints its configs on stdout; keep them out of the service's log stream.
        with contextlib.redirect_stdout(io.StringIO()):
            loaded, _ = cn_clip.load_from_name(model.name, device=device, download_root=str(root))
    except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
        raise ClipUnavailable(
            f"CLIP model {model.name} does not fit in {device} memory ({type(exc).__name__}: {exc}). "
            "Choose a smaller CLIP_MODEL, or free memory."
        ) from exc
    except Exception as exc:  # the hub, torch.load and load_state_dict raise many kinds
        cause = f"{type(exc).__name__}: {exc}"
        if not weights.is_file():
            raise ClipUnavailable(_missing(model, weights, cause)) from exc
        if "state_dict" in str(exc):
            raise ClipUnavailable(
                f"Weights file {weights} does not fit CLIP model {model.name} ({cause[:500]}): "
                f"it belongs to another model. Download {weights.name} for {model.name}."
            ) from exc
        raise ClipUnavailable(
            f"Weights file {weights} could not be read ({cause[:500]}): it is corrupt or incomplete. "
            f"Delete it and download {weights.name} again."
        ) from exc
    return loaded.eval()


def _hub_unreachable() -> str | None:
    """Why the weights cannot be fetched now (None: the hub answers), found at once: offline,
    huggingface_hub would retry for about half a minute before giving up."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=HUB_PROBE_TIMEOUT)
    except urllib.error.HTTPError:
        return None  # an answer, whatever its status: the hub is reachable
    except (OSError, ValueError) as exc:
        return f"{constants.ENDPOINT} cannot be reached: {exc}"
    return None


def _missing(model: ClipModel, weights: Path, cause: str) -> str:
    return (
        f"CLIP model {model.name} is not available: weights file {weights} is missing and could not "
        f"be fetched ({cause}). Download {weights.name} from the OFA-Sys Chinese-CLIP release "
        f"(Hugging Face or ModelScope) into {weights.parent}, or run once with internet access."
    )


class TorchClipSession:
    runtime = "torch"
    vocab = VOCAB

    def __init__(self, model: ClipModel, root: Path, device: str, auto_download: bool) -> None:
        self.device = device
        self.model = load_model(model, root, device, auto_download)
        self.providers = [device]

    def _inference(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=torch.float16))
        return stack

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        with self._inference():
            features = self.model.encode_image(torch.from_numpy(pixels).to(self.device))
        return _numpy(features)

    def encode_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # cn-clip's encode_text builds the same mask from the ids (padding id 0).
        with self._inference():
            features = self.model.encode_text(torch.from_numpy(ids).to(self.device))
        return _numpy(features)

    def release(self) -> None:
        del self.model
        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()


def _numpy(features: torch.Tensor) -> np.ndarray:
    out: np.ndarray = features.float().cpu().numpy()
    return out
