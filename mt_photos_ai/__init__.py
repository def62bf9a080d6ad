"""The AI service: RapidOCR and Chinese-CLIP behind Immich's /predict and the MT Photos AI API."""
