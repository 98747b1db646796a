-- The wallet (withdrawals, review, payout batches) and the one idempotency primitive that its
-- creates, reviews and the points redemptions share. Every money movement below is a journal entry
-- written in the same transaction as these rows; these tables explain the journal, never replace it.

-- An event's answer no longer carries an HTTP status: the engine records outcomes ("applied",
-- "parked") in the stored answer, and internal/httpapi picks the status (ADR 0013).
ALTER TABLE events DROP COLUMN status_code;

-- idempotency_keys: one row per client request that creates or changes something, keyed by what the
-- request is (scope) and the client's id. The row is inserted first, in the request's transaction,
-- so a concurrent duplicate waits on the primary key until the first commits (then it replays the
-- stored answer) or rolls back (then it does the work itself). answer holds the JSON bytes exactly
-- as first answered, so a replay is byte-for-byte the original.
CREATE TABLE idempotency_keys (
  scope        text        NOT NULL CHECK (scope ~ '^[a-z_.]{1,40}$'),
  key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
  request_hash bytea       NOT NULL CHECK (length(request_hash) = 32),
  answer       bytea,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

CREATE TABLE payout_batches (
  id           text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,100}$'),
  currency     text        NOT NULL CHECK (currency IN ('CNY', 'USD', 'EUR', 'JPY')),
  provider     text        NOT NULL CHECK (length(provider) BETWEEN 1 AND 40),
  status       text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'submitted', 'completed')),
  item_count   int         NOT NULL CHECK (item_count > 0),
  amount       numeric     NOT NULL CHECK (amount > 0),
  fee          numeric     NOT NULL CHECK (fee >= 0),
  net          numeric     NOT NULL CHECK (net > 0 AND net + fee = amount),
  created_at   timestamptz NOT NULL,
  submitted_at timestamptz,
  completed_at timestamptz,
  CHECK ((status = 'open') = (submitted_at IS NULL) OR status = 'completed'),
  CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX payout_batches_created_idx ON payout_batches (created_at, id);

-- withdrawals: status moves pending_review -> approved -> paid | failed, or ends rejected (from
-- pending_review) or cancelled (pending_review or approved, not yet in a batch). A settled
-- withdrawal (rejected, cancelled, paid, failed) names the entry that settled it.
CREATE TABLE withdrawals (
  id               text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  member_id        text        NOT NULL REFERENCES members (id),
  currency         text        NOT NULL CHECK (currency IN ('CNY', 'USD', 'EUR', 'JPY')),
  amount           numeric     NOT NULL,
  fee              numeric     NOT NULL,
  destination      jsonb       NOT NULL CHECK (jsonb_typeof(destination) = 'object'),
  status           text        NOT NULL CHECK (status IN ('pending_review', 'approved', 'rejected', 'cancelled', 'paid', 'failed')),
  program_version  bigint      NOT NULL,
  requested_at     timestamptz NOT NULL,
  request_entry_id bigint      NOT NULL,
  batch_id         text        REFERENCES payout_batches (id),
  reason           text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
  reviewed_at      timestamptz,
  settled_at       timestamptz,
  settle_entry_id  bigint,
  CONSTRAINT withdrawals_amount_exact CHECK (amount > 0 AND amount = round(amount, currency_scale(currency))),
  CONSTRAINT withdrawals_fee_below_amount CHECK (fee >= 0 AND fee < amount AND fee = round(fee, currency_scale(currency))),
  CONSTRAINT withdrawals_batched_when_approved CHECK (batch_id IS NULL OR status IN ('approved', 'paid', 'failed')),
  CONSTRAINT withdrawals_paid_from_a_batch CHECK ((status IN ('paid', 'failed')) <= (batch_id IS NOT NULL)),
  CONSTRAINT withdrawals_settled_by_an_entry CHECK ((status IN ('rejected', 'cancelled', 'paid', 'failed')) = (settle_entry_id IS NOT NULL))
);
-- A member's withdrawals by currency and time: the limits' read (equality on member and currency, a
-- range of time) has no other index to choose, whatever the table's statistics say when a generic
-- plan is made; a member's list sorts its few rows.
CREATE INDEX withdrawals_member_idx ON withdrawals (member_id, currency, requested_at, id);
CREATE INDEX withdrawals_status_idx ON withdrawals (status, requested_at, id);
CREATE INDEX withdrawals_to_batch_idx ON withdrawals (currency, requested_at, id) WHERE status = 'approved' AND batch_id IS NULL;

-- payout_items: one per withdrawal in a batch. withdrawal_id is unique: a withdrawal is in at most
-- one batch, whatever cuts run at once.
CREATE TABLE payout_items (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  batch_id      text        NOT NULL REFERENCES payout_batches (id),
  withdrawal_id text        NOT NULL UNIQUE REFERENCES withdrawals (id),
  status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'failed')),
  reference     text        NOT NULL DEFAULT '' CHECK (length(reference) <= 200),
  reason        text        NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
  result_hash   bytea,
  entry_id      bigint,
  settled_at    timestamptz,
  CHECK ((status = 'pending') = (entry_id IS NULL)),
  CHECK ((status = 'pending') = (result_hash IS NULL))
);
CREATE INDEX payout_items_batch_idx ON payout_items (batch_id, id);

-- References to programs and entries are checked once per statement by looking each named row up
-- (as for orders and lots, ADRs 0007 and 0012), not by foreign keys: a foreign key takes a share
-- lock on the row it names, and every withdrawal names the one program version in force, so
-- concurrent withdrawals queued on that row's lock (multixacts on one hot row). Programs and
-- entries are never deleted (their triggers refuse it), so a check at insert and update suffices.
CREATE FUNCTION withdrawals_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_withdrawals w
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = w.request_entry_id LIMIT 1) rq ON true
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = w.settle_entry_id LIMIT 1) st ON true
              WHERE rq.ok IS NULL OR (w.settle_entry_id IS NOT NULL AND st.ok IS NULL))
     OR EXISTS (SELECT 1 FROM (SELECT DISTINCT program_version FROM new_withdrawals) w
               LEFT JOIN LATERAL (SELECT true AS ok FROM programs p WHERE p.version = w.program_version LIMIT 1) pr ON true
              WHERE pr.ok IS NULL) THEN
    RAISE EXCEPTION 'a withdrawal names a program or entry that does not exist'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'withdrawals_references';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER withdrawals_references_insert AFTER INSERT ON withdrawals
  REFERENCING NEW TABLE AS new_withdrawals FOR EACH STATEMENT EXECUTE FUNCTION withdrawals_check_references();
CREATE TRIGGER withdrawals_references_update AFTER UPDATE ON withdrawals
  REFERENCING NEW TABLE AS new_withdrawals FOR EACH STATEMENT EXECUTE FUNCTION withdrawals_check_references();

CREATE FUNCTION payout_items_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_items i
               LEFT JOIN LATERAL (SELECT true AS ok FROM entries x WHERE x.id = i.entry_id LIMIT 1) en ON true
              WHERE i.entry_id IS NOT NULL AND en.ok IS NULL) THEN
    RAISE EXCEPTION 'a payout item names an entry that does not exist'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'payout_items_references';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER payout_items_references_update AFTER UPDATE ON payout_items
  REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION payout_items_check_references();

-- What the wallet has written stays: withdrawals, batches and items are never deleted (a settled
-- withdrawal explains a journal entry).
CREATE FUNCTION wallet_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege', HINT = 'wallet records explain journal entries';
END
$$;
CREATE TRIGGER withdrawals_no_delete BEFORE DELETE OR TRUNCATE ON withdrawals FOR EACH STATEMENT EXECUTE FUNCTION wallet_refuse_delete();
CREATE TRIGGER payout_batches_no_delete BEFORE DELETE OR TRUNCATE ON payout_batches FOR EACH STATEMENT EXECUTE FUNCTION wallet_refuse_delete();
CREATE TRIGGER payout_items_no_delete BEFORE DELETE OR TRUNCATE ON payout_items FOR EACH STATEMENT EXECUTE FUNCTION wallet_refuse_delete();
