-- The balance check stays a deferred constraint trigger checked at commit, but it runs once per
-- statement that writes entries instead of once per entry (ADR 0010): a per-entry trigger paid a
-- plpgsql call and an executor start-up for every entry (~20 µs each, ~10% of the machine's CPU
-- in batches of 100), where one query can check a statement's entries together.
--
-- How: every statement that inserts entries queues one row in entry_checks (a statement trigger on
-- entries, so raw SQL cannot skip it) naming its transaction and the lowest and highest id it
-- inserted. entry_balanced, a deferred constraint trigger on that row, checks at commit (or at SET
-- CONSTRAINTS entry_balanced IMMEDIATE) every entry of the transaction in that id range: at least
-- two postings, and debits equal credits in each currency. Postings can only be written by their
-- entry's statement (0007), so by then every posting of those entries is in. An entry's txid must
-- be the transaction writing it, or the range would not find it: the statement trigger refuses
-- any other.
--
-- entry_checks has no index: nothing looks a row up. Rows of transactions that have ended (their
-- checks ran, or the transaction rolled back) are deleted behind the write path by the sealing
-- job (EntryChecksPurge), so the table stays a few pages long. Deleting a row inside the check
-- itself would need a lookup, and a generic plan on a table this small scans it: measured slower
-- than the per-entry trigger this replaces.

CREATE TABLE entry_checks (
  txid           xid8   NOT NULL,
  first_entry_id bigint NOT NULL,
  last_entry_id  bigint NOT NULL
);

CREATE FUNCTION entries_queue_balance_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  lowest bigint;
  highest bigint;
  own boolean;
BEGIN
  SELECT count(*), min(e.id), max(e.id), bool_and(e.txid = pg_current_xact_id())
    INTO n, lowest, highest, own
    FROM new_entries e;
  IF n = 0 THEN
    RETURN NULL; -- every key was a replay
  END IF;
  IF NOT own THEN
    RAISE EXCEPTION 'an entry''s txid must be the transaction that writes it'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_txid_current';
  END IF;
  INSERT INTO entry_checks (txid, first_entry_id, last_entry_id) VALUES (pg_current_xact_id(), lowest, highest);
  RETURN NULL;
END
$$;
CREATE TRIGGER entries_queue_balance_check AFTER INSERT ON entries
  REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION entries_queue_balance_check();

-- One query for the statement's entries: each entry's postings by index, grouped per currency;
-- only a failing row comes back (the lowest entry id, then currency, for a stable message).
CREATE FUNCTION entry_checks_run() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad_id bigint;
  bad_currency text;
  n_postings bigint;
BEGIN
  SELECT e.id, b.currency, coalesce(b.n, 0) INTO bad_id, bad_currency, n_postings
    FROM entries e
    LEFT JOIN LATERAL (
      SELECT p.currency, sum(count(*)) OVER () AS n,
             sum(CASE p.side WHEN 'debit' THEN p.amount ELSE -p.amount END) AS net
        FROM postings p WHERE p.entry_id = e.id GROUP BY p.currency) b ON true
   WHERE e.txid = NEW.txid AND e.id BETWEEN NEW.first_entry_id AND NEW.last_entry_id
     AND (b.n IS NULL OR b.n < 2 OR b.net <> 0)
   ORDER BY e.id, b.currency
   LIMIT 1;
  IF bad_id IS NOT NULL AND n_postings < 2 THEN
    RAISE EXCEPTION 'entry % has % postings; an entry needs at least two', bad_id, n_postings
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  ELSIF bad_id IS NOT NULL THEN
    RAISE EXCEPTION 'entry % does not balance in %: debits differ from credits', bad_id, bad_currency
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER entry_balanced AFTER INSERT ON entry_checks
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entry_checks_run();

-- A queued check cannot be changed, and cannot be removed while its transaction runs; once every
-- transaction older than the current snapshot has ended, its row is only history. (Even a row
-- removed early would still be checked: PostgreSQL fires a queued deferred trigger with the row as
-- inserted.)
CREATE FUNCTION entry_checks_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.txid < pg_snapshot_xmin(pg_current_snapshot()) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'entry_checks: % refused; a queued balance check runs at commit', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER entry_checks_no_change BEFORE UPDATE OR DELETE ON entry_checks
  FOR EACH ROW EXECUTE FUNCTION entry_checks_refuse_change();
CREATE TRIGGER entry_checks_no_truncate BEFORE TRUNCATE ON entry_checks
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

DROP TRIGGER entry_balanced ON entries;
DROP FUNCTION entry_check_balanced();
