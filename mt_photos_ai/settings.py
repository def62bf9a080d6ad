"""Every setting of the AI service, from the environment and `.env`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ClipModelName = Literal["ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "RN50"]
Preloadable = Literal["clip", "ocr"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    http_host: str = "0.0.0.0"
    http_port: int = 8060
    api_auth_key: str = "mt_photos_ai_extra"
    # Turn the key check off only on a private network you trust.
    api_auth_required: bool = True

    clip_model: ClipModelName = "ViT-B-16"
    clip_download_root: Path = Path("./models/clip")
    # Fetch missing weights through cn-clip (huggingface_hub) when online.
    clip_auto_download: bool = True
    # Empty = `cuda` when torch sees a GPU, else `cpu`.
    device: Literal["", "cuda", "cpu"] = ""

    request_threads: int = Field(default=2, ge=1)
    # Requests waiting for an inference thread beyond this are refused with 503.
    max_queued_requests: int = Field(default=64, ge=1)
    # Comma-separated: clip,ocr
    preload: Annotated[list[Preloadable], NoDecode] = []
    model_ttl: int = Field(default=0, ge=0)

    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    max_image_side: int = 10_000
    max_text_chars: int = 1000

    log_level: str = "INFO"

    @field_validator("preload", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @cached_property
    def resolved_device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
