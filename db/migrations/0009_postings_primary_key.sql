-- Postings are keyed by (entry_id, id) instead of by id alone, and the separate entry_id index goes:
-- every posting write updated three indexes (id, entry_id, account), now two. Postings are only
-- ever read by entry (balance check, replays, sealing, export) or by account (balances, statements),
-- never by id alone; id stays unique (an identity column that is GENERATED ALWAYS) and keeps
-- ordering an account's postings and an entry's postings. ADR 0011 has the measurements.
-- On an existing journal this builds one index over all postings while the table is locked for
-- writes (0.5 s for 0009 and 0010 together on 1,010,000 postings, 2 cores); see docs/operations.md.
CREATE UNIQUE INDEX postings_entry_id_id_key ON postings (entry_id, id);
ALTER TABLE postings
  DROP CONSTRAINT postings_pkey,
  ADD CONSTRAINT postings_pkey PRIMARY KEY USING INDEX postings_entry_id_id_key;
DROP INDEX postings_entry_id_idx;

-- The same-statement check looks each entry and each account up once per statement, not once per
-- posting (400 postings of 100 entries name 100 entries and about 300 accounts: 400 lookups instead
-- of 800, about 20% of the trigger's time), and it finds the statement's command through the primary
-- key's (entry_id, id).
CREATE OR REPLACE FUNCTION postings_check_same_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  violation int;
BEGIN
  SELECT v INTO violation FROM (
    SELECT 1 AS v
      FROM (SELECT DISTINCT entry_id, recorded_at FROM new_postings) p
      LEFT JOIN LATERAL (SELECT e.txid, e.recorded_at, e.cmin FROM entries e WHERE e.id = p.entry_id LIMIT 1) e ON true
     WHERE e.txid IS DISTINCT FROM pg_current_xact_id()
        OR e.recorded_at IS DISTINCT FROM p.recorded_at
        OR e.cmin IS DISTINCT FROM (SELECT x.cmin FROM postings x, (SELECT f.entry_id, f.id FROM new_postings f LIMIT 1) f
                                     WHERE x.entry_id = f.entry_id AND x.id = f.id)
    UNION ALL
    SELECT 2
      FROM (SELECT DISTINCT account_id, currency FROM new_postings) p
      LEFT JOIN LATERAL (SELECT a.currency FROM accounts a WHERE a.id = p.account_id LIMIT 1) a ON true
     WHERE a.currency IS DISTINCT FROM p.currency
  ) v LIMIT 1;
  IF violation = 1 THEN
    RAISE EXCEPTION 'postings can only be added to an entry by the statement that creates it'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'postings_same_transaction';
  ELSIF violation = 2 THEN
    RAISE EXCEPTION 'a posting names an account that does not exist in the posting''s currency'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'postings_account_currency';
  END IF;
  RETURN NULL;
END
$$;
