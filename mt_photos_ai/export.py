"""cn-clip -> ONNX: the visual and textual encoders exported once from the checkpoint (torch
and cn-clip needed here, not to run them), with what the torch-free runtime needs beside them.

The text graph takes the token ids and the padding mask as inputs: a mask traced as a constant
from the example input gave other vectors. The batch axis is dynamic, and so is the token axis:
the engine cuts the padding that no text of a batch needs. The files are written to
a temporary folder and moved into place, so a crash never leaves a half-exported set, and are
checked against torch (cosine >= 0.9999) before they are used.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cn_clip import clip as cn_clip
from cn_clip.clip.model import VisualTransformer
from torch.jit._trace import TracerWarning

from mt_photos_ai.clip_models import CONTEXT_LENGTH, MEAN, STD, ClipModel
from mt_photos_ai.sessions.onnx import EXPORT_FORMAT, OnnxClipSession, OnnxFiles, checkpoint_stamp
from mt_photos_ai.sessions.torch import VOCAB, load_model

log = logging.getLogger(__name__)

OPSET = 17
MIN_COSINE = 0.9999


class _Visual(torch.nn.Module):
    """The image encoder. On a ViT the last block runs for the class token alone: the embedding
    is read from that token only, so the other tokens' last attention output and MLP are never
    used (about 7 % of the work; the same vectors: _check)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        visual = self.model.visual
        if not isinstance(visual, VisualTransformer):
            return self.model.encode_image(pixels)  # type: ignore[no-any-return]
        x = visual.conv1(pixels.type(self.model.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # patches as tokens
        cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = visual.ln_pre(torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype))
        x = x.permute(1, 0, 2)  # tokens first, as cn-clip's blocks take them
        *blocks, last = visual.transformer.resblocks
        for block in blocks:
            x = block(x)
        h = last.ln_1(x)
        x = x[:1] + last.attn(h[:1], h, h, need_weights=False, attn_mask=last.attn_mask)[0]
        x = x + last.mlp(last.ln_2(x))
        return visual.ln_post(x[0]) @ visual.proj  # type: ignore[no-any-return]


class _Textual(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model.bert(input_ids, attention_mask=attention_mask)[0]
        return hidden[:, 0, :] @ self.model.text_projection  # type: ignore[no-any-return]


def export_onnx(model: ClipModel, root: Path, auto_download: bool) -> OnnxFiles:
    """Export `model`'s encoders from its checkpoint in `root` (fetched if missing and allowed)."""
    files = OnnxFiles(root, model)
    network = load_model(model, root, "cpu", auto_download)
    weights = root / model.weights
    files.directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=files.directory.parent, prefix=f".{model.name}-") as scratch:
        staged = OnnxFiles(Path(scratch) / "root", model)
        staged.directory.mkdir(parents=True)
        pixels = torch.zeros(2, 3, model.resolution, model.resolution)
        ids = torch.from_numpy(_example_ids())
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about shape checks it freezes; the result is verified below instead.
            warnings.simplefilter("ignore", (TracerWarning, DeprecationWarning))
            # Wrappers in eval mode: export restores a module's mode afterwards, down to the model.
            torch.onnx.export(
                _Visual(network).eval(),
                (pixels,),
                str(staged.visual),
                input_names=["pixels"],
                output_names=["embedding"],
                dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
            torch.onnx.export(
                _Textual(network).eval(),
                (ids, (ids != 0).long()),
                str(staged.textual),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        shutil.copyfile(VOCAB, staged.vocab)
        staged.config.write_text(json.dumps(_config(model, weights), indent=2))
        _check(network, staged)
        if files.directory.exists():
            shutil.rmtree(files.directory)
        staged.directory.rename(files.directory)
    log.info("CLIP exported to ONNX", extra={"model": model.name, "directory": str(files.directory)})
    return files


def _example_ids() -> np.ndarray:
    """Two texts of different lengths, padded as the engine pads them."""
    tokens: np.ndarray = cn_clip.tokenize(
        ["一只猫", "a photo of an invoice 一张发票"], context_length=CONTEXT_LENGTH
    ).numpy()
    return tokens


def _config(model: ClipModel, weights: Path) -> dict[str, Any]:
    return {
        "model": model.name,
        "dimension": model.dimension,
        "resolution": model.resolution,
        "mean": MEAN,
        "std": STD,
        "context_length": CONTEXT_LENGTH,
        "checkpoint": checkpoint_stamp(weights),
        "exported_with": {pkg: importlib.metadata.version(pkg) for pkg in ("torch", "cn-clip")},
        "opset": OPSET,
        "format": EXPORT_FORMAT,
    }


def _check(network: Any, files: OnnxFiles) -> None:
    """The exported graphs must give torch's vectors, over images and texts of several lengths."""
    session = OnnxClipSession(files, "cpu")
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(3, 3, files.model.resolution, files.model.resolution)).astype(np.float32)
    texts = ["猫", "一只猫在沙发上睡觉", "增值税电子普通发票 Invoice No. 123 " * 4]
    ids = cn_clip.tokenize(texts, context_length=CONTEXT_LENGTH).numpy()
    with torch.inference_mode():
        torch_images = network.encode_image(torch.from_numpy(pixels)).numpy()
        torch_texts = network.encode_text(torch.from_numpy(ids)).numpy()
    onnx_images = session.encode_images(pixels)
    onnx_texts = session.encode_texts(ids, (ids != 0).astype(np.int64))  # all 52 tokens, as torch had them
    for name, ours, theirs in (("visual", onnx_images, torch_images), ("textual", onnx_texts, torch_texts)):
        cosine = float(np.min(_cosine(ours, theirs)))
        if cosine < MIN_COSINE:
            raise RuntimeError(f"the exported {name} encoder differs from torch (cosine {cosine:.6f})")


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    result: np.ndarray = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return result
