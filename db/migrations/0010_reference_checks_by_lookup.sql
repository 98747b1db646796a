-- The statement triggers that stand in for foreign keys on orders, rebate lots, refunds and seals
-- look each named row up by its key, whatever the sizes of the statement and of the tables.
--
-- Their queries used NOT EXISTS under an OR, with SET enable_seqscan/hashjoin/mergejoin = off to
-- keep them on index lookups. That did not: PostgreSQL may run such a NOT EXISTS as a hashed subplan,
-- built from the whole referenced table, and with sequential scans disabled it built it from a
-- bitmap scan of every row. Measured in `bench events --batch 100`: every insert of a batch's
-- orders read all entries twice (50,000 rows, ~35 ms per statement, more as the journal grows), and
-- the test TestReferenceChecksReadOnlyTheRowsTheyName counted 6,203 entry rows read to check 200
-- orders. A LATERAL subquery with LIMIT cannot be flattened or hashed: it runs once per row as a
-- primary-key lookup (as postings_same_transaction does since migration 0007), so the functions
-- need no SET clauses, which also cost more per call than the queries.

CREATE OR REPLACE FUNCTION orders_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_orders o
               LEFT JOIN LATERAL (SELECT true AS ok FROM events e WHERE e.id = o.event_id LIMIT 1) ev ON true
               LEFT JOIN LATERAL (SELECT true AS ok FROM members m WHERE m.id = o.member_id LIMIT 1) mb ON true
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = o.accrual_entry_id LIMIT 1) ac ON true
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = o.release_entry_id LIMIT 1) rl ON true
              WHERE ev.ok IS NULL OR mb.ok IS NULL
                 OR (o.accrual_entry_id IS NOT NULL AND ac.ok IS NULL)
                 OR (o.release_entry_id IS NOT NULL AND rl.ok IS NULL))
     OR EXISTS (SELECT 1 FROM (SELECT DISTINCT program_version FROM new_orders) o
               LEFT JOIN LATERAL (SELECT true AS ok FROM programs p WHERE p.version = o.program_version LIMIT 1) pr ON true
              WHERE pr.ok IS NULL) THEN
    RAISE EXCEPTION 'an order names an event, member, program or entry that does not exist'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'orders_references';
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rebate_lots_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT order_id FROM new_lots) l
               LEFT JOIN LATERAL (SELECT true AS ok FROM orders o WHERE o.order_id = l.order_id LIMIT 1) r ON true
              WHERE r.ok IS NULL)
     OR EXISTS (SELECT 1 FROM (SELECT DISTINCT beneficiary_id FROM new_lots) l
               LEFT JOIN LATERAL (SELECT true AS ok FROM members m WHERE m.id = l.beneficiary_id LIMIT 1) r ON true
              WHERE r.ok IS NULL)
     OR EXISTS (SELECT 1 FROM (SELECT DISTINCT program_version FROM new_lots) l
               LEFT JOIN LATERAL (SELECT true AS ok FROM programs p WHERE p.version = l.program_version LIMIT 1) r ON true
              WHERE r.ok IS NULL) THEN
    RAISE EXCEPTION 'a lot names an order, member or program that does not exist'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'rebate_lots_references';
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION refunds_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad text;
BEGIN
  SELECT r.refund_id INTO bad FROM new_refunds r
    LEFT JOIN LATERAL (SELECT true AS ok FROM events e WHERE e.id = r.event_id LIMIT 1) ev ON true
    LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = r.entry_id LIMIT 1) en ON true
   WHERE ev.ok IS NULL OR (r.entry_id IS NOT NULL AND en.ok IS NULL)
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'refund % names an event or entry that does not exist', bad
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'refunds_references';
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION entry_seals_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_seals s
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries e WHERE e.id = s.entry_id AND e.txid = s.entry_txid LIMIT 1) en ON true
              WHERE en.ok IS NULL) THEN
    RAISE EXCEPTION 'a seal names an entry that does not exist'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'entry_seals_references';
  END IF;
  RETURN NULL;
END
$$;
