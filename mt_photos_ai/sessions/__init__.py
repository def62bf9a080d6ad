"""CLIP sessions: torch and ONNX Runtime behind one interface, so the engine (preprocessing,
tokenising, normalising) is the same whichever runs the network.

A session takes what the network takes, as numpy: pixels (n, 3, r, r) float32, or token ids
and their padding mask (n, 52) int64; and gives unnormalised float32 vectors (n, dimension).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class ClipUnavailable(Exception):
    """The model cannot be served; the message names the cause and the fix."""


class ClipSession(Protocol):
    runtime: str
    providers: list[str]
    # cn-clip's vocabulary, for the tokenizer that feeds this session.
    vocab: Path

    def encode_images(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def release(self) -> None:
        """Free what the session holds (on CUDA, the cached device memory too)."""
