-- The Immich 3.2 tables the gateway reads and writes, with Immich's names and types (no vector
-- columns). Test data: what a 3.2 database has, not Immich's code. Since 2.2: tag_asset's
-- columns renamed (2.3), asset_ocr."isVisible" and asset_exif.tags (2.5), asset_ocr."updateId"
-- with its delete audit (3.0); previewAt gone from asset_job_status.
CREATE TYPE asset_visibility_enum AS ENUM ('archive', 'timeline', 'hidden', 'locked');

-- A uuid v7: 48 bits of milliseconds since 1970, then the random bits of a uuid v4 with its
-- version nibble turned from 4 into 7 (the variant bits are already right).
CREATE FUNCTION immich_uuid_v7(moment timestamp with time zone DEFAULT clock_timestamp()) RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
      PLACING substring(int8send((extract(epoch FROM moment) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE asset (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "ownerId" uuid NOT NULL,
  type character varying NOT NULL DEFAULT 'IMAGE',
  visibility asset_visibility_enum NOT NULL DEFAULT 'timeline',
  "deletedAt" timestamp with time zone,
  "fileCreatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  "createdAt" timestamp with time zone NOT NULL DEFAULT now(),
  "updatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  "updateId" uuid NOT NULL DEFAULT immich_uuid_v7(),
  "isFavorite" boolean NOT NULL DEFAULT false,
  "isEdited" boolean NOT NULL DEFAULT false,
  "originalFileName" character varying NOT NULL DEFAULT 'IMG.jpg'
);
CREATE INDEX "asset_updateId_idx" ON asset ("updateId");
-- Immich's trigger on its tables with an "updateId": every update of a row gives it a new one.
CREATE FUNCTION updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  clock_timestamp timestamp := clock_timestamp();
BEGIN
  new."updatedAt" = clock_timestamp;
  new."updateId" = immich_uuid_v7(clock_timestamp);
  RETURN new;
END
$$;
CREATE TRIGGER "asset_updatedAt" BEFORE UPDATE ON asset FOR EACH ROW WHEN (pg_trigger_depth() = 0)
  EXECUTE FUNCTION updated_at();

-- Immich's editor (2.5+): the edits of a photo; triggers keep asset."isEdited" in step and (2.6+)
-- audit removed edits.
CREATE TABLE asset_edit (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  action character varying NOT NULL,
  parameters jsonb NOT NULL,
  sequence integer NOT NULL,
  "updatedAt" timestamp with time zone NOT NULL DEFAULT now(),
  "updateId" uuid NOT NULL DEFAULT immich_uuid_v7(),
  UNIQUE ("assetId", sequence)
);
CREATE INDEX "asset_edit_updateId_idx" ON asset_edit ("updateId");
CREATE TRIGGER "asset_edit_updatedAt" BEFORE UPDATE ON asset_edit FOR EACH ROW WHEN (pg_trigger_depth() = 0)
  EXECUTE FUNCTION updated_at();
CREATE FUNCTION asset_edit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE asset SET "isEdited" = true FROM inserted_edit
  WHERE asset.id = inserted_edit."assetId" AND NOT asset."isEdited";
  RETURN NULL;
END
$$;
CREATE TRIGGER asset_edit_insert AFTER INSERT ON asset_edit REFERENCING NEW TABLE AS inserted_edit
  FOR EACH STATEMENT EXECUTE FUNCTION asset_edit_insert();
CREATE FUNCTION asset_edit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE asset SET "isEdited" = false FROM deleted_edit
  WHERE asset.id = deleted_edit."assetId" AND asset."isEdited"
    AND NOT EXISTS (SELECT FROM asset_edit edit WHERE edit."assetId" = asset.id);
  RETURN NULL;
END
$$;
CREATE TRIGGER asset_edit_delete AFTER DELETE ON asset_edit REFERENCING OLD TABLE AS deleted_edit
  FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION asset_edit_delete();
CREATE TABLE asset_edit_audit (
  id uuid PRIMARY KEY DEFAULT immich_uuid_v7(),
  "editId" uuid NOT NULL,
  "assetId" uuid NOT NULL,
  "deletedAt" timestamp with time zone NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX "asset_edit_audit_assetId_idx" ON asset_edit_audit ("assetId");
CREATE INDEX "asset_edit_audit_deletedAt_idx" ON asset_edit_audit ("deletedAt");
CREATE FUNCTION asset_edit_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO asset_edit_audit ("editId", "assetId") SELECT id, "assetId" FROM old;
  RETURN NULL;
END
$$;
CREATE TRIGGER asset_edit_audit AFTER DELETE ON asset_edit REFERENCING OLD TABLE AS old
  FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION asset_edit_audit();

CREATE TABLE asset_file (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  type character varying NOT NULL,
  path character varying NOT NULL,
  "isEdited" boolean NOT NULL DEFAULT false
);

CREATE TABLE asset_exif (
  "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
  city character varying,
  tags character varying[],
  "lockedProperties" character varying[]
);

CREATE TABLE asset_ocr (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
  x3 real NOT NULL, y3 real NOT NULL, x4 real NOT NULL, y4 real NOT NULL,
  "boxScore" real NOT NULL,
  "textScore" real NOT NULL,
  text text NOT NULL,
  "isVisible" boolean NOT NULL DEFAULT true,
  "updateId" uuid NOT NULL DEFAULT immich_uuid_v7()
);
CREATE INDEX "asset_ocr_updateId_idx" ON asset_ocr ("updateId");

CREATE TABLE asset_ocr_audit (
  id uuid PRIMARY KEY DEFAULT immich_uuid_v7(),
  "assetId" uuid NOT NULL,
  "deletedAt" timestamp with time zone NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX "asset_ocr_audit_assetId_idx" ON asset_ocr_audit ("assetId");
CREATE INDEX "asset_ocr_audit_deletedAt_idx" ON asset_ocr_audit ("deletedAt");

CREATE FUNCTION asset_ocr_delete_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO asset_ocr_audit ("assetId") SELECT "assetId" FROM old;
  RETURN NULL;
END
$$;
CREATE TRIGGER asset_ocr_delete_audit AFTER DELETE ON asset_ocr
  REFERENCING OLD TABLE AS old FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
  EXECUTE FUNCTION asset_ocr_delete_audit();

CREATE INDEX "asset_ocr_assetId_idx" ON asset_ocr ("assetId");

CREATE TABLE asset_job_status (
  "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
  "facesRecognizedAt" timestamp with time zone,
  "metadataExtractedAt" timestamp with time zone,
  "duplicatesDetectedAt" timestamp with time zone,
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
  "assetId" uuid NOT NULL REFERENCES asset (id) ON DELETE CASCADE,
  "tagId" uuid NOT NULL REFERENCES tag (id) ON DELETE CASCADE,
  PRIMARY KEY ("assetId", "tagId")
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
