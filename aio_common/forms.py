"""A strict, copy-light parser for the form bodies of /predict and the MT Photos routes.

Immich's server sends multipart/form-data; the parts are found with `bytes.find` on the
boundary (which by definition never occurs inside a part), so a large image is never walked
byte by byte or spooled to a temporary file, and it is copied out of the body only when read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl

from aio_common.errors import BadRequest

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'[;\s]name="([^"]*)"', re.IGNORECASE)


class Form(Mapping[str, bytes]):
    """Field name -> raw value (the first part of each name), sliced out of the body when read:
    the gateway forwards a preview untouched and never needs a copy of it."""

    def __init__(self, body: bytes, spans: dict[str, tuple[int, int]]) -> None:
        self._body = body
        self._spans = spans

    @classmethod
    def of(cls, values: dict[str, bytes]) -> Form:
        spans, position = {}, 0
        for name, value in values.items():
            spans[name] = (position, position + len(value))
            position += len(value)
        return cls(b"".join(values.values()), spans)

    def __getitem__(self, name: str) -> bytes:
        start, end = self._spans[name]
        return self._body[start:end]

    def view(self, name: str) -> memoryview:
        """The value without a copy, for passing it on."""
        start, end = self._spans[name]
        return memoryview(self._body)[start:end]

    def __contains__(self, name: object) -> bool:
        # Mapping's default would call __getitem__, copying the value out of the body.
        return name in self._spans

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


def parse_form(body: bytes, content_type: str) -> Form:
    """The fields of a form body. 400 for a body that is not a form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return Form.of({name: value.encode() for name, value in reversed(parse_qsl(body.decode("latin-1")))})
    if kind != "multipart/form-data":
        raise BadRequest(f"Expected a multipart/form-data body, got '{kind or 'no content type'}'.")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise BadRequest("Malformed multipart body: the content type names no boundary.")
    return _multipart(body, b"--" + match.group(1).encode("latin-1"))


def _multipart(body: bytes, delimiter: bytes) -> Form:
    spans: dict[str, tuple[int, int]] = {}
    position = body.find(delimiter)
    if position < 0:
        raise BadRequest("Malformed multipart body: no part starts with the boundary.")
    separator = b"\r\n" + delimiter
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return Form(body, spans)
        headers_end = body.find(b"\r\n\r\n", position)
        end = body.find(separator, headers_end + 4) if headers_end >= 0 else -1
        if end < 0:
            raise BadRequest("Malformed multipart body: a part is not closed by the boundary.")
        name = _NAME.search(body, position, headers_end)
        if name is None:
            raise BadRequest("Malformed multipart body: a part has no name.")
        spans.setdefault(name.group(1).decode("utf-8", "replace"), (headers_end + 4, end))
        position = end + 2


def text_field(fields: Mapping[str, bytes], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"'{name}' is not valid UTF-8 text.") from None
