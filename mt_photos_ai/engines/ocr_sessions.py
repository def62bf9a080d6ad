"""OCR's ONNX Runtime sessions on the CPU, sharing the cores between concurrent requests.

A fixed thread count per session is wrong one way or the other: one thread each (the cores
shared out among REQUEST_THREADS) leaves cores idle when one photo is read alone, and every core
each oversubscribes them when two are read at once (the photos of bench/photo_scenes.py read in
one process on 2 cores: 1 thread 0.83 s at c=1 and 2.1/s at c=2; 2 threads 0.60 s and 1.4/s).
So each model file has two sessions, a wide one on every core and a narrow one on its share,
and each forward pass (the detector's, each recognition batch) takes the wide one while its
image is the only one being read, the narrow one otherwise (0.47 s and 2.35/s). Counting whole
reads, not passes, keeps a pass off every core while another image is between its passes
(cropping, classifying).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import onnxruntime as ort


class ReadsInFlight:
    """The images one engine is reading now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def entered(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    @property
    def alone(self) -> bool:
        """True when at most one image is being read (the caller's)."""
        return self._count <= 1


class SharedCoresSession:
    """Stands where rapidocr keeps its onnxruntime session, with the calls it makes of one:
    `run` goes to the wide session while one image is being read, else to the narrow one."""

    def __init__(self, narrow: ort.InferenceSession, wide: ort.InferenceSession, reads: ReadsInFlight) -> None:
        self.narrow = narrow
        self.wide = wide
        self.reads = reads

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> Any:
        session = self.wide if self.reads.alone else self.narrow
        return session.run(output_names, input_feed, run_options)

    def get_inputs(self) -> Any:
        return self.narrow.get_inputs()

    def get_outputs(self) -> Any:
        return self.narrow.get_outputs()

    def get_modelmeta(self) -> Any:
        return self.narrow.get_modelmeta()

    def get_providers(self) -> list[str]:
        providers: list[str] = self.narrow.get_providers()
        return providers


def wide_session(narrow: ort.InferenceSession, threads: int, cpu_arena: bool) -> ort.InferenceSession:
    """A session of `narrow`'s model file on `threads` cores. Its threads do not spin waiting for
    work after a pass (ONNX Runtime's default): spinning would take the cores a concurrent
    request's narrow pass needs."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = cpu_arena
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The file the narrow session was made from: rapidocr resolved it (bundled or asked model).
    return ort.InferenceSession(narrow._model_path, options, providers=["CPUExecutionProvider"])
