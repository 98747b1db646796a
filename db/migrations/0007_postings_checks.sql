-- Postings can only be written by the statement that writes their entry, and the journal's checks
-- cost less per entry (docs/benchmarks.md has the numbers; ADR 0009 the reasons).

-- A posting must be written by the same statement as its entry (the same command of the same
-- transaction: the rows' cmin), with the entry's recorded_at, and name an account that exists in the
-- posting's currency. The same-statement rule closes a gap the deferred balance check alone left
-- open: after SET CONSTRAINTS entry_balanced IMMEDIATE had checked an entry, a later statement of
-- the same transaction could add an unbalancing posting to it. Now every posting of an entry is in
-- before the entry's check can run, whenever it runs.
-- One query; LATERAL lookups keep it on the primary keys whatever the size of the statement (a plain
-- join's plan, cached for the connection, could turn into a hash join over all entries after one
-- large statement), so the function needs no SET clauses, which cost more than the query.
CREATE OR REPLACE FUNCTION postings_check_same_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  violation int;
BEGIN
  SELECT CASE WHEN a.currency IS DISTINCT FROM p.currency THEN 2 ELSE 1 END INTO violation
    FROM new_postings p
    LEFT JOIN LATERAL (SELECT e.txid, e.recorded_at, e.cmin FROM entries e WHERE e.id = p.entry_id LIMIT 1) e ON true
    LEFT JOIN LATERAL (SELECT a.currency FROM accounts a WHERE a.id = p.account_id LIMIT 1) a ON true
   WHERE e.txid IS DISTINCT FROM pg_current_xact_id()
      OR e.recorded_at IS DISTINCT FROM p.recorded_at
      OR e.cmin IS DISTINCT FROM (SELECT x.cmin FROM postings x WHERE x.id = (SELECT f.id FROM new_postings f LIMIT 1))
      OR a.currency IS DISTINCT FROM p.currency
   LIMIT 1;
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

-- The balance check reads the entry's postings once, with one aggregate; only an entry in several
-- currencies is summed per currency.
CREATE OR REPLACE FUNCTION entry_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  n_postings int;
  lowest text;
  highest text;
  net numeric;
  unbalanced text;
BEGIN
  SELECT count(*), min(currency), max(currency), sum(CASE side WHEN 'debit' THEN amount ELSE -amount END)
    INTO n_postings, lowest, highest, net
    FROM postings WHERE entry_id = NEW.id;
  IF n_postings < 2 THEN
    RAISE EXCEPTION 'entry % has % postings; an entry needs at least two', NEW.id, n_postings
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  IF lowest = highest THEN
    unbalanced := CASE WHEN net <> 0 THEN lowest END;
  ELSE
    SELECT min(currency) INTO unbalanced
      FROM (SELECT currency FROM postings WHERE entry_id = NEW.id GROUP BY currency
             HAVING sum(CASE side WHEN 'debit' THEN amount ELSE -amount END) <> 0) per_currency;
  END IF;
  IF unbalanced IS NOT NULL THEN
    RAISE EXCEPTION 'entry % does not balance in %: debits differ from credits', NEW.id, unbalanced
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  RETURN NULL;
END
$$;

-- The scale check without a function call: PostgreSQL plans a table's CHECK expressions again for
-- every statement that writes it, and inlining currency_scale() parsed the function's SQL each
-- time. The scales are currency_scale()'s (a test compares both with the money package); a
-- posting's currency is always its account's, and accounts only take currencies currency_scale()
-- knows.
ALTER TABLE postings DROP CONSTRAINT postings_amount_scale,
  ADD CONSTRAINT postings_amount_scale CHECK (amount = trunc(amount, CASE WHEN currency IN ('JPY', 'PTS') THEN 0 ELSE 2 END));
