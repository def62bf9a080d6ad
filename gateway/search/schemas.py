"""Immich's search DTOs as far as the gateway reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_VISIBILITY = ["timeline", "archive"]


class SmartSearch(BaseModel):
    """Immich's SmartSearchDto: the filters applied here; others are accepted and not applied."""

    model_config = ConfigDict(extra="ignore")

    query: str
    page: int = Field(default=1, ge=1)
    size: int = Field(default=100, ge=1, le=1000)
    type: Literal["IMAGE", "VIDEO", "AUDIO", "OTHER"] | None = None
    isFavorite: bool | None = None
    visibility: Literal["archive", "timeline", "hidden", "locked"] | None = None
    withDeleted: bool = False
    createdAfter: datetime | None = None
    createdBefore: datetime | None = None
    takenAfter: datetime | None = None
    takenBefore: datetime | None = None

    def filters(self) -> dict[str, Any]:
        values = self.model_dump(exclude={"query", "page", "size"})
        values["visibility"] = [self.visibility] if self.visibility else DEFAULT_VISIBILITY
        return values


def search_response(items: list[dict[str, Any]], next_page: int | None) -> dict[str, Any]:
    """Immich's SearchResponseDto with assets only."""
    return {
        "albums": {"total": 0, "count": 0, "items": [], "facets": []},
        "assets": {
            "total": len(items),
            "count": len(items),
            "items": items,
            "facets": [],
            "nextPage": str(next_page) if next_page else None,
        },
    }
