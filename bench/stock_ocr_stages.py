"""The stock Immich ML server's OCR path, stage by stage, on the files named on the command line.

Run by bench/ocr_profile.py with the stock server's own Python (its venv, `immich_ml` on
PYTHONPATH, MACHINE_LEARNING_CACHE_FOLDER set), so it imports only what that venv has. It calls
immich_ml's own model classes the way its /predict does (decode_pil, TextDetector, TextRecognizer)
and times each part of their work. Prints one JSON object: stage -> median milliseconds per file
(the "(count)" ones: counts).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from immich_ml.models.ocr.detection import TextDetector
from immich_ml.models.ocr.recognition import TextRecognizer
from immich_ml.models.transforms import decode_pil
from rapidocr.ch_ppocr_rec import TextRecInput

MODEL = "PP-OCRv5_mobile"


class Stages:
    """Milliseconds per stage, a list per stage (one entry per file read)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)

    def timed(self, stage: str, work: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = work(*args)
        self.times[stage].append((time.perf_counter() - started) * 1000)
        return result


class CountedRuns:
    """Wraps a session's run: the time each call took."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self.run = run
        self.calls: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.run(*args, **kwargs)
        finally:
            self.calls.append((time.perf_counter() - started) * 1000)


def read(data: bytes, detector: TextDetector, recognizer: TextRecognizer, stages: Stages) -> None:
    """What immich_ml's /predict does for ocr, stage by stage."""
    image = stages.timed("decode", decode_pil, data)
    tensor = stages.timed("detect: resize and normalise", detector._transform, image)
    output = stages.timed("detect: forward", detector.session.run, None, {"x": tensor})[0]
    boxes, _ = stages.timed("detect: boxes", detector.postprocess, output, (image.height, image.width))
    if not len(boxes):
        return
    crops = stages.timed("crop", recognizer.get_crop_img_list, image, detector.sorted_boxes(boxes))
    session = recognizer.model.session.session
    counted = CountedRuns(session.run)
    session.run = counted
    try:
        stages.timed("recognize", recognizer.model, TextRecInput(img=crops))
    finally:
        session.run = counted.run
    stages.times["recognize: forward"].append(sum(counted.calls))
    stages.times["recognize: batches (count)"].append(len(counted.calls))
    stages.times["crop: lines (count)"].append(len(crops))


def main() -> None:
    rounds = int(sys.argv[1])
    files = [Path(name).read_bytes() for name in sys.argv[2:]]
    detector = TextDetector(MODEL, minScore=0.5, maxResolution=736)
    recognizer = TextRecognizer(MODEL, minScore=0.9)
    detector.load()
    recognizer.load()
    for data in files:  # warm-up, not counted
        read(data, detector, recognizer, Stages())
    stages = Stages()
    for _ in range(rounds):
        for data in files:
            read(data, detector, recognizer, stages)
    per_file = {stage: statistics.median(values) for stage, values in stages.times.items()}
    # The stages as the AI service's metrics name them (ours); the parts above stay as detail.
    per_file["detect"] = sum(value for stage, value in per_file.items() if stage.startswith("detect: "))
    print(json.dumps(per_file))


if __name__ == "__main__":
    main()
