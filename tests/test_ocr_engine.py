"""The OCR engine on real RapidOCR models, with Immich's semantics."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mt_photos_ai.engines.ocr import OcrOptions, reading_order
from testing.images import encode, text_image

LINES = ["增值税电子普通发票", "Hello World 2024", "北京市朝阳区咖啡店"]


def read(engine, data: bytes, **options):
    return engine.read(Image.open(io.BytesIO(data)).convert("RGB"), OcrOptions(**options))


def test_reads_chinese_and_english_lines_in_reading_order(ocr_engine):
    image = text_image(LINES)
    result = read(ocr_engine, image.data)
    assert result.texts == LINES
    assert len(result.box_scores) == len(result.text_scores) == len(result.boxes) == 3
    assert all(score > 0.8 for score in result.text_scores)


def test_boxes_enclose_the_drawn_text(ocr_engine):
    image = text_image(LINES)
    result = read(ocr_engine, image.data)
    for corners, (left, top, right, bottom) in zip(result.boxes, image.boxes, strict=True):
        xs, ys = corners[:, 0], corners[:, 1]
        slack = 6
        assert xs.min() <= left + slack and xs.max() >= right - slack
        assert ys.min() <= top + slack and ys.max() >= bottom - slack
        # Corners come top-left, top-right, bottom-right, bottom-left.
        assert corners[0, 0] < corners[1, 0] and corners[3, 1] > corners[0, 1]


def test_lines_side_by_side_are_read_left_to_right():
    # Two boxes on one line (y within 10 px), the right one slightly higher, then one below.
    boxes = np.array(
        [
            [[500, 100], [600, 100], [600, 130], [500, 130]],
            [[10, 95], [100, 95], [100, 125], [10, 125]],
            [[10, 200], [100, 200], [100, 230], [10, 230]],
        ],
        np.float32,
    )
    boxes[0, :, 1] -= 8  # right box 3 px higher than the left one
    assert reading_order(boxes).tolist() == [1, 0, 2]


def test_recognition_min_score_filters_lines(ocr_engine):
    image = text_image(LINES)
    assert read(ocr_engine, image.data, text_min_score=0.0).texts == LINES
    # A line is kept only when its score is strictly above minScore.
    assert read(ocr_engine, image.data, text_min_score=1.0).texts == []


def test_detection_min_score_filters_boxes(ocr_engine):
    image = text_image(LINES)
    assert read(ocr_engine, image.data, box_min_score=0.99).texts == []


def test_max_resolution_sets_the_detection_size(ocr_engine, monkeypatch):
    seen = []
    session = ocr_engine.detector.session

    def spy(tensor):
        seen.append(tensor.shape)
        return session(tensor)

    monkeypatch.setattr(ocr_engine.detector, "session", spy)
    image = text_image(LINES, size=(1440, 960))
    read(ocr_engine, image.data, max_resolution=736)
    read(ocr_engine, image.data, max_resolution=320)
    # Short side = maxResolution, long side scaled alike and rounded to a multiple of 32.
    assert seen == [(1, 3, 736, 1088), (1, 3, 320, 480)]  # 1104 -> 1088: round() as Immich


def test_tiny_and_blank_images_give_nothing(ocr_engine):
    from testing.images import encode

    assert read(ocr_engine, encode(Image.new("RGB", (31, 400), "white"))).texts == []
    assert read(ocr_engine, encode(Image.new("RGB", (800, 600), "white"))).texts == []


def _image(data: bytes) -> Image.Image:
    import io

    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize("turn", [180, 90, 270])
def test_text_at_any_angle_is_read(ocr_engine, turn):
    """A photo of a document held sideways or upside down, without EXIF orientation."""
    upright = _image(text_image(LINES[:2]).data)
    turned = upright.rotate(turn, expand=True)
    assert sorted(ocr_engine.read(turned, OcrOptions()).texts) == sorted(LINES[:2])


def test_an_upside_down_line_in_an_upright_photo_is_read(ocr_engine):
    photo = _image(text_image(["欢迎光临本店"], size=(960, 480)).data)
    line = photo.crop((60, 60, 600, 160)).rotate(180)
    photo.paste(line, (60, 260))
    assert sorted(ocr_engine.read(photo, OcrOptions()).texts) == ["欢迎光临本店", "欢迎光临本店"]


def test_a_vertical_column_of_chinese_is_read(ocr_engine):
    from PIL import ImageDraw

    from testing.images import font

    image = Image.new("RGB", (400, 900), "white")
    draw = ImageDraw.Draw(image)
    for i, character in enumerate("停车场入口"):
        draw.text((170, 80 + i * 104), character, font=font(96), fill="black")
    assert ocr_engine.read(image, OcrOptions()).texts == ["停车场入口"]


def test_without_the_angle_classifier_upside_down_text_is_lost():
    from mt_photos_ai.engines.ocr import OcrEngine

    upside_down = _image(text_image(LINES[:2]).data).rotate(180)
    assert OcrEngine("cpu", angle_classifier=False).read(upside_down, OcrOptions()).texts != LINES[:2]


@pytest.fixture(scope="module", params=["bundled", "PP-OCRv5_mobile"])
def engine_of_each_version(request, ppocrv5_dir):
    """The engine on the wheel's bundled models, and on PP-OCRv5 mobile: one code path."""
    from mt_photos_ai.engines.ocr import OcrEngine
    from mt_photos_ai.engines.ocr_models import BUNDLED, choose

    model = BUNDLED if request.param == "bundled" else choose(request.param, ppocrv5_dir, auto_download=False)
    return OcrEngine("cpu", angle_classifier=True, model=model)


def test_each_model_version_reads_the_lines_in_order(engine_of_each_version):
    image = text_image(LINES)
    result = read(engine_of_each_version, image.data)
    # PP-OCRv5 mobile reads "HelloWorld": spaces between words are each model's own.
    assert [t.replace(" ", "") for t in result.texts] == [line.replace(" ", "") for line in LINES]
    assert all(score > 0.8 for score in result.text_scores)
    upside_down = Image.open(io.BytesIO(text_image(["增值税电子普通发票"], size=(900, 200)).data)).rotate(180)
    assert read(engine_of_each_version, encode(upside_down)).texts == ["增值税电子普通发票"]  # the classifier


def test_the_asked_model_is_served_from_its_folder_or_the_bundled_one_says_why(ppocrv5_dir, tmp_path):
    from mt_photos_ai.engines.ocr_models import choose

    found = choose("PP-OCRv5_mobile", ppocrv5_dir, auto_download=False)
    assert not found.bundled and found.missing is None
    assert found.detection == ppocrv5_dir / "PP-OCRv5_mobile" / "detection" / "model.onnx"
    # A language prefix names the recognition model; detection is shared (the stock server's layout).
    english = choose("EN__PP-OCRv5_mobile", ppocrv5_dir, auto_download=False)
    assert english.bundled and "EN__PP-OCRv5_mobile/recognition/model.onnx is missing" in english.missing
    server = choose("PP-OCRv5_server", ppocrv5_dir, auto_download=False)
    assert server.bundled and "OCR_AUTO_DOWNLOAD is off" in server.missing
    # Online users get the files from RapidOCR's hub; here the fetch fails at once, and says so.
    offline = choose("PP-OCRv5_server", tmp_path, auto_download=True)
    assert offline.bundled and "could not be fetched" in offline.missing
    assert choose("x", ppocrv5_dir, auto_download=True).missing.startswith("x is not a model this service knows")
    assert choose("", ppocrv5_dir, auto_download=True) == choose("", tmp_path, auto_download=False)  # none asked


def test_ocr_threads_share_the_cores_among_the_request_threads():
    import os

    from mt_photos_ai.settings import Settings

    cores = os.cpu_count() or 1
    assert Settings(request_threads=2).resolved_ocr_threads == (max(1, cores // 2), cores)
    assert Settings(request_threads=cores * 4).resolved_ocr_threads == (1, cores)
    assert Settings(request_threads=2, ocr_threads=3).resolved_ocr_threads == (3, 3)


def test_an_image_read_alone_takes_every_core_and_one_read_beside_another_its_share(monkeypatch):
    from mt_photos_ai.engines.ocr import OcrEngine
    from mt_photos_ai.engines.ocr_sessions import SharedCoresSession

    engine = OcrEngine("cpu", angle_classifier=True, threads=(1, 2))
    sessions = [part.session.session for part in (engine.detector, engine.classifier, engine.recognizer)]
    assert all(isinstance(session, SharedCoresSession) for session in sessions)
    detector = sessions[0]
    assert detector.narrow.get_session_options().intra_op_num_threads == 1
    assert detector.wide.get_session_options().intra_op_num_threads == 2
    taken: list[str] = []
    for name in ("narrow", "wide"):
        session = getattr(detector, name)
        monkeypatch.setattr(session, "run", lambda *args, run=session.run, name=name: taken.append(name) or run(*args))
    image = text_image(LINES)
    assert read(engine, image.data).texts == LINES and taken == ["wide"]
    with detector.reads.entered():  # another request's image, being read
        assert read(engine, image.data).texts == LINES and taken == ["wide", "narrow"]
    assert read(engine, image.data).texts == LINES and taken == ["wide", "narrow", "wide"]
    # One number of threads: one session per model, as before.
    assert not isinstance(OcrEngine("cpu", threads=(2, 2)).detector.session.session, SharedCoresSession)
