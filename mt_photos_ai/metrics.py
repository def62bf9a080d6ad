"""The AI service's Prometheus metrics (`aio_ai_*`), declared once for the process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from aio_common.metrics import Registry

METRICS = Registry("aio_ai")
_registry = METRICS.registry


INFERENCE_SECONDS = Histogram(
    "aio_ai_inference_duration_seconds",
    "Time in one inference step, by model and stage (clip: decode, preprocess, forward; ocr: decode, detect, crop,"
    " classify, recognize)",
    ["model", "stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=_registry,
)
POOL_BUSY = Gauge("aio_ai_pool_busy", "Inference threads running a request now", registry=_registry)
POOL_QUEUED = Gauge("aio_ai_pool_queued", "Requests admitted and waiting for an inference thread", registry=_registry)
POOL_REFUSED = Counter(
    "aio_ai_pool_refused", "Requests refused with 503 because the pool and its queue were full", registry=_registry
)
MODEL_LOADED = Gauge("aio_ai_model_loaded", "1 while the model is loaded", ["model"], registry=_registry)
MODEL_LOAD_SECONDS = Histogram(
    "aio_ai_model_load_duration_seconds",
    "Time to load a model (weights, sessions, ONNX export on first use)",
    ["model"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    registry=_registry,
)
MODEL_LOAD_FAILURES = Counter(
    "aio_ai_model_load_failures",
    "Model loads that failed (weights missing, download failed)",
    ["model"],
    registry=_registry,
)
MODEL_UNLOADS = Counter(
    "aio_ai_model_unloads", "Models unloaded (MODEL_TTL or /restart)", ["model"], registry=_registry
)
MEMORY_RELEASES = Counter(
    "aio_ai_memory_releases",
    "Times the idle service gave OCR's working memory and the heap's free pages back (IDLE_MEMORY_RELEASE_S)",
    registry=_registry,
)

# Present from the start, at 0, so a dashboard shows them before the first request.
OCR_STAGES = ("decode", "detect", "crop", "classify", "recognize")
for _model, _stages in (("clip", ("decode", "preprocess", "forward")), ("ocr", OCR_STAGES)):
    MODEL_LOADED.labels(_model).set(0)
    for _stage in _stages:
        INFERENCE_SECONDS.labels(_model, _stage)


@contextmanager
def timed(model: str, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        INFERENCE_SECONDS.labels(model, stage).observe(time.perf_counter() - started)
