"""Recognising an image by its first bytes, without decoding it: the gateway does not decode the
images it forwards, but the stock Immich ML server answers an undecodable one with a 500."""

from __future__ import annotations

# Signatures of the formats Immich sends or keeps (previews are JPEG or WebP).
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",  # JPEG XL container
)


def looks_like_image(data: bytes | memoryview) -> bool:
    head = bytes(data[:16])
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp"  # HEIF, HEIC, AVIF
