"""Every setting of the AI service, from the environment and `.env`."""

from __future__ import annotations

import importlib.util
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aio_common import protocol
from aio_common.http import DEFAULT_KEY
from mt_photos_ai.clip_models import ClipModelName

Preloadable = Literal["clip", "ocr"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    http_host: str = "0.0.0.0"
    http_port: int = 8060
    api_auth_key: str = DEFAULT_KEY
    # Turn the key check off only on a private network you trust.
    api_auth_required: bool = True
    # The port is published beyond the machine (the AI-host compose file says so): then the
    # well-known default key, or no key check, is refused at start.
    api_published: bool = False

    clip_model: ClipModelName = "ViT-B-16"
    clip_download_root: Path = Path("./models/clip")
    # Fetch missing weights through cn-clip (huggingface_hub) when online.
    clip_auto_download: bool = True
    # Empty = `cuda` when torch sees a GPU, else `cpu`.
    device: Literal["", "cuda", "cpu"] = ""
    # Where CLIP runs: auto = ONNX Runtime on the CPU, torch (fp16 autocast) on CUDA.
    runtime: Literal["auto", "onnx", "torch"] = "auto"
    # CUDA only: CLIP requests arriving within this many ms share one forward pass (0 = off).
    clip_batch_wait_ms: float = Field(default=5.0, ge=0)
    clip_batch_size: int = Field(default=32, ge=1)

    # The OCR model served until Immich names one (its admin setting, e.g. PP-OCRv5_mobile);
    # empty = the models bundled in the rapidocr wheel. MT Photos' /ocr uses whichever serves.
    ocr_model: str = ""
    # Serve every OCR request with this model, whatever Immich asks for: `bundled` (the
    # rapidocr wheel's models, PP-OCRv6 small: reads more, README) or a PP-OCRv5 name;
    # empty: the model Immich asks for.
    ocr_serve_model: str = ""
    # Where PP-OCRv5 files are found, in the stock Immich ML server's cache layout
    # (<name>/detection/model.onnx, <name>/recognition/model.onnx), and fetched to when missing.
    ocr_model_dir: Path = Path("./models/ocr")
    ocr_auto_download: bool = True
    # ONNX Runtime threads per OCR pass; 0: every core while one image is being read, the cores
    # shared out among REQUEST_THREADS (at least one each) while several are
    # (engines/ocr_sessions.py says why). A number: that many, always.
    ocr_threads: int = Field(default=0, ge=0)

    @property
    def resolved_ocr_threads(self) -> tuple[int, int]:
        """(threads while several images are being read, threads while one is)."""
        if self.ocr_threads:
            return self.ocr_threads, self.ocr_threads
        cores = os.cpu_count() or 1
        return max(1, cores // self.request_threads), cores

    # RapidOCR's text-line angle classifier: reads upside-down and sideways text.
    ocr_angle_classifier: bool = True
    # onnxruntime's CPU memory arena for OCR: faster, and its memory is kept (see README).
    ocr_cpu_arena: bool = True

    request_threads: int = Field(default=2, ge=1)
    # Requests waiting for an inference thread beyond this are refused with 503.
    max_queued_requests: int = Field(default=64, ge=1)
    # Comma-separated: clip,ocr
    preload: Annotated[list[Preloadable], NoDecode] = []
    model_ttl: int = Field(default=0, ge=0)
    # Seconds without a request after which OCR's working memory (ONNX Runtime's arenas) and the
    # heap's free pages go back to the OS; 0 = kept. While requests come, they are kept.
    idle_memory_release_s: float = Field(default=10.0, ge=0)

    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    max_image_side: int = 10_000
    max_text_chars: int = protocol.DEFAULT_MAX_TEXT_CHARS

    log_level: str = "INFO"
    # Prometheus metrics at /metrics; on a port of their own when METRICS_PORT is set.
    metrics: bool = True
    metrics_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _published_needs_a_key(self) -> Settings:
        if self.api_published and (self.api_auth_key == DEFAULT_KEY or not self.api_auth_required):
            raise ValueError(
                "API_PUBLISHED is set, so the port is reachable from other machines: set API_AUTH_KEY to a key "
                "of your own (not the well-known default) and keep API_AUTH_REQUIRED on"
            )
        return self

    @field_validator("preload", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @cached_property
    def resolved_device(self) -> Literal["cuda", "cpu"]:
        if self.device:
            return self.device
        if importlib.util.find_spec("torch") is None:  # the torch-free install runs on the CPU
            return "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def resolved_runtime(self) -> Literal["onnx", "torch"]:
        if self.runtime != "auto":
            return self.runtime
        return "torch" if self.resolved_device == "cuda" else "onnx"
