"""The `ocr:` search: a Chinese word index of Immich's OCR text, and the search route."""
