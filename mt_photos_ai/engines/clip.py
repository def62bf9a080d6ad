"""Chinese-CLIP image and text embeddings: float32, L2-normalised, one model only.

The engine owns what is the same on every runtime: decoding-size, preprocessing (a bicubic
resize to the model's square resolution, cn-clip's mean and std), tokenising (cn-clip's BERT
vocabulary through HF tokenizers: the same ids as cn-clip's own tokenizer) and normalising.
The network runs in a session (sessions/): ONNX Runtime or torch, per RUNTIME.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import BertWordPieceTokenizer

from mt_photos_ai.batching import Batcher
from mt_photos_ai.clip_models import CONTEXT_LENGTH, MEAN, MODELS, STD, ClipModel
from mt_photos_ai.sessions import ClipSession, ClipUnavailable
from mt_photos_ai.settings import Settings

log = logging.getLogger(__name__)

_MEAN = np.array(MEAN, np.float32).reshape(3, 1, 1)
_STD = np.array(STD, np.float32).reshape(3, 1, 1)


class Tokenizer:
    """cn-clip's tokenisation: [CLS] + word pieces (at most 50) + [SEP], zero-padded to 52."""

    def __init__(self, vocab: Path) -> None:
        self._tokenizer = BertWordPieceTokenizer(
            str(vocab), lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True
        )
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros((len(texts), CONTEXT_LENGTH), np.int64)
        for row, encoding in enumerate(self._tokenizer.encode_batch(texts, add_special_tokens=False)):
            tokens = [self._cls, *encoding.ids[: CONTEXT_LENGTH - 2], self._sep]
            ids[row, : len(tokens)] = tokens
        return ids, (ids != 0).astype(np.int64)


class ClipEngine:
    def __init__(self, model: ClipModel, session: ClipSession, batching: tuple[int, float] | None = None) -> None:
        self.model = model
        self.session = session
        self.dimension = model.dimension
        self.resolution = model.resolution
        self.tokenize = Tokenizer(session.vocab)
        self._images: Batcher | None = None
        self._texts: Batcher | None = None
        if batching is not None:
            size, wait_s = batching
            self._images = Batcher("clip-images", session.encode_images, size, wait_s)
            self._texts = Batcher("clip-texts", session.encode_texts, size, wait_s)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """(3, r, r) float32 pixels of an RGB image, as cn-clip's own transform makes them."""
        size = (self.resolution, self.resolution)
        resized = np.asarray(image.resize(size, Image.Resampling.BICUBIC), np.float32) / 255.0
        pixels: np.ndarray = (resized.transpose(2, 0, 1) - _MEAN) / _STD
        return pixels

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        run = self._images or self.session.encode_images
        return _normalised(run(np.ascontiguousarray(pixels, np.float32)))

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.encode_pixels(np.stack([self.preprocess(image) for image in images]))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        # Long text is cut to the context length (as cn-clip does), not refused.
        ids, mask = self.tokenize(texts)
        if self._texts is not None:  # requests batched together share the full length
            return _normalised(self._texts(ids, mask))
        # Padding that no text of this batch needs is cut: masked tokens change nothing but cost.
        used = int(mask.sum(axis=1).max())
        return _normalised(self.session.encode_texts(ids[:, :used], mask[:, :used]))

    def release(self) -> None:
        for batcher in (self._images, self._texts):
            if batcher is not None:
                batcher.close()
        self.session.release()


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    result: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return result


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("cn_clip") is not None


def load_clip(settings: Settings) -> ClipEngine:
    """The configured model on the configured runtime. On ONNX Runtime the exported files are
    used, exported first when they are missing or were made from another checkpoint and torch
    is here to do it."""
    model = MODELS[settings.clip_model]
    root = settings.clip_download_root
    device = settings.resolved_device
    batching = (settings.clip_batch_size, settings.clip_batch_wait_ms / 1000) if device == "cuda" else None
    if batching and settings.clip_batch_wait_ms == 0:
        batching = None
    if settings.resolved_runtime == "torch":
        if not torch_installed():
            raise ClipUnavailable("RUNTIME=torch, but torch and cn-clip are not installed (the CPU image has neither)")
        from mt_photos_ai.sessions.torch import TorchClipSession

        return ClipEngine(model, TorchClipSession(model, root, device, settings.clip_auto_download), batching)
    from mt_photos_ai.sessions.onnx import OnnxClipSession, OnnxFiles

    files = OnnxFiles(root, model)
    weights = root / model.weights
    wanted = not files.complete() or (weights.is_file() and not files.made_from(weights))
    if wanted and torch_installed() and (weights.is_file() or settings.clip_auto_download):
        from mt_photos_ai.export import export_onnx

        try:
            export_onnx(model, root, settings.clip_auto_download)
        except ClipUnavailable:
            raise
        except Exception as exc:  # the exporter's own failures: named, not a 500
            raise ClipUnavailable(
                f"Exporting CLIP model {model.name} to ONNX failed: {type(exc).__name__}: {exc}"
            ) from exc
    elif wanted and files.complete():
        log.warning(
            "The ONNX files in %s were not made from %s by this release's export (another checkpoint, or "
            "an older export with a slower image graph); serving them as they are: run export-onnx where "
            "torch is installed to make them again",
            files.directory,
            weights,
        )
    if not files.complete():
        raise ClipUnavailable(
            f"CLIP model {model.name} on ONNX Runtime needs its exported files in {files.directory} "
            f"({files.visual.name}, {files.textual.name}, {files.vocab.name}, {files.config.name}). "
            + (
                f"They are made from {weights} on first load; it is missing and could not be fetched."
                if torch_installed()
                else "This install has no torch to make them: run `make onnx` in a checkout, the "
                "mt-photos-ai-onnx-export service of docker-compose.aio-cpu.yml, or `python -m mt_photos_ai "
                "export-onnx` wherever torch is installed, with the same CLIP_DOWNLOAD_ROOT (or copy that folder here)."
            )
        )
    try:
        return ClipEngine(model, OnnxClipSession(files, device), batching)
    except Exception as exc:  # onnxruntime raises its own kinds for a damaged file
        raise ClipUnavailable(
            f"The ONNX files in {files.directory} could not be loaded ({type(exc).__name__}: {exc}): delete the "
            "folder to export them again."
        ) from exc
