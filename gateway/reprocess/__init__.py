"""Re-processing one asset's OCR text or CLIP vector through Immich's own jobs."""
