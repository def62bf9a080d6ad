"""Every setting of the gateway, from the environment and `.env` (Immich's DB_* names reused)."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aio_common.http import DEFAULT_KEY

BackendName = Literal["ai", "immich"]


def _also(old: str) -> AliasChoices:
    """A setting read by its name, or by the name an earlier release gave it."""
    return AliasChoices(old.replace("hybrid", "mixed"), old)


def split_urls(value: str) -> list[str]:
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "INFO"
    # Prometheus metrics at /metrics; on a port of their own when METRICS_PORT is set.
    metrics: bool = True
    metrics_port: int = Field(default=0, ge=0, le=65535)

    # The AI service (comma-separated URLs = replicas) and its key.
    mt_photos_api: str = "http://localhost:8060"
    mt_photos_api_key: str = DEFAULT_KEY
    # The stock Immich ML server(s), for faces and any other task.
    immich_api: str = "http://localhost:3003"
    # Where each task goes; clip never falls back to another backend.
    ocr_backend: BackendName = "ai"
    clip_backend: BackendName = "ai"
    # Send OCR to the stock server when the AI service cannot answer.
    ocr_fallback: bool = False
    # CLIP model names a later Immich knows and the table here does not: name:dimension,...
    clip_extra_models: Annotated[dict[str, int], NoDecode] = {}

    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=300.0, gt=0)
    health_interval: float = Field(default=10.0, gt=0)
    max_request_bytes: int = 64 * 1024 * 1024

    # Immich's API, for search (identity, assets, jobs).
    immich_server_url: str = "http://localhost:2283"
    # The OCR word index: seconds between syncs, rows per sync transaction, rows a search may
    # index first (so a photo OCR'd a moment ago is found), parallel asset look-ups per search.
    sync_interval: float = Field(default=10.0, gt=0)
    sync_batch_size: int = Field(default=1000, ge=1)
    search_catchup_limit: int = Field(default=1000, ge=1)
    asset_fetch_concurrency: int = Field(default=16, ge=1)
    # Seconds between full comparisons of the index with Immich's visible OCR text (crops).
    index_reconcile_interval: float = Field(default=600.0, gt=0)
    # auto: zhparser when the database has it, else jieba; or force one.
    ocr_tokenizer: Literal["auto", "zhparser", "jieba"] = "auto"
    # The database on Immich's server that holds zhparser's `chinese` configuration, made by the
    # gateway when missing: never Immich's own, so Immich's backups restore without zhparser.
    zhparser_database: str = "zhparser"
    # Processes that split words with jieba during a backfill (the jieba path only).
    index_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Immich's own `ocr` search field (its OCR search type, and smart search with `ocr`)
    # answered from the word index; off: forwarded to Immich untouched.
    ocr_field_search: bool = True
    # Mixed search of plain smart searches: Immich's CLIP ranking fused with the OCR ranking
    # (reciprocal rank fusion: weight / (k + rank) summed over both lists). The HYBRID_* names of
    # earlier releases are still read.
    mixed_search: bool = Field(default=True, validation_alias=_also("hybrid_search"))
    mixed_rrf_k: float = Field(default=60.0, gt=0, validation_alias=_also("hybrid_rrf_k"))
    mixed_clip_weight: float = Field(default=1.0, ge=0, validation_alias=_also("hybrid_clip_weight"))
    mixed_ocr_weight: float = Field(default=1.0, ge=0, validation_alias=_also("hybrid_ocr_weight"))
    # Mixed ranking covers this many results; deeper pages are refused (use clip: or ocr:).
    mixed_max_depth: int = Field(default=2000, ge=1, validation_alias=_also("hybrid_max_depth"))
    # Re-processing: an Immich admin's API key (to start Immich's jobs) and the tag that asks for it.
    immich_admin_api_key: str = ""
    reprocess_tag: str = "AI/Reprocess"

    # Immich's database (same names as Immich's .env).
    db_hostname: str = "localhost"
    db_port: int = 5432
    db_username: str = "postgres"
    db_password: str = "postgres"
    db_database_name: str = "immich"
    # Seconds a query on the request path may take before the database counts as down.
    db_query_timeout: float = Field(default=10.0, gt=0)

    def db_connection(self) -> dict[str, Any]:
        """asyncpg's connection arguments for Immich's database."""
        return {
            "host": self.db_hostname,
            "port": self.db_port,
            "user": self.db_username,
            "password": self.db_password,
            "database": self.db_database_name,
        }

    @field_validator("clip_extra_models", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, _, dimension = item.rpartition(":")
            if not name or not dimension.isdigit():
                raise ValueError(f"CLIP_EXTRA_MODELS takes name:dimension pairs, not {item!r}")
            pairs[name] = int(dimension)
        return pairs

    @property
    def ai_urls(self) -> list[str]:
        return split_urls(self.mt_photos_api)

    @property
    def stock_ml_urls(self) -> list[str]:
        return split_urls(self.immich_api)
