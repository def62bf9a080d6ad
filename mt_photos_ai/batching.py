"""Dynamic micro-batching for a device that gains from batches (CUDA): requests arriving within
a few milliseconds share one forward pass, and each gets its own row back.

One thread per batcher runs the passes. A caller blocks on its future (it runs on an inference
thread, never on the event loop). A failed pass fails every request of that batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

Inputs = tuple[np.ndarray, ...]


class Batcher:
    def __init__(self, name: str, run: Callable[..., np.ndarray], size: int, wait_s: float) -> None:
        self.run = run
        self.size = size
        self.wait_s = wait_s
        self._queue: queue.Queue[tuple[Inputs, Future[np.ndarray]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=f"batch-{name}", daemon=True)
        self._thread.start()

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """Rows for `inputs` (each with a leading batch axis), computed in a shared pass."""
        future: Future[np.ndarray] = Future()
        self._queue.put((inputs, future))
        return future.result()

    def _serve(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            rows = len(first[0][0])
            deadline = time.monotonic() + self.wait_s
            while rows < self.size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
                rows += len(item[0][0])
            self._run(batch)

    def _run(self, batch: list[tuple[Inputs, Future[np.ndarray]]]) -> None:
        try:
            stacked = [np.concatenate(parts) for parts in zip(*(inputs for inputs, _ in batch), strict=True)]
            out = self.run(*stacked)
        except Exception as exc:  # every waiting request hears of the failure
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for inputs, future in batch:
            count = len(inputs[0])
            future.set_result(out[start : start + count])
            start += count

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)
