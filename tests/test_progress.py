"""Progress of long work: a redrawn line on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import io
import logging

from aio_common.progress import LOG_EVERY_S, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_redrawn_with_rate_and_time_left():
    clock, terminal = Clock(), Terminal()
    progress = Progress("OCR index sync", 1000, "changes", log=logging.getLogger("t"), stream=terminal, clock=clock)
    clock.now += 10
    progress.advance(250)
    assert terminal.getvalue() == "\r\033[K" + "OCR index sync: 250/1,000 changes (25%), 30 s left, 25 changes/s"
    clock.now += 30
    progress.advance(750)
    progress.finish()
    assert terminal.getvalue().endswith("1,000/1,000 changes (100%), 25 changes/s\n")
    assert terminal.getvalue().count("\r\033[K") == 3


def test_elsewhere_a_log_line_every_few_seconds_and_at_the_end(caplog):
    clock, stream = Clock(), io.StringIO()
    progress = Progress("re-processing", 7200, "assets", log=logging.getLogger("t"), stream=stream, clock=clock)
    with caplog.at_level(logging.INFO):
        for _ in range(10):  # ten updates within one logging period: one line
            clock.now += LOG_EVERY_S / 10
            progress.advance(36)
        clock.now += 0.5
        progress.advance(1)
        progress.finish()
    assert stream.getvalue() == ""
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "re-processing: 360/7,200 assets (5%), 3 min 10 s left, 36 assets/s"
    assert lines[1:] == ["re-processing: 361/7,200 assets (5%), 3 min 19 s left, 34 assets/s"]


def test_without_a_total_it_counts_and_gives_the_rate():
    clock, terminal = Clock(), Terminal()
    progress = Progress("sync", 0, "rows", log=logging.getLogger("t"), stream=terminal, clock=clock)
    clock.now += 2
    progress.advance(100)
    assert terminal.getvalue().endswith("sync: 100 rows, 50 rows/s")
