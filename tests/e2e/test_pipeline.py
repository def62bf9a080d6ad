"""Immich's own jobs, through the gateway, store what the AI service read and embedded."""

from __future__ import annotations

import itertools
import json

from tests.e2e.conftest import CLIP_DIMENSION, Stack


def test_immich_stores_our_ocr_text_and_clip_vectors_and_faces_reach_the_stock_server(stack: Stack, photos):
    texts = {name: stack.ocr_text(asset) for name, asset in photos.items()}
    assert "发票" in texts["invoice"] and "INVOICE" in texts["invoice"].upper()
    assert "咖啡" in texts["cafe"] and "COFFEE" in texts["cafe"].upper()
    assert "烤鸭" in texts["menu"]
    assert {stack.clip_dimension(asset) for asset in photos.values()} == {CLIP_DIMENSION}
    # Face detection went to the stock ML server's stand-in, one request per photo at least.
    assert len([r for r in stack.faces.received if "facial-recognition" in r.entries]) >= len(photos)


def test_the_gateway_logs_no_error_while_immich_starts_and_works(stack: Stack, photos):
    """The gateway started before Immich (empty database, no API): expected states are a WARNING
    line each, never an ERROR or a traceback."""
    lines = [json.loads(line) for line in stack.gateway.log_text().splitlines() if line.startswith("{")]
    bad = [line for line in lines if line["level"] in ("ERROR", "CRITICAL") or "Traceback" in str(line.get("error"))]
    assert bad == []
    # Nor the AI service: the PP-OCRv5 model Immich asks for cannot be fetched here, which is one
    # WARNING naming what serves instead.
    ai = [json.loads(line) for line in stack.ai.log_text().splitlines() if line.startswith("{")]
    assert [line for line in ai if line["level"] in ("ERROR", "CRITICAL")] == []
    assert [line["message"] for line in ai if "serving the bundled" in line["message"]][:1]
    waits = [line["message"] for line in lines if line["level"] == "WARNING" and " waits: " in line["message"]]
    assert any("no Immich tables yet" in wait for wait in waits), waits
    # One line per change of state, not per retry, within each run of the gateway (tests restart it).
    runs: list[list[str]] = []
    for line in lines:
        if line["message"].startswith("Started server process"):
            runs.append([])
        elif line["level"] == "WARNING" and " waits: " in line["message"] and runs:
            runs[-1].append(line["message"])
    for run in runs:
        for loop in {wait.split(" waits: ")[0] for wait in run}:
            states = [wait for wait in run if wait.startswith(f"{loop} waits: ")]
            assert all(a != b for a, b in itertools.pairwise(states)), states
