"""The one log format: JSON lines, no credential in any line, one line for expected library states."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from aio_common import logs


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """configure_logging's handler, writing into a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure_logging("INFO")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    root.handlers[:], root.level = saved
    for name in ("httpx", "httpcore", "aiohttp.access", "aiohttp.client"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def entries(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(
    "url",
    [
        "/api/search/smart?apiKey=SECRET",
        "/api/users/me?sessionKey=SECRET&x=1",
        "/api/assets/1?x=1&apiKey=SECRET#frag",
        "/share?key=SECRET",
        "/a?access_token=SECRET",
    ],
)
def test_no_credential_in_an_access_line_or_an_extra_field(lines, url):
    # uvicorn's access line (its logger's level is uvicorn's to set; the line is what counts)
    logging.getLogger("tests.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST", url, "1.1", 200)
    logging.getLogger("gateway").warning("failed", extra={"url": f"http://immich:2283{url}"})
    text = lines.getvalue()
    assert "SECRET" not in text and text.count("[redacted]") == 2
    assert entries(lines)[0]["message"].startswith('127.0.0.1:1 - "POST /')


def test_http_clients_request_lines_stay_out_of_info(lines):
    logging.getLogger("httpx").info("HTTP Request: GET http://immich/api/users/me?apiKey=SECRET")
    logging.getLogger("httpx").warning("a warning stays")
    assert [entry["message"] for entry in entries(lines)] == ["a warning stays"]


def test_an_asyncpg_warning_is_one_line_and_an_error_keeps_its_traceback(lines):
    try:
        raise ConnectionRefusedError("database restarting")
    except ConnectionRefusedError:
        logging.getLogger("asyncpg.pool").warning("Failed to restore the pool", exc_info=True)
        logging.getLogger("gateway").error("ours", exc_info=True)
    warning, error = entries(lines)
    assert warning["message"] == "Failed to restore the pool: ConnectionRefusedError: database restarting"
    assert "error" not in warning
    assert "Traceback" in error["error"]


def test_no_password_of_a_url_in_a_line(lines):
    logging.getLogger("gateway").warning("Immich lists http://ml:SECRET@stock-ml:3003/ after this gateway")
    logging.getLogger("gateway").warning("failed", extra={"url": "postgres://immich:SECRET@database:5432/immich"})
    text = lines.getvalue()
    assert "SECRET" not in text and text.count("[redacted]@") == 2
    assert "http://ml:[redacted]@stock-ml:3003/" in entries(lines)[0]["message"]
