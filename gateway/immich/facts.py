"""What the connected Immich has: its release, and the columns that changed between releases.

Read at start from `information_schema` and `GET /api/server/version`, so every release people
run (2.2 to 3.2) works without a setting. Where the API cannot be reached the release is
inferred from the schema (a lower bound), and asked again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

# Immich's tables whose columns decide which SQL the gateway writes.
DISCOVERED_TABLES = [
    "asset",
    "asset_edit",
    "asset_edit_audit",
    "tag_asset",
    "asset_ocr",
    "asset_ocr_audit",
    "asset_exif",
    "asset_file",
    "asset_job_status",
]

VISIBILITIES = ("archive", "timeline", "hidden", "locked")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def of(cls, answer: Any) -> Version:
        """From Immich's ServerVersionResponseDto; ValueError when it is not one."""
        try:
            return cls(int(answer["major"]), int(answer["minor"]), int(answer["patch"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a server version answer: {str(answer)[:200]}") from exc

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Columns:
    """The schema differences the gateway depends on."""

    # tag_asset's columns: "assetsId"/"tagsId" before 2.3.0, "assetId"/"tagId" since.
    tag_asset_asset: str
    tag_asset_tag: str
    # asset_ocr."isVisible" (2.5+): false for text cropped out of a photo.
    ocr_is_visible: bool
    # asset_ocr."updateId" (indexed, uuid v7) and asset_ocr_audit (3.0+): changes by index, not by scan.
    ocr_update_id: bool
    ocr_audit: bool
    # asset."isEdited" and asset_edit (2.5+): photos changed in Immich's editor.
    asset_is_edited: bool
    # asset_edit."updateId" and asset_edit_audit (2.6+): edits made and removed, by index.
    edit_feeds: bool
    # asset_exif.tags (2.5+): tag values Immich applies again at the next metadata extraction.
    exif_tags: bool
    # asset_job_status."previewAt": how the smart-search queue found assets with a preview before 2.5.2.
    preview_at: bool

    @classmethod
    async def discover(cls, conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> Columns:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = ANY($1::text[])",
            DISCOVERED_TABLES,
        )
        have = {(row["table_name"], row["column_name"]) for row in rows}
        renamed = ("tag_asset", "assetId") in have
        return cls(
            tag_asset_asset="assetId" if renamed else "assetsId",
            tag_asset_tag="tagId" if renamed else "tagsId",
            ocr_is_visible=("asset_ocr", "isVisible") in have,
            ocr_update_id=("asset_ocr", "updateId") in have,
            ocr_audit=("asset_ocr_audit", "deletedAt") in have,
            asset_is_edited=("asset", "isEdited") in have,
            edit_feeds=("asset_edit", "updateId") in have and ("asset_edit_audit", "deletedAt") in have,
            exif_tags=("asset_exif", "tags") in have,
            preview_at=("asset_job_status", "previewAt") in have,
        )

    def inferred_version(self) -> Version:
        """The oldest release with this schema (when the server's own answer is missing)."""
        if self.ocr_update_id:
            return Version(3, 0, 0)
        if self.ocr_is_visible or self.exif_tags:
            return Version(2, 5, 0)
        if self.tag_asset_asset == "assetId":
            return Version(2, 3, 0)
        return Version(2, 2, 0)


@dataclass(frozen=True)
class ImmichFacts:
    version: Version
    version_from: Literal["server", "schema"]
    columns: Columns

    def default_visibility(self) -> list[str]:
        """What a search without a visibility filter covers: 2.x the timeline; 3.0+ all but locked."""
        if self.version.major >= 3:
            return [v for v in VISIBILITIES if v != "locked"]
        return ["timeline"]

    @property
    def locked_own_only(self) -> bool:
        """3.0.3+: a search of locked assets covers only the caller's own."""
        return self.version >= Version(3, 0, 3)

    @property
    def smart_search_needs_preview_file(self) -> bool:
        """2.5.2+: the smart-search queue picks assets with a preview in asset_file (else previewAt)."""
        return self.version >= Version(2, 5, 2) or not self.columns.preview_at

    def state(self) -> dict[str, Any]:
        c = self.columns
        return {
            "version": str(self.version),
            "versionFrom": self.version_from,
            "tagAssetColumns": [c.tag_asset_asset, c.tag_asset_tag],
            "ocrIsVisible": c.ocr_is_visible,
            "ocrChangeFeed": c.ocr_update_id and c.ocr_audit,
            "exifTags": c.exif_tags,
            "defaultVisibility": self.default_visibility(),
        }
