-- zhparser's settings for every connection to zhparser's database (the gateway also sets them on
-- its own connections): short words inside compounds are indexed too (奶茶店 -> 奶茶), and
-- punctuation is never a word. They must match the gateway's (SPLITTING in tokenize.py).
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET zhparser.multi_short = on', current_database());
  EXECUTE format('ALTER DATABASE %I SET zhparser.punctuation_ignore = on', current_database());
END
$$;
