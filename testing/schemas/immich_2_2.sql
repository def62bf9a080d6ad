-- The Immich 2.2 tables the gateway reads and writes, with Immich's names and types (no vector
-- columns). Test data: what a 2.2 database has, not Immich's code.
CREATE TYPE asset_visibility_enum AS ENUM ('archive', 'timeline', 'hidden', 'locked');

CREATE TABLE asset (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "ownerId" uuid NOT NULL,
  type character varying NOT NULL DEFAULT 'IMAGE',
  visibility asset_visibility_enum NOT NULL DEFAULT 'timeline',
  "deletedAt" timestamp with time zone,
  "fileCreatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  "createdAt" timestamp with time zone NOT NULL DEFAULT now(),
  "updatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  "isFavorite" boolean NOT NULL DEFAULT false,
  "originalFileName" character varying NOT NULL DEFAULT 'IMG.jpg'
);

CREATE TABLE asset_file (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  type character varying NOT NULL,
  path character varying NOT NULL
);

CREATE TABLE asset_exif (
  "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
  city character varying
);

CREATE TABLE asset_ocr (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
  x3 real NOT NULL, y3 real NOT NULL, x4 real NOT NULL, y4 real NOT NULL,
  "boxScore" real NOT NULL,
  "textScore" real NOT NULL,
  text text NOT NULL
);

CREATE INDEX "asset_ocr_assetId_idx" ON asset_ocr ("assetId");

CREATE TABLE asset_job_status (
  "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
  "facesRecognizedAt" timestamp with time zone,
  "metadataExtractedAt" timestamp with time zone,
  "duplicatesDetectedAt" timestamp with time zone,
  "previewAt" timestamp with time zone,
  "thumbnailAt" timestamp with time zone,
  "ocrAt" timestamp with time zone
);

CREATE TABLE partner (
  "sharedById" uuid NOT NULL,
  "sharedWithId" uuid NOT NULL,
  "inTimeline" boolean NOT NULL DEFAULT false,
  PRIMARY KEY ("sharedById", "sharedWithId")
);

CREATE TABLE tag (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "userId" uuid NOT NULL,
  value character varying NOT NULL,
  "createdAt" timestamp with time zone NOT NULL DEFAULT now(),
  "updatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  color character varying,
  "parentId" uuid REFERENCES tag (id) ON DELETE CASCADE,
  UNIQUE ("userId", value)
);

CREATE TABLE tag_asset (
  "assetsId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  "tagsId" uuid NOT NULL REFERENCES tag (id) ON DELETE CASCADE,
  PRIMARY KEY ("assetsId", "tagsId")
);

-- Immich's column is vector(n) (pgvector / VectorChord); a plain array stands in for it where the
-- server has no pgvector (testing.immich_db makes it a vector(4) where it has).
CREATE TABLE smart_search (
  "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
  embedding real[] NOT NULL
);

-- Immich's saved settings: key 'system-config' holds what differs from the release's defaults.
CREATE TABLE system_metadata (
  key character varying PRIMARY KEY,
  value jsonb NOT NULL
);
