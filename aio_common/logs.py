"""One structured (JSON lines) log format for both services."""

from __future__ import annotations

import logging
import re
import sys

import orjson

# uvicorn adds `color_message`, the message again with terminal colours.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Credentials a URL can carry (Immich's ?apiKey= and ?sessionKey=, any *key= or *token=), as
# they appear in access lines and client errors: the value never reaches a log line.
_URL_CREDENTIAL = re.compile(r"(?i)([?&;][\w.-]*(?:key|token|secret|password)=)[^&#\s\"']*")
# The password of a URL's user:password@ (a machine-learning URL, a database URL), likewise.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^@/\s\"']+@")
# HTTP clients log every request at INFO, URL and query included: only their warnings are kept.
_QUIET = ("httpx", "httpcore", "aiohttp.access", "aiohttp.client")


# Libraries whose warnings carry a traceback for a state that is expected (asyncpg's pool while
# the database restarts): one line, the exception's summary appended.
_ONE_LINE = ("asyncpg",)


class _OneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.levelno < logging.ERROR and record.name.split(".")[0] in _ONE_LINE:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}", ()
            record.exc_info = record.exc_text = None
        return True


def redact(text: str) -> str:
    return _URL_PASSWORD.sub(r"\1[redacted]@", _URL_CREDENTIAL.sub(r"\1[redacted]", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with `extra=` become top-level keys.
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_OneLine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
