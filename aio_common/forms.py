"""A strict, copy-light parser for the form bodies of /predict and the MT Photos routes.

Immich's server sends multipart/form-data; the parts are found with `bytes.find` on the
boundary (which by definition never occurs inside a part), so a large image is sliced out in
C, never walked byte by byte or spooled to a temporary file.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from aio_common.http import ApiError

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'[;\s]name="([^"]*)"', re.IGNORECASE)


def parse_form(body: bytes, content_type: str) -> dict[str, bytes]:
    """Field name -> raw value (the first part of each name). 400 for a body that is not a form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return {name: value.encode() for name, value in reversed(parse_qsl(body.decode("latin-1")))}
    if kind != "multipart/form-data":
        raise ApiError(400, f"Expected a multipart/form-data body, got '{kind or 'no content type'}'.")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise ApiError(400, "Malformed multipart body: the content type names no boundary.")
    return _multipart(body, b"--" + match.group(1).encode("latin-1"))


def _multipart(body: bytes, delimiter: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    position = body.find(delimiter)
    if position < 0:
        raise ApiError(400, "Malformed multipart body: no part starts with the boundary.")
    separator = b"\r\n" + delimiter
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return fields
        headers_end = body.find(b"\r\n\r\n", position)
        end = body.find(separator, headers_end + 4) if headers_end >= 0 else -1
        if end < 0:
            raise ApiError(400, "Malformed multipart body: a part is not closed by the boundary.")
        name = _NAME.search(body, position, headers_end)
        if name is None:
            raise ApiError(400, "Malformed multipart body: a part has no name.")
        fields.setdefault(name.group(1).decode("utf-8", "replace"), body[headers_end + 4 : end])
        position = end + 2


def text_field(fields: dict[str, bytes], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"'{name}' is not valid UTF-8 text.") from None
