"""Chinese + English OCR on RapidOCR's ONNX models (the wheel's, or the PP-OCRv5 model Immich
asks for: engines/ocr_models.py), with Immich's semantics.

Immich's own OCR model decides how the image is scaled, which boxes and lines are kept and in
what order they come back; this engine does the same so Immich stores the same kind of rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image
from rapidocr.ch_ppocr_cls import TextClassifier
from rapidocr.ch_ppocr_det import TextDetector
from rapidocr.ch_ppocr_det.utils import DBPostProcess
from rapidocr.ch_ppocr_rec import TextRecInput, TextRecognizer
from rapidocr.main import DEFAULT_CFG_PATH, root_dir
from rapidocr.utils.log import logger as rapidocr_logger
from rapidocr.utils.parse_parameters import ParseParams
from rapidocr.utils.process_img import get_rotate_crop_image
from rapidocr.utils.typings import LangRec, ModelType, OCRVersion

from mt_photos_ai.engines.ocr_models import BUNDLED, VERSION, OcrModel, choose, language_and_base
from mt_photos_ai.engines.ocr_sessions import ReadsInFlight, SharedCoresSession, wide_session
from mt_photos_ai.memory import shrink_arena
from mt_photos_ai.metrics import timed
from mt_photos_ai.settings import Settings

log = logging.getLogger(__name__)

MIN_SIDE = 32
# Boxes whose top-left corners differ by less than this many pixels in y are one line.
LINE_Y_TOLERANCE = 10
# Immich scales the short side to maxResolution (any value >= 1); a large value, or a long thin
# image, would make the detector's input enormous, so its long side is capped here (/info says so).
MAX_DETECTION_SIDE = 4096
# A small image is never enlarged, as the stock server's resize does not enlarge: enlarging gains
# no detail, only cost (bench/ocr_vs_stock.py: 4x made a 200x700 image 5-10x slower to read, and
# split its line in two).
MAX_UPSCALE = 1.0


@dataclass(frozen=True)
class OcrOptions:
    box_min_score: float = 0.5
    max_resolution: int = 736
    text_min_score: float = 0.8
    # The model Immich's request names (its recognition model's name); None: whichever serves.
    model: str | None = None


@dataclass
class OcrResult:
    texts: list[str] = field(default_factory=list)
    # (n, 4, 2) pixel corners in the given image: top-left, top-right, bottom-right, bottom-left.
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 2), np.float32))
    box_scores: list[float] = field(default_factory=list)
    text_scores: list[float] = field(default_factory=list)


class OcrEngine:
    """RapidOCR's detector, angle classifier (optional) and recognizer, each built once, from
    `model`'s files or the wheel's bundled ones: every model version takes the same path."""

    def __init__(
        self,
        device: str,
        angle_classifier: bool = True,
        cpu_arena: bool = True,
        model: OcrModel = BUNDLED,
        threads: tuple[int, int] = (0, 0),
    ) -> None:
        """`threads`: ONNX Runtime threads while several images are being read and while one
        is (0: its own default); different numbers give each model a narrow and a wide session."""
        rapidocr_logger.setLevel(logging.WARNING)  # its own (non-JSON) lines: warnings only
        changes: dict[str, object] = {
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.use_cuda": device == "cuda",
            "EngineConfig.onnxruntime.enable_cpu_mem_arena": cpu_arena,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads[0] or -1,
        }
        if not model.bundled:
            language, base = language_and_base(model.asked)
            size = ModelType(base.partition("_")[2])
            for part, path in (("Det", model.detection), ("Rec", model.recognition)):
                changes |= {
                    f"{part}.model_path": str(path),
                    f"{part}.ocr_version": OCRVersion(VERSION),
                    f"{part}.model_type": size,
                }
            changes["Rec.lang_type"] = LangRec(language)
        config = ParseParams.update_batch(ParseParams.load(DEFAULT_CFG_PATH), changes)
        parts = (config.Det, config.Cls, config.Rec)
        for part in parts:
            part.engine_cfg = config.EngineConfig[part.engine_type.value]
            part.model_root_dir = config.Global.model_root_dir or root_dir / "models"
        config.Rec.font_path = config.Global.font_path
        self.detector = TextDetector(config.Det)
        self.classifier = TextClassifier(config.Cls) if angle_classifier else None
        self.recognizer = TextRecognizer(config.Rec)
        self.models = [
            f"{part.ocr_version.value} {part.task_type.value} {part.model_type.value}"
            for part in parts
            if part is not config.Cls or angle_classifier
        ]
        self.providers = self.detector.session.session.get_providers()
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        holders = [part.session for part in (self.detector, self.classifier, self.recognizer) if part is not None]
        sessions = [holder.session for holder in holders]
        narrow, wide = threads
        self._reads = ReadsInFlight()
        if on_cpu and wide > narrow:
            for holder in holders:
                sessions.append(wide_session(holder.session, wide, cpu_arena))
                holder.session = SharedCoresSession(holder.session, sessions[-1], self._reads)
        # The arenas release_working_memory shrinks: the CPU ones, where they are on.
        self._arenas = sessions if cpu_arena and on_cpu else []

    def release(self) -> None:
        """Nothing to free by hand: the sessions go with the engine."""

    def release_working_memory(self) -> None:
        """Free what the arenas hold beyond the models: the next read allocates it again."""
        for session in self._arenas:
            shrink_arena(session)

    def read(self, image: Image.Image, options: OcrOptions) -> OcrResult:
        width, height = image.size
        if width < MIN_SIDE or height < MIN_SIDE:
            return OcrResult()
        with self._reads.entered():  # how the sessions share the cores
            return self._read(image, options)

    def _read(self, image: Image.Image, options: OcrOptions) -> OcrResult:
        with timed("ocr", "detect"):
            bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
            boxes, box_scores = self._detect(bgr, options)
        if len(boxes) == 0:
            return OcrResult()
        # A crop is turned upright when it is taller than wide; the classifier turns the lines
        # that are upside down (after that turn: sideways too) before they are read.
        with timed("ocr", "crop"):
            crops = [get_rotate_crop_image(bgr, box.copy()) for box in boxes]
        if self.classifier is not None:
            with timed("ocr", "classify"):
                crops = self.classifier(crops).img_list or crops
        with timed("ocr", "recognize"):
            recognized = self.recognizer(TextRecInput(img=crops))
        texts, text_scores = recognized.txts or (), recognized.scores
        keep = [i for i, score in enumerate(text_scores) if score > options.text_min_score]
        return OcrResult(
            texts=[texts[i] for i in keep],
            boxes=boxes[keep],
            box_scores=[float(box_scores[i]) for i in keep],
            text_scores=[float(text_scores[i]) for i in keep],
        )

    def _detect(self, bgr: np.ndarray, options: OcrOptions) -> tuple[np.ndarray, np.ndarray]:
        height, width = bgr.shape[:2]
        ratio = options.max_resolution / min(width, height)
        ratio = min(ratio, MAX_DETECTION_SIDE / max(width, height), MAX_UPSCALE)
        size = (_round32(width * ratio), _round32(height * ratio))
        resized = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        tensor = ((resized.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        prediction = self.detector.session(np.ascontiguousarray(tensor))
        # A fresh post-processor per call: its threshold is per request and the object is shared.
        postprocess = DBPostProcess(
            thresh=0.3,
            box_thresh=options.box_min_score,
            max_candidates=1000,
            unclip_ratio=1.6,
            use_dilation=True,
            score_mode="fast",
        )
        boxes, scores = postprocess(prediction, (height, width))
        if len(boxes) == 0:
            return np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32)
        boxes = np.asarray(boxes, dtype=np.float32)
        order = reading_order(boxes)
        return boxes[order], np.asarray(scores, dtype=np.float32)[order]


def reading_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of `boxes` top to bottom by line, then left to right within a line."""
    by_y = np.argsort(boxes[:, 0, 1], kind="stable")
    y = boxes[by_y, 0, 1]
    line = np.concatenate([[0], np.cumsum(np.diff(y) >= LINE_Y_TOLERANCE)])
    return by_y[np.lexsort((boxes[by_y, 0, 0], line))]


def _round32(value: float) -> int:
    return max(MIN_SIDE, round(int(value) / 32) * 32)


class OcrLoader:
    """Which OCR model serves (OCR_SERVE_MODEL, else the name Immich asks for, else OCR_MODEL)
    and how its engine is built: that model's files, else the wheel's bundled ones, with one
    WARNING per name that cannot be served."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.asked = settings.ocr_model
        self.model: OcrModel | None = None  # what the asked name resolved to, once loaded
        self._fallbacks_logged: set[str] = set()

    def ask(self, name: str | None) -> bool:
        """Serve Immich's model `name` from the next load (None: the one served now); True when
        it is a new name, whose engine must be loaded again (never with OCR_SERVE_MODEL)."""
        if name is None or name == self.asked:
            return False
        log.info("OCR model asked for: %s (was %s)", name or "none", self.asked or "none")
        self.asked = name
        return not self.settings.ocr_serve_model

    def load(self) -> OcrEngine:
        """The engine for the asked model (in a worker thread: finding it may download)."""
        settings = self.settings

        def build(model: OcrModel) -> OcrEngine:
            return OcrEngine(
                settings.resolved_device,
                settings.ocr_angle_classifier,
                settings.ocr_cpu_arena,
                model,
                settings.resolved_ocr_threads,
            )

        name = settings.ocr_serve_model or self.asked
        model = choose(name, settings.ocr_model_dir, settings.ocr_auto_download)
        try:
            engine = build(model)  # a model that cannot be served has no files: the bundled ones
        except Exception as exc:  # onnxruntime's kinds for a damaged file
            if model.bundled:
                raise
            model = OcrModel(model.asked, missing=f"{model.asked}'s files could not be loaded: {exc}"[:600])
            engine = build(model)
        if model.missing and model.asked not in self._fallbacks_logged:
            self._fallbacks_logged.add(model.asked)
            log.warning("OCR: %s; serving the bundled %s instead", model.missing, ", ".join(engine.models))
        self.model = model
        return engine
