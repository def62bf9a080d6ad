-- The zhparser extension and the `chinese` text search configuration. The database image runs
-- it when a new data directory is initialised; the gateway runs it at start on a database whose
-- server has zhparser (an existing Immich database switched to our image). Idempotent.
CREATE EXTENSION IF NOT EXISTS zhparser;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'chinese') THEN
    CREATE TEXT SEARCH CONFIGURATION chinese (PARSER = zhparser);
    -- nouns, verbs, adjectives, idioms, exclamations, abbreviations, temporary idioms,
    -- numerals, unknown words; English words come as e
    ALTER TEXT SEARCH CONFIGURATION chinese ADD MAPPING FOR n, v, a, i, e, j, l, m, x WITH simple;
  END IF;
END
$$;
