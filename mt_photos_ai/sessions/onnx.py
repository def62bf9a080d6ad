"""CLIP on ONNX Runtime, from files exported once from the cn-clip checkpoint (export.py).

The files live in CLIP_DOWNLOAD_ROOT/onnx/<model>/: visual.onnx and textual.onnx (batch axis
dynamic; the text graph takes the padding mask as an input), cn-clip's vocab.txt, and
config.json (the model's facts, and the checkpoint they were made from). Neither torch nor
cn-clip is needed to run them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mt_photos_ai.clip_models import ClipModel

# The export's own version, in config.json: files of an older one are made again where torch is
# (2: the image graph runs its last block for the class token alone).
EXPORT_FORMAT = 2


class OnnxFiles:
    def __init__(self, root: Path, model: ClipModel) -> None:
        self.model = model
        self.directory = root / "onnx" / model.name
        self.visual = self.directory / "visual.onnx"
        self.textual = self.directory / "textual.onnx"
        self.vocab = self.directory / "vocab.txt"
        self.config = self.directory / "config.json"

    def complete(self) -> bool:
        return all(path.is_file() for path in (self.visual, self.textual, self.vocab, self.config))

    def read_config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.config.read_text())
        return config

    def made_from(self, weights: Path) -> bool:
        """Whether the files were exported from this very checkpoint file, by this export."""
        if not self.complete():
            return False
        config = self.read_config()
        return config.get("checkpoint") == checkpoint_stamp(weights) and config.get("format") == EXPORT_FORMAT


def checkpoint_stamp(weights: Path) -> dict[str, Any]:
    stat = weights.stat()
    return {"file": weights.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class OnnxClipSession:
    runtime = "onnx"

    def __init__(self, files: OnnxFiles, device: str, threads: int = 0) -> None:
        config = files.read_config()
        if config.get("model") != files.model.name or config.get("dimension") != files.model.dimension:
            raise ValueError(f"{files.config} describes {config.get('model')}, not {files.model.name}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        # Without a GPU nothing is batched (engines/clip.py): a batch axis fixed at 1 lets ONNX
        # Runtime fold the graph's shape arithmetic and fuse its MatMul+Add pairs into Gemm
        # (bench/clip_vs_upstream.py: the image graph as fast as a file exported for one image).
        self._one_at_a_time = device != "cuda"
        if self._one_at_a_time:
            options.add_free_dimension_override_by_name("batch", 1)
        wanted = ["CUDAExecutionProvider"] if device == "cuda" else []
        providers = [p for p in wanted if p in ort.get_available_providers()] + ["CPUExecutionProvider"]
        self._visual = ort.InferenceSession(str(files.visual), options, providers=providers)
        self._textual = ort.InferenceSession(str(files.textual), options, providers=providers)
        self.providers: list[str] = self._visual.get_providers()
        self.vocab = files.vocab

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        return self._run(self._visual, {"pixels": pixels})

    def encode_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._run(self._textual, {"input_ids": ids, "attention_mask": mask})

    def _run(self, session: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> np.ndarray:
        count = len(next(iter(inputs.values())))
        if self._one_at_a_time and count > 1:
            return np.concatenate(
                [self._run(session, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(count)]
            )
        out: np.ndarray = session.run(None, inputs)[0]
        return out

    def release(self) -> None:
        del self._visual, self._textual
