-- Webhooks (internal/notify): endpoints the operator registers, and the transactional outbox of
-- their deliveries. A delivery row is written by the same transaction as the change it reports, and
-- only for endpoints subscribed to its type (one INSERT ... SELECT joins the notes to the endpoints,
-- so with no subscriber nothing is written). River's webhooks.dispatch job sends what is due.

CREATE TABLE webhook_endpoints (
  id          text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  url         text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
  events      text[]      NOT NULL CHECK (cardinality(events) >= 1),
  secret      text        NOT NULL CHECK (length(secret) >= 16),
  created_at  timestamptz NOT NULL,
  deleted_at  timestamptz
);

-- Deliveries name their endpoint without a foreign key: every insert would otherwise take a key-share
-- lock on the one endpoint row that every write transaction names (a hot row, as in ADR 0002). The
-- insert reads the endpoint in the same statement, and endpoints are never deleted (only marked).
CREATE TABLE webhook_deliveries (
  id               bigint      GENERATED ALWAYS AS IDENTITY,
  event_id         text        NOT NULL,
  endpoint_id      text        NOT NULL,
  event_type       text        NOT NULL,
  data             jsonb       NOT NULL,
  created_at       timestamptz NOT NULL,
  status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
  attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  timestamptz NOT NULL,
  last_attempt_at  timestamptz,
  last_status      integer,
  last_error       text        NOT NULL DEFAULT '',
  delivered_at     timestamptz,
  -- Keyed by endpoint first: an endpoint's deliveries are listed newest first from the key. Each
  -- row has its own event id per endpoint by construction (one statement makes the event id and
  -- joins it to the endpoints), so no second unique index is paid for on the write path.
  CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (endpoint_id, id),
  CONSTRAINT webhook_deliveries_delivered_check CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
-- What the dispatcher claims: due, pending deliveries, oldest due first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE FUNCTION webhooks_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege',
    HINT = 'an endpoint is deleted by setting deleted_at; deliveries are the record of what was sent';
END
$$;
CREATE TRIGGER webhook_endpoints_no_delete BEFORE DELETE OR TRUNCATE ON webhook_endpoints FOR EACH STATEMENT EXECUTE FUNCTION webhooks_refuse_delete();
CREATE TRIGGER webhook_deliveries_no_truncate BEFORE TRUNCATE ON webhook_deliveries FOR EACH STATEMENT EXECUTE FUNCTION webhooks_refuse_delete();

-- Deliveries are pruned once settled and old (webhooks.prune, serve --webhook-retention); one still
-- pending is never deleted: it is a committed change not yet told.
CREATE FUNCTION webhook_deliveries_refuse_pending_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'pending' THEN
    RAISE EXCEPTION 'a pending webhook delivery is never deleted' USING ERRCODE = 'insufficient_privilege',
      HINT = 'delete an endpoint to cancel its pending deliveries';
  END IF;
  RETURN OLD;
END
$$;
CREATE TRIGGER webhook_deliveries_no_pending_delete BEFORE DELETE ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_refuse_pending_delete();
-- What the pruning reads: settled deliveries by age.
CREATE INDEX webhook_deliveries_settled_idx ON webhook_deliveries (created_at) WHERE status <> 'pending';
