"""Every SQL statement that touches Immich's tables, but for the searches over our index
(gateway.search.sql, which join `asset` and `smart_search`): the one place holding their table
and column names. Only reads, except the re-process resets and untagging. Statements whose names changed
between releases are built from the discovered `Columns`. Our own tables live in schema `aio`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from gateway.immich.facts import Columns, ImmichFacts

# The table our index rows reference (ON DELETE CASCADE: a deleted asset leaves the index).
ASSET_TABLE = "asset"

# ---- the OCR text, and what changed ----


def visible(columns: Columns, alias: str = "o") -> str:
    """The condition for a line Immich shows (2.5+ hides lines cropped out of a photo)."""
    return f'{alias}."isVisible"' if columns.ocr_is_visible else "true"


def current_text(columns: Columns) -> str:
    """Each asset's visible OCR lines in reading order (top to bottom, then left to right), with
    its owner and taken time; assets without visible text are absent. $1: asset ids."""
    return f"""
SELECT a.id AS asset_id, a."ownerId" AS owner_id, a."fileCreatedAt" AS taken,
  string_agg(o.text, ' ' ORDER BY o.y1, o.x1) AS text
FROM asset a JOIN asset_ocr o ON o."assetId" = a.id AND {visible(columns)}
WHERE a.id = ANY($1::uuid[])
GROUP BY a.id
"""


def differing_assets(columns: Columns) -> str:
    """Assets whose visible text or taken time differs from the index (the reconcile): what no
    change feed shows (a truncated asset_ocr, a date edited in Immich, an edit on a release
    without the edits' audit). Compares the same aggregate."""
    return f"""
WITH current AS (
  SELECT o."assetId" AS asset_id, string_agg(o.text, ' ' ORDER BY o.y1, o.x1) AS text
  FROM asset_ocr o WHERE {visible(columns)} GROUP BY o."assetId"
)
SELECT coalesce(c.asset_id, i.asset_id) AS asset_id
FROM current c FULL JOIN aio.ocr_index i ON i.asset_id = c.asset_id
LEFT JOIN asset a ON a.id = i.asset_id
WHERE c.text IS DISTINCT FROM i.text OR a."fileCreatedAt" <> i.taken
"""


class FeedSql(NamedTuple):
    """A change feed's statements: the changes after a position, read in keyset order as
    (mark, asset id) pairs ($1.. the position, then the limit); how many changes follow a
    position (the total a long pass shows progress against); and the first change after a mark
    put in for {mark} (how long it has waited is the index's lag, and whether there is one tells
    a search's catch-up to read)."""

    changed: str
    count_after: str
    first_after: str


# 2.x: asset_job_status."ocrAt" (no index in Immich: a scan of that narrow table per pass).
BY_OCR_AT = FeedSql(
    """
SELECT "assetId" AS asset_id, "ocrAt" AS mark
FROM asset_job_status
WHERE "ocrAt" IS NOT NULL AND ("ocrAt", "assetId") > ($1::timestamptz, $2::uuid)
ORDER BY "ocrAt", "assetId"
LIMIT $3
""",
    """
SELECT count(*) FROM asset_job_status WHERE "ocrAt" IS NOT NULL AND ("ocrAt", "assetId") > ($1::timestamptz, $2::uuid)
""",
    'SELECT min("ocrAt") FROM asset_job_status WHERE "ocrAt" > {mark}::timestamptz',
)


def by_update_id(table: str) -> FeedSql:
    """The rows of `table` written after a position, by their indexed uuid v7 "updateId"."""
    return FeedSql(
        f"""
SELECT "assetId" AS asset_id, "updateId" AS mark
FROM {table}
WHERE "updateId" > $1::uuid
ORDER BY "updateId"
LIMIT $2
""",
        f'SELECT count(*) FROM {table} WHERE "updateId" > $1::uuid',
        f'SELECT "updateId" FROM {table} WHERE "updateId" > {{mark}}::uuid ORDER BY "updateId" LIMIT 1',
    )


def by_audit(table: str) -> FeedSql:
    """The rows Immich's audit `table` recorded as deleted after a position ("deletedAt", id)."""
    return FeedSql(
        f"""
SELECT "assetId" AS asset_id, "deletedAt" AS mark, id
FROM {table}
WHERE ("deletedAt", id) > ($1::timestamptz, $2::uuid)
ORDER BY "deletedAt", id
LIMIT $3
""",
        f'SELECT count(*) FROM {table} WHERE ("deletedAt", id) > ($1::timestamptz, $2::uuid)',
        f'SELECT min("deletedAt") FROM {table} WHERE "deletedAt" > {{mark}}::timestamptz',
    )


# 3.0+: new OCR lines by asset_ocr's "updateId", deleted lines by its audit table.
BY_OCR_UPDATE = by_update_id("asset_ocr")
BY_OCR_AUDIT = by_audit("asset_ocr_audit")
# 2.6+: edits made and removed in Immich's editor, whose job then hides the lines a crop cuts
# out (or shows them again) without marking asset_ocr. The job runs a moment after the edit: a
# pass that reads the edit first finds it again in the minute it re-reads.
BY_EDIT = by_update_id("asset_edit")
BY_EDIT_AUDIT = by_audit("asset_edit_audit")

# ---- search: the caller's own assets and those of partners who share into their timeline ----


def searchable_owners(user: str) -> str:
    """`user` (a placeholder) and the partners who share with them into their timeline."""
    return (
        f'SELECT {user} UNION SELECT p."sharedById" FROM partner p WHERE p."sharedWithId" = {user} AND p."inTimeline"'
    )


# Immich's saved settings (only what differs from the release's defaults), and an asset's CLIP
# vector (a smart search by example ranks by it).
SYSTEM_CONFIG = "SELECT value FROM system_metadata WHERE key = 'system-config'"
ASSET_EMBEDDING = 'SELECT embedding::text FROM smart_search WHERE "assetId" = $1::uuid'


def saved_config(value: Any) -> dict[str, Any]:
    """SYSTEM_CONFIG's value (JSON text, or None when nothing was saved) as a dict."""
    config = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return config if isinstance(config, dict) else {}


# Asset columns the search filters read, by the name Immich's filter tree gives them.
FILTER_COLUMNS = {
    "visibility": "a.visibility::text",
    "type": "a.type::text",
    "isFavorite": 'a."isFavorite"',
    "takenAt": 'a."fileCreatedAt"',
    "createdAt": 'a."createdAt"',
    "updatedAt": 'a."updatedAt"',
    "trashedAt": 'a."deletedAt"',
    "id": "a.id",
    "ownerId": 'a."ownerId"',
}

# ---- re-processing (the only writes to Immich's tables) ----

ASSET_OWNER = """SELECT "ownerId" FROM asset WHERE id = $1"""

# Photos edited in Immich's editor (2.5+), and which of them a crop cut: Immich's own jobs cannot
# redo these. Its OCR job reads the unedited preview and stores every line visible again, the
# lines a crop cut out included; its Smart Search job fails on a photo with an edited preview
# (it expects one preview), so a vector reset for it would be lost. $1: asset ids.
EDITED = """
SELECT a.id AS asset_id,
  EXISTS (SELECT 1 FROM asset_edit e WHERE e."assetId" = a.id AND e.action = 'crop') AS cropped
FROM asset a WHERE a.id = ANY($1::uuid[]) AND a."isEdited"
"""

# OCR: Immich's ocr queue picks up assets whose ocrAt is NULL.
RESET_OCR = """UPDATE asset_job_status SET "ocrAt" = NULL WHERE "assetId" = ANY($1::uuid[])"""

# CLIP: Immich's smartSearch queue picks up assets without a smart_search row.
RESET_CLIP = """DELETE FROM smart_search WHERE "assetId" = ANY($1::uuid[])"""


def tagged(columns: Columns) -> str:
    """Assets carrying a tag whose full value is $1 (any user's), with the tag and its owner."""
    a, t = columns.tag_asset_asset, columns.tag_asset_tag
    return f"""
SELECT ta."{a}" AS asset_id, ta."{t}" AS tag_id, tag."userId" AS tag_owner, tag.value AS value
FROM tag_asset ta JOIN tag ON tag.id = ta."{t}"
WHERE tag.value = $1
"""


def untag(columns: Columns) -> list[str]:
    """Remove tags from assets the way Immich's own untag does, minus the sidecar write: the
    tag_asset rows and (2.5+) the value in asset_exif.tags, with `tags` marked a locked property
    as Immich's untag marks it. Metadata extraction keeps a locked property's database value
    over the file's, so a tag the XMP sidecar still lists is not applied again.
    $1 asset ids, $2 tag ids, $3 tag values (parallel arrays)."""
    a, t = columns.tag_asset_asset, columns.tag_asset_tag
    statements = [
        f"""
DELETE FROM tag_asset ta
USING unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(asset_id, tag_id, value)
WHERE ta."{a}" = u.asset_id AND ta."{t}" = u.tag_id
"""
    ]
    if columns.exif_tags:
        statements.append(
            """
UPDATE asset_exif e SET tags = array_remove(e.tags, u.value::varchar),
  "lockedProperties" = CASE WHEN 'tags' = ANY(coalesce(e."lockedProperties", '{}')) THEN e."lockedProperties"
    ELSE array_append(coalesce(e."lockedProperties", '{}'), 'tags'::varchar) END
FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS u(asset_id, tag_id, value)
WHERE e."assetId" = u.asset_id AND u.value = ANY(e.tags)
"""
        )
    return statements


# What the queues pick up when started without force, counted the way Immich selects them.
MISSING_OCR = """
SELECT count(*) FROM asset a JOIN asset_job_status s ON s."assetId" = a.id
WHERE s."ocrAt" IS NULL AND a."deletedAt" IS NULL AND a.visibility::text <> 'hidden'
"""


def missing_clip(facts: ImmichFacts) -> str:
    has_preview = (
        """EXISTS (SELECT 1 FROM asset_file f WHERE f."assetId" = a.id AND f.type::text = 'preview')"""
        if facts.smart_search_needs_preview_file
        else """EXISTS (SELECT 1 FROM asset_job_status s WHERE s."assetId" = a.id AND s."previewAt" IS NOT NULL)"""
    )
    return f"""
SELECT count(*) FROM asset a
WHERE a.visibility::text <> 'hidden' AND a."deletedAt" IS NULL AND {has_preview}
  AND NOT EXISTS (SELECT 1 FROM smart_search s WHERE s."assetId" = a.id)
"""
