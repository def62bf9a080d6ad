-- The zhparser extension and the `chinese` text search configuration, in zhparser's own database
-- (never Immich's: see zhparser.py). The database image runs it when a new data directory is
-- initialised; the gateway runs it at each start. Idempotent: the token mapping is set anew
-- each time (its version is SPLITTING in tokenize.py).
CREATE EXTENSION IF NOT EXISTS zhparser;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'chinese') THEN
    CREATE TEXT SEARCH CONFIGURATION chinese (PARSER = zhparser);
  END IF;
END
$$;
-- Every content-bearing type: adjectives, distinguishing words, adverbs, English and other
-- strings, position, roots, heads, idioms, abbreviations, tails, set phrases, numerals, nouns,
-- onomatopoeia, quantities, places, times, verbs, unknown words, states. Left out: conjunctions,
-- prepositions, pronouns, auxiliaries, punctuation and modal particles (function words).
ALTER TEXT SEARCH CONFIGURATION chinese DROP MAPPING IF EXISTS
  FOR a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z;
ALTER TEXT SEARCH CONFIGURATION chinese ADD MAPPING
  FOR a, b, d, e, f, g, h, i, j, k, l, m, n, o, q, s, t, v, x, z WITH simple;
