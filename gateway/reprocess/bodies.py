"""What POST /api/ai/assets/{id}/reprocess takes and answers (its OpenAPI schemas come from these)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReprocessRequest(BaseModel):
    ocr: bool = True
    clip: bool = True


class ReprocessAnswer(BaseModel):
    assetId: str
    queued: list[str] = Field(description="Immich queues started now")
    pending: list[str] = Field(description="Queues started later (they were running)")
    kept: dict[str, str] = Field(
        description="Results kept, by queue, with the reason: Immich's job cannot redo them for a photo "
        "edited in its editor"
    )
