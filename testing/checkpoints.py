"""Checkpoints of randomly initialised cn-clip models, written where cn-clip's own loader looks:
no weights can be downloaded here, but the loading path is the one users take."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from cn_clip.clip import utils as cn_clip_utils

from mt_photos_ai.clip_models import MODELS


def create_random_checkpoint(name: str, download_root: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = cn_clip_utils.create_model(cn_clip_utils._MODEL_INFO[name]["struct"])
    download_root.mkdir(parents=True, exist_ok=True)
    path = download_root / MODELS[name].weights
    torch.save({"state_dict": model.state_dict()}, path)
    return path
