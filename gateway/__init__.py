"""The gateway: Immich's MACHINE_LEARNING_URL, and the `ocr:` search in front of Immich's API."""
