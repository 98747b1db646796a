-- References of the rebate tables are checked once per statement instead of by foreign keys.
--
-- A foreign key checks each inserted row with its own query and a FOR KEY SHARE lock on the row it
-- names. A batch of 100 orders writes ~400 lots, each naming the same program version row and a
-- few popular referrers: the per-row checks cost more than the inserts, and every concurrent
-- writer built a new multixact on the same program row (measured: docs/benchmarks.md). The
-- statement triggers below check the whole statement's rows with one indexed query and no locks,
-- as postings_same_transaction does for the journal. That is safe because the rows they name can
-- no longer disappear or change their keys: the guards below refuse it.

ALTER TABLE orders
  DROP CONSTRAINT orders_event_id_fkey,
  DROP CONSTRAINT orders_member_id_fkey,
  DROP CONSTRAINT orders_program_version_fkey,
  DROP CONSTRAINT orders_accrual_entry_id_fkey,
  DROP CONSTRAINT orders_release_entry_id_fkey;
ALTER TABLE rebate_lots
  DROP CONSTRAINT rebate_lots_order_id_fkey,
  DROP CONSTRAINT rebate_lots_beneficiary_id_fkey,
  DROP CONSTRAINT rebate_lots_program_version_fkey;
ALTER TABLE refunds
  DROP CONSTRAINT refunds_event_id_fkey,
  DROP CONSTRAINT refunds_entry_id_fkey;

-- Guards: what the checks rely on never changes.
CREATE TRIGGER programs_append_only BEFORE UPDATE OR DELETE ON programs
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER programs_no_truncate BEFORE TRUNCATE ON programs
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER members_no_delete BEFORE DELETE ON members
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER members_no_truncate BEFORE TRUNCATE ON members
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER members_fixed_identity BEFORE UPDATE ON members
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.referrer_id IS DISTINCT FROM NEW.referrer_id
                     OR OLD.upline IS DISTINCT FROM NEW.upline OR OLD.referral_code IS DISTINCT FROM NEW.referral_code)
  EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER orders_no_delete BEFORE DELETE ON orders
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER orders_no_truncate BEFORE TRUNCATE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER orders_fixed_identity BEFORE UPDATE ON orders
  FOR EACH ROW WHEN (OLD.order_id IS DISTINCT FROM NEW.order_id OR OLD.event_id IS DISTINCT FROM NEW.event_id
                     OR OLD.member_id IS DISTINCT FROM NEW.member_id OR OLD.amount IS DISTINCT FROM NEW.amount
                     OR OLD.program_version IS DISTINCT FROM NEW.program_version)
  EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER rebate_lots_no_delete BEFORE DELETE ON rebate_lots
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER rebate_lots_no_truncate BEFORE TRUNCATE ON rebate_lots
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER rebate_lots_fixed_identity BEFORE UPDATE ON rebate_lots
  FOR EACH ROW WHEN (OLD.order_id IS DISTINCT FROM NEW.order_id OR OLD.beneficiary_id IS DISTINCT FROM NEW.beneficiary_id
                     OR OLD.leg IS DISTINCT FROM NEW.leg OR OLD.amount IS DISTINCT FROM NEW.amount
                     OR OLD.program_version IS DISTINCT FROM NEW.program_version)
  EXECUTE FUNCTION journal_refuse_change();

CREATE TRIGGER refunds_no_delete BEFORE DELETE ON refunds
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER refunds_no_truncate BEFORE TRUNCATE ON refunds
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- An event's claim may be dropped while it is unanswered (the event was refused and changes
-- nothing); an answered event is permanent.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.status_code = 0 THEN
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.id = NEW.id AND OLD.status_code = 0 THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'events: an answered event is permanent: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_permanent BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- The checks. The SET clauses keep the planner on index lookups, whatever the statement's size.
CREATE FUNCTION orders_check_references() RETURNS trigger
LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
AS $$
DECLARE
  bad text;
BEGIN
  SELECT o.order_id INTO bad FROM new_orders o
   WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = o.event_id)
      OR NOT EXISTS (SELECT 1 FROM members m WHERE m.id = o.member_id)
      OR NOT EXISTS (SELECT 1 FROM programs p WHERE p.version = o.program_version)
      OR (o.accrual_entry_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.id = o.accrual_entry_id))
      OR (o.release_entry_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.id = o.release_entry_id))
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'order % names an event, member, program or entry that does not exist', bad
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'orders_references';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER orders_references_insert AFTER INSERT ON orders
  REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION orders_check_references();
CREATE TRIGGER orders_references_update AFTER UPDATE ON orders
  REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION orders_check_references();

CREATE FUNCTION rebate_lots_check_references() RETURNS trigger
LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
AS $$
DECLARE
  bad text;
BEGIN
  SELECT l.order_id INTO bad FROM new_lots l
   WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = l.order_id)
      OR NOT EXISTS (SELECT 1 FROM members m WHERE m.id = l.beneficiary_id)
      OR NOT EXISTS (SELECT 1 FROM programs p WHERE p.version = l.program_version)
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'a lot of order % names an order, member or program that does not exist', bad
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'rebate_lots_references';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER rebate_lots_references AFTER INSERT ON rebate_lots
  REFERENCING NEW TABLE AS new_lots FOR EACH STATEMENT EXECUTE FUNCTION rebate_lots_check_references();

CREATE FUNCTION refunds_check_references() RETURNS trigger
LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
AS $$
DECLARE
  bad text;
BEGIN
  SELECT r.refund_id INTO bad FROM new_refunds r
   WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id)
      OR (r.entry_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.id = r.entry_id))
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'refund % names an event or entry that does not exist', bad
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'refunds_references';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER refunds_references_insert AFTER INSERT ON refunds
  REFERENCING NEW TABLE AS new_refunds FOR EACH STATEMENT EXECUTE FUNCTION refunds_check_references();
CREATE TRIGGER refunds_references_update AFTER UPDATE ON refunds
  REFERENCING NEW TABLE AS new_refunds FOR EACH STATEMENT EXECUTE FUNCTION refunds_check_references();
