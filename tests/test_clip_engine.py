"""The Chinese-CLIP engine: real cn-clip code, checkpoints made from random weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
from cn_clip import clip as cn_clip
from PIL import Image

from mt_photos_ai.engines.clip import ClipEngine, ClipUnavailable, create_random_checkpoint, model_facts
from mt_photos_ai.images import decode_image
from testing.images import encode


def picture(color: tuple[int, int, int], size=(640, 480)) -> Image.Image:
    image = Image.new("RGB", size, color)
    image.paste((255 - color[0], 40, 90), (100, 100, 300, 260))
    return image


def test_model_facts_match_cn_clip_models():
    assert {name: model_facts(name)[:2] for name in cn_clip.available_models()} == {
        "ViT-B-16": (512, 224),
        "ViT-L-14": (768, 224),
        "ViT-L-14-336": (768, 336),
        "ViT-H-14": (1024, 224),
        "RN50": (1024, 224),
    }


def test_vectors_are_unit_length_float32_and_deterministic(clip_engine):
    images = clip_engine.encode_images([picture((200, 10, 10))])
    again = clip_engine.encode_images([picture((200, 10, 10))])
    assert images.dtype == np.float32 and images.shape == (1, 1024)
    assert np.linalg.norm(images[0]) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(images, again)
    texts = clip_engine.encode_texts(["一只猫"])
    assert np.linalg.norm(texts[0]) == pytest.approx(1.0, abs=1e-5)


def test_batch_equals_single(clip_engine):
    a, b = picture((200, 10, 10)), picture((10, 200, 10))
    batch = clip_engine.encode_images([a, b])
    single = np.concatenate([clip_engine.encode_images([a]), clip_engine.encode_images([b])])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    texts = clip_engine.encode_texts(["猫在沙发上", "发票"])
    np.testing.assert_allclose(texts[1], clip_engine.encode_texts(["发票"])[0], atol=1e-5)


def test_chinese_text_is_tokenised_and_long_text_truncated(clip_engine):
    tokens = cn_clip.tokenize(["猫在沙发上"], context_length=52)[0].tolist()
    unknown = cn_clip._tokenizer.vocab["[UNK]"]
    words = [t for t in tokens if t not in (0, unknown)]
    assert len(words) == 5 + 2  # five characters between [CLS] and [SEP]
    a, b = clip_engine.encode_texts(["猫在沙发上", "一张发票"])
    assert not np.allclose(a, b)
    long = clip_engine.encode_texts(["很长的句子" * 100])
    assert long.shape == (1, 1024)


def test_vit_b_16_serves_512_dimensions(tmp_path):
    create_random_checkpoint("ViT-B-16", tmp_path)
    engine = ClipEngine("ViT-B-16", tmp_path, "cpu", auto_download=False)
    assert engine.encode_images([picture((1, 2, 3))]).shape == (1, 512)
    assert engine.encode_texts(["猫"]).shape == (1, 512)


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(ClipUnavailable) as refused:
        ClipEngine("ViT-B-16", tmp_path, "cpu", auto_download=False)
    assert str(tmp_path / "clip_cn_vit-b-16.pt") in str(refused.value)
    # With downloads allowed, cn-clip's own hub fetch is tried and fails here (offline).
    with pytest.raises(ClipUnavailable) as failed:
        ClipEngine("ViT-B-16", tmp_path, "cpu", auto_download=True)
    assert "clip_cn_vit-b-16.pt" in str(failed.value)


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
