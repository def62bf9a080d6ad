"""Giving memory back to the OS: the heap's free pages, and ONNX Runtime's arenas when idle.

Loading a model frees as much as it keeps (the parsed file, unpacked weights), and glibc keeps
the freed pages (measured here: 150-230 MiB per CLIP file). ONNX Runtime's CPU arena keeps
the largest working set it ever needed (OCR's detector: about 230 MiB on one 1440 px preview).
Both are kept while requests come, where they make the next one fast, and given back once the
service is idle.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

# A run with this option frees the arena's regions that no tensor uses when it ends.
_SHRINK = ort.RunOptions()
_SHRINK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
# The size of each dynamic axis of the tiny input that such a run is given.
_TINY = 32


# glibc's malloc_trim, from the symbols already in the process; None where the C library has none.
_trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)


def return_free_heap() -> bool:
    """Hand the heap's free pages back to the OS (glibc's malloc_trim); False where the C library
    has no such call (musl, macOS)."""
    if _trim is None:
        return False
    _trim(0)
    return True


def shrink_arena(session: ort.InferenceSession) -> None:
    """Free the regions of `session`'s CPU arena that hold no tensor, by one run on a tiny input
    (float inputs; every dynamic axis 1 for the batch, else 32)."""
    feeds = {
        tensor.name: np.zeros(
            [size if isinstance(size, int) else 1 if axis == 0 else _TINY for axis, size in enumerate(tensor.shape)],
            np.float32,
        )
        for tensor in session.get_inputs()
    }
    session.run(None, feeds, _SHRINK)
