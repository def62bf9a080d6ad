"""Every SQL statement that touches Immich's tables: the one place holding Immich's table and
column names (2.x: asset, asset_ocr, asset_job_status, partner). Only reads, except the
re-process resets. Our own tables live in schema `aio` (see index.py)."""

from __future__ import annotations

# Assets whose OCR result is newer than (or missing from) the index. $1: only rows with ocrAt
# after this (NULL = all), $2: batch size. Read with the OCR lines in one snapshot.
CHANGED_OCR = """
SELECT s."assetId" AS asset_id, s."ocrAt" AS ocr_at
FROM asset_job_status s
LEFT JOIN aio.ocr_index i ON i.asset_id = s."assetId"
WHERE s."ocrAt" IS NOT NULL
  AND ($1::timestamptz IS NULL OR s."ocrAt" > $1)
  AND (i.asset_id IS NULL OR i.ocr_at IS DISTINCT FROM s."ocrAt")
ORDER BY s."ocrAt"
LIMIT $2
"""

# The count behind the backfill's progress line.
COUNT_OCR_DONE = """SELECT count(*) FROM asset_job_status WHERE "ocrAt" IS NOT NULL"""

# The OCR text of assets, lines in reading order (top to bottom, then left to right), with owner.
OCR_TEXT = """
SELECT a.id AS asset_id, a."ownerId" AS owner_id,
       coalesce(string_agg(o.text, ' ' ORDER BY o.y1, o.x1), '') AS text
FROM asset a
LEFT JOIN asset_ocr o ON o."assetId" = a.id
WHERE a.id = ANY($1::uuid[])
GROUP BY a.id
"""

# Index rows whose asset no longer has an OCR result (cleared for re-OCR, or never done).
STALE_INDEX_ROWS = """
DELETE FROM aio.ocr_index i
WHERE NOT EXISTS (
  SELECT 1 FROM asset_job_status s WHERE s."assetId" = i.asset_id AND s."ocrAt" IS NOT NULL
)
"""

# The ranked word search. $1 the tsquery, $2 the caller's id, $3 visibilities, $4 with trashed,
# $5 type (NULL = any), $6 isFavorite (NULL = any), $7..$10 created/taken after/before,
# $11 limit, $12 offset. Owners: the caller and partners who share with them into the timeline.
SEARCH = """
SELECT i.asset_id
FROM aio.ocr_index i
JOIN asset a ON a.id = i.asset_id
WHERE i.words @@ $1
  AND i.owner_id IN (
    SELECT $2::uuid
    UNION
    SELECT p."sharedById" FROM partner p WHERE p."sharedWithId" = $2 AND p."inTimeline"
  )
  AND a.visibility::text = ANY($3::text[])
  AND ($4 OR a."deletedAt" IS NULL)
  AND ($5::text IS NULL OR a.type::text = $5)
  AND ($6::boolean IS NULL OR a."isFavorite" = $6)
  AND ($7::timestamptz IS NULL OR a."createdAt" >= $7)
  AND ($8::timestamptz IS NULL OR a."createdAt" <= $8)
  AND ($9::timestamptz IS NULL OR a."fileCreatedAt" >= $9)
  AND ($10::timestamptz IS NULL OR a."fileCreatedAt" <= $10)
ORDER BY ts_rank(i.words, $1) DESC, a."fileCreatedAt" DESC, a.id
LIMIT $11 OFFSET $12
"""

# The foreign key that keeps the index in step with deletions.
ASSET_TABLE = "asset"

# ---- re-processing (the only writes to Immich's tables) ----

ASSET_OWNER = """SELECT "ownerId" FROM asset WHERE id = $1"""

# OCR: Immich's ocr queue picks up assets whose ocrAt is NULL.
RESET_OCR = """UPDATE asset_job_status SET "ocrAt" = NULL WHERE "assetId" = ANY($1::uuid[])"""

# CLIP: Immich's smartSearch queue picks up assets without a smart_search row.
RESET_CLIP = """DELETE FROM smart_search WHERE "assetId" = ANY($1::uuid[])"""

# Assets carrying the re-process tag (any user's tag with that full value), with the tag.
TAGGED = """
SELECT ta."assetsId" AS asset_id, ta."tagsId" AS tag_id
FROM tag_asset ta JOIN tag t ON t.id = ta."tagsId"
WHERE t.value = $1
"""

UNTAG = """
DELETE FROM tag_asset ta
USING unnest($1::uuid[], $2::uuid[]) AS u(asset_id, tag_id)
WHERE ta."assetsId" = u.asset_id AND ta."tagsId" = u.tag_id
"""

# What the queues will pick up when started without force.
MISSING_OCR = """
SELECT count(*) FROM asset a JOIN asset_job_status s ON s."assetId" = a.id
WHERE s."ocrAt" IS NULL AND a."deletedAt" IS NULL AND a.visibility::text <> 'hidden'
"""
MISSING_CLIP = """
SELECT count(*) FROM asset a
WHERE a."deletedAt" IS NULL AND NOT EXISTS (SELECT 1 FROM smart_search s WHERE s."assetId" = a.id)
"""
