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

-- Raises for an entry claiming another transaction's txid (used by the statement trigger below).
CREATE FUNCTION entries_refuse_foreign_txid() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'an entry''s txid must be the transaction that writes it'
    USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_txid_current';
END
$$;

-- One statement: a statement whose keys were all replays inserted no entry and queues nothing.
CREATE FUNCTION entries_queue_balance_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO entry_checks (txid, first_entry_id, last_entry_id)
  SELECT pg_current_xact_id(), min(e.id), max(e.id) FROM new_entries e
  HAVING count(*) > 0
     AND CASE WHEN bool_and(e.txid = pg_current_xact_id()) THEN true ELSE entries_refuse_foreign_txid() END;
  RETURN NULL;
END
$$;
CREATE TRIGGER entries_queue_balance_check AFTER INSERT ON entries
  REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION entries_queue_balance_check();

-- One query reads every entry of the range with its postings (by index) and finds the first entry
-- with fewer than two postings or, in one currency, debits unequal to credits; only when that
-- query saw an entry in several currencies (rare) does a second one sum those per currency. The
-- failing entry is then read again for the message.
CREATE FUNCTION entry_checks_run() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad_id bigint;
  several boolean;
  n_postings bigint;
  lowest text;
  bad_currency text;
BEGIN
  SELECT min(e.id) FILTER (WHERE c.n < 2 OR (c.lo = c.hi AND c.net <> 0)), bool_or(c.lo <> c.hi)
    INTO bad_id, several
    FROM entries e CROSS JOIN LATERAL (
      SELECT count(*) AS n, min(p.currency) AS lo, max(p.currency) AS hi,
             sum(CASE p.side WHEN 'debit' THEN p.amount ELSE -p.amount END) AS net
        FROM postings p WHERE p.entry_id = e.id) c
   WHERE e.txid = NEW.txid AND e.id BETWEEN NEW.first_entry_id AND NEW.last_entry_id;
  IF bad_id IS NOT NULL THEN
    SELECT count(*), min(currency) INTO n_postings, lowest FROM postings WHERE entry_id = bad_id;
    IF n_postings < 2 THEN
      RAISE EXCEPTION 'entry % has % postings; an entry needs at least two', bad_id, n_postings
        USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
    END IF;
    RAISE EXCEPTION 'entry % does not balance in %: debits differ from credits', bad_id, lowest
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  IF several THEN
    SELECT e.id, p.currency INTO bad_id, bad_currency
      FROM entries e JOIN postings p ON p.entry_id = e.id
     WHERE e.txid = NEW.txid AND e.id BETWEEN NEW.first_entry_id AND NEW.last_entry_id
     GROUP BY e.id, p.currency
    HAVING sum(CASE p.side WHEN 'debit' THEN p.amount ELSE -p.amount END) <> 0
     ORDER BY e.id, p.currency LIMIT 1;
    IF bad_id IS NOT NULL THEN
      RAISE EXCEPTION 'entry % does not balance in %: debits differ from credits', bad_id, bad_currency
        USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
    END IF;
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
