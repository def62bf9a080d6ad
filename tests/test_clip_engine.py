"""Chinese-CLIP on both runtimes: the real cn-clip code and loading path with checkpoints made from
random weights, exported to ONNX through the service's own path and compared with torch."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cn_clip import clip as cn_clip
from cn_clip.clip import utils as cn_clip_utils
from PIL import Image

from mt_photos_ai.clip_models import MODELS
from mt_photos_ai.engines.clip import ClipEngine, Tokenizer, load_clip
from mt_photos_ai.images import decode_image
from mt_photos_ai.sessions import ClipUnavailable
from mt_photos_ai.sessions.onnx import OnnxFiles
from mt_photos_ai.sessions.torch import VOCAB
from mt_photos_ai.settings import Settings
from testing.checkpoints import create_random_checkpoint
from testing.images import encode
from testing.servers import free_port

TEXTS = [
    "猫",
    "一只猫在沙发上睡觉",
    "增值税电子普通发票 Invoice No. 123",
    "ＦＵＬＬ－ＷＩＤＴＨ　全角",
    "emoji 🐱 and accents café naïve",
    "很长的句子" * 40,
    "",
]


def picture(color: tuple[int, int, int], size=(640, 480)) -> Image.Image:
    image = Image.new("RGB", size, color)
    image.paste((255 - color[0], 40, 90), (100, 100, 300, 260))
    return image


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def settings_for(root: Path, model: str, runtime: str, **extra) -> Settings:
    return Settings(
        clip_model=model, clip_download_root=root, clip_auto_download=False, device="cpu", runtime=runtime, **extra
    )


def test_the_model_facts_are_cn_clips():
    configs = Path(cn_clip_utils.__file__).parent / "model_configs"
    for name in cn_clip.available_models():
        info = cn_clip_utils._MODEL_INFO[name]
        vision = json.loads((configs / f"{info['struct'].split('@')[0]}.json").read_text())
        model = MODELS[name]
        assert (model.dimension, model.resolution) == (vision["embed_dim"], info["input_resolution"])
        assert model.weights == cn_clip_utils._MODELS[name][1]
    assert set(MODELS) == set(cn_clip.available_models())


def test_tokenizer_gives_cn_clips_ids():
    ids, mask = Tokenizer(VOCAB)(TEXTS)
    expected = cn_clip.tokenize(TEXTS, context_length=52).numpy()
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(mask, (expected != 0).astype(np.int64))


def test_preprocessing_gives_cn_clips_pixels(clip_engine):
    image = picture((200, 30, 90), size=(731, 517))
    transform = cn_clip_utils.image_transform(224)
    np.testing.assert_allclose(clip_engine.preprocess(image), transform(image).numpy(), atol=1e-5)


@pytest.mark.parametrize("model", ["RN50", "ViT-B-16"])
def test_onnx_vectors_equal_torchs(model, clip_root, vit_root):
    root = clip_root if model == "RN50" else vit_root
    onnx = load_clip(settings_for(root, model, "onnx"))  # exported on first load
    torch_ = load_clip(settings_for(root, model, "torch"))
    assert (onnx.session.runtime, torch_.session.runtime) == ("onnx", "torch")
    images = [picture((200, 10, 10)), picture((10, 200, 10), size=(300, 900)), picture((5, 5, 250), size=(224, 224))]
    assert cosine(onnx.encode_images(images), torch_.encode_images(images)).min() >= 0.9999
    assert cosine(onnx.encode_texts(TEXTS), torch_.encode_texts(TEXTS)).min() >= 0.9999
    assert onnx.encode_images(images[:1]).shape == (1, MODELS[model].dimension)
    # The engine cuts unneeded padding; cn-clip's own path pads every text to 52 tokens.
    with torch.inference_mode():
        padded = torch_.session.model.encode_text(cn_clip.tokenize(TEXTS, context_length=52)).numpy()
    assert cosine(onnx.encode_texts(TEXTS), padded).min() >= 0.9999


def test_exported_files_are_cached_and_remade_for_a_new_checkpoint_or_export(tmp_path):
    create_random_checkpoint("RN50", tmp_path, seed=1)
    files = OnnxFiles(tmp_path, MODELS["RN50"])
    first = load_clip(settings_for(tmp_path, "RN50", "auto"))
    made = files.visual.stat().st_mtime_ns
    config = json.loads(files.config.read_text())
    assert config["model"] == "RN50" and config["dimension"] == 1024 and config["context_length"] == 52
    assert files.vocab.read_text() == VOCAB.read_text()
    again = load_clip(settings_for(tmp_path, "RN50", "auto"))
    assert files.visual.stat().st_mtime_ns == made  # reused
    np.testing.assert_allclose(again.encode_texts(["猫"]), first.encode_texts(["猫"]), atol=1e-6)
    files.config.write_text(json.dumps({**config, "format": config["format"] - 1}))  # an older export
    load_clip(settings_for(tmp_path, "RN50", "auto"))
    assert files.visual.stat().st_mtime_ns != made and json.loads(files.config.read_text()) == config
    made = files.visual.stat().st_mtime_ns
    create_random_checkpoint("RN50", tmp_path, seed=2)  # another checkpoint: exported again
    remade = load_clip(settings_for(tmp_path, "RN50", "auto"))
    assert files.visual.stat().st_mtime_ns != made
    assert cosine(remade.encode_texts(["猫"]), first.encode_texts(["猫"]))[0] < 0.99


def test_vectors_are_unit_length_float32_deterministic_and_batch_equals_single(clip_engine):
    a, b = picture((200, 10, 10)), picture((10, 200, 10))
    images = clip_engine.encode_images([a, b])
    assert images.dtype == np.float32 and images.shape == (2, 1024)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(images[1], clip_engine.encode_images([b])[0], atol=1e-5)
    np.testing.assert_array_equal(clip_engine.encode_images([a]), clip_engine.encode_images([a]))
    texts = clip_engine.encode_texts(["猫在沙发上", "发票"])
    np.testing.assert_allclose(texts[1], clip_engine.encode_texts(["发票"])[0], atol=1e-5)
    assert not np.allclose(texts[0], texts[1])


def test_an_unreachable_hub_is_reported_at_once_with_where_the_weights_go(tmp_path, monkeypatch):
    """Not offline mode, but no hub: the weights are reported missing without huggingface_hub's
    half a minute of retries (the hub here is a port where nothing listens)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")
    settings = settings_for(tmp_path, "ViT-B-16", "torch").model_copy(update={"clip_auto_download": True})
    with pytest.raises(ClipUnavailable) as failed:
        load_clip(settings)
    message = str(failed.value)
    assert f"{constants.ENDPOINT} cannot be reached" in message and f"into {tmp_path}" in message


def test_missing_corrupt_and_foreign_weights_are_named(tmp_path):
    with pytest.raises(ClipUnavailable) as missing:
        load_clip(settings_for(tmp_path, "ViT-B-16", "torch"))
    assert str(tmp_path / "clip_cn_vit-b-16.pt") in str(missing.value) and "missing" in str(missing.value)
    # With downloads allowed, cn-clip's own hub fetch is tried and fails here (offline).
    with pytest.raises(ClipUnavailable) as failed:
        load_clip(settings_for(tmp_path, "ViT-B-16", "torch").model_copy(update={"clip_auto_download": True}))
    assert "could not be fetched (HF_HUB_OFFLINE is set)" in str(failed.value)
    (tmp_path / "clip_cn_vit-b-16.pt").write_bytes(b"half a download")
    with pytest.raises(ClipUnavailable) as corrupt:
        load_clip(settings_for(tmp_path, "ViT-B-16", "torch"))
    assert "corrupt or incomplete" in str(corrupt.value)
    create_random_checkpoint("RN50", tmp_path)
    os.replace(tmp_path / "clip_cn_rn50.pt", tmp_path / "clip_cn_vit-b-16.pt")  # the wrong model's weights
    with pytest.raises(ClipUnavailable) as foreign:
        load_clip(settings_for(tmp_path, "ViT-B-16", "onnx"))
    assert "does not fit CLIP model ViT-B-16" in str(foreign.value)


def test_micro_batches_answer_each_request_its_own_row(clip_root):
    from concurrent.futures import ThreadPoolExecutor

    engine = load_clip(settings_for(clip_root, "RN50", "onnx"))
    batched = ClipEngine(engine.model, engine.session, batching=(8, 0.05))
    texts = [f"第{i}张发票" for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        rows = list(pool.map(lambda text: batched.encode_texts([text])[0], texts))
    np.testing.assert_allclose(np.stack(rows), engine.encode_texts(texts), atol=1e-5)


def test_jpeg_is_decoded_at_reduced_size_and_exif_applied():
    big = encode(picture((9, 9, 9), size=(4000, 3000)), "JPEG")
    decoded = decode_image(big, max_pixels=10**9, max_side=10000, min_side=224)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert 224 <= min(decoded.image.size) <= 3000 // 4
    rotated = Image.new("RGB", (300, 100), "white")
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90° when shown
    upright = decode_image(encode(rotated, "JPEG", exif=exif), max_pixels=10**9, max_side=10000)
    assert upright.image.size == (100, 300) and (upright.width, upright.height) == (100, 300)


def test_draft_decoding_keeps_the_vector_close(clip_engine):
    image = picture((120, 60, 200), size=(2400, 1800))
    data = encode(image, "JPEG", quality=95)
    full = clip_engine.encode_images([Image.open(io.BytesIO(data)).convert("RGB")])[0]
    reduced = clip_engine.encode_images([decode_image(data, max_pixels=10**9, max_side=10000, min_side=224).image])[0]
    assert float(full @ reduced) > 0.99
