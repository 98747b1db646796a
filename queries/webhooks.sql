-- name: WebhookEndpointInsert :exec
INSERT INTO webhook_endpoints (id, url, events, secret, created_at)
VALUES (@id, @url, @events::text[], @secret, @created_at);

-- name: WebhookEndpointGet :one
SELECT id, url, events, secret, created_at, deleted_at
FROM webhook_endpoints
WHERE id = @id;

-- name: WebhookEndpointList :many
SELECT id, url, events, secret, created_at, deleted_at
FROM webhook_endpoints
WHERE deleted_at IS NULL AND id > @after_id::text
ORDER BY id
LIMIT @max_rows;

-- name: WebhookEndpointDelete :execrows
-- WebhookEndpointDelete marks the endpoint deleted (rows are kept: deliveries name them); its
-- pending deliveries are cancelled in the same statement.
WITH ended AS (
  UPDATE webhook_endpoints SET deleted_at = @now::timestamptz
  WHERE webhook_endpoints.id = @id AND webhook_endpoints.deleted_at IS NULL
  RETURNING id
)
UPDATE webhook_deliveries d SET status = 'cancelled', last_error = 'the endpoint was deleted'
FROM ended
WHERE d.endpoint_id = ended.id AND d.status = 'pending';

-- name: WebhookNotify :exec
-- WebhookNotify is the outbox's one write: each note becomes one event (one id) and a delivery per
-- live endpoint subscribed to its type. With no such endpoint it writes nothing.
WITH notes AS MATERIALIZED (
  SELECT 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id, n.event_type, n.data
  FROM (SELECT unnest(@event_types::text[]) AS event_type, unnest(@datas::text[]) AS data) n
  WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.deleted_at IS NULL AND n.event_type = ANY (e.events))
)
INSERT INTO webhook_deliveries (event_id, endpoint_id, event_type, data, created_at, next_attempt_at)
SELECT notes.event_id, e.id, notes.event_type, notes.data::jsonb, now(), now()
FROM notes
JOIN webhook_endpoints e ON e.deleted_at IS NULL AND notes.event_type = ANY (e.events);

-- name: WebhookDeliveryClaim :many
-- WebhookDeliveryClaim takes due deliveries for one round by a session advisory lock per delivery
-- (class @lock_class, key the id's low 32 bits), on the connection the round holds: a row is not
-- written to claim it, and a dispatcher that dies releases its claims with its connection, so they
-- are sent again (at least once). A delivery locked by another dispatcher is skipped. Due is by the
-- later of the service's clock and the database's (new rows are stamped with the latter). The
-- candidates are materialized first so that the lock is tried only on rows the round takes.
WITH due AS MATERIALIZED (
  SELECT d.endpoint_id, d.id, d.event_id, d.event_type, d.data, d.created_at, d.attempts, d.next_attempt_at, e.url, e.secret
  FROM webhook_deliveries d
  JOIN webhook_endpoints e ON e.id = d.endpoint_id
  WHERE d.status = 'pending' AND d.next_attempt_at <= greatest(@now::timestamptz, now())
  ORDER BY d.next_attempt_at
  LIMIT @candidates
)
-- Nothing but the lock between the scan and the limit: the lock is tried row by row, as the limit
-- pulls them (the dispatcher also releases every session lock when its run ends).
SELECT due.endpoint_id, due.id, due.event_id, due.event_type, due.data, due.created_at, due.attempts, due.url, due.secret
FROM due
WHERE pg_try_advisory_lock(@lock_class::int, (due.id & 2147483647)::int)
LIMIT @max_rows;

-- name: WebhookDeliveryUnlockAll :exec
SELECT pg_advisory_unlock_all();

-- name: WebhookDeliveryUnlock :exec
SELECT pg_advisory_unlock(@lock_class::int, (id & 2147483647)::int) FROM unnest(@ids::bigint[]) AS id;

-- name: WebhookDeliveryRecord :exec
-- WebhookDeliveryRecord writes a round's results at once: delivered, or failed and tried again at
-- next_attempt_at, or dead (last_status 0: no HTTP answer). Only a delivery still pending is
-- changed (an endpoint deleted meanwhile cancelled it). "Still pending" is written as "not settled"
-- on purpose: status = 'pending' would match the due index's predicate, and with a backlog the
-- planner then scanned every pending row for each round (123 µs a delivery) instead of looking the
-- round's rows up by key.
UPDATE webhook_deliveries d
SET status = v.status,
    attempts = d.attempts + 1,
    last_attempt_at = @now::timestamptz,
    delivered_at = CASE WHEN v.status = 'delivered' THEN @now::timestamptz END,
    next_attempt_at = v.next_attempt_at,
    last_status = NULLIF(v.last_status, 0),
    last_error = v.last_error
FROM (SELECT unnest(@endpoint_ids::text[]) AS endpoint_id, unnest(@ids::bigint[]) AS id,
             unnest(@statuses::text[]) AS status, unnest(@next_attempt_ats::timestamptz[]) AS next_attempt_at,
             unnest(@last_statuses::int[]) AS last_status, unnest(@last_errors::text[]) AS last_error) v
WHERE d.endpoint_id = v.endpoint_id AND d.id = v.id AND d.status NOT IN ('delivered', 'dead', 'cancelled');

-- name: WebhookDeliveryList :many
SELECT id, event_id, endpoint_id, event_type, data, created_at, status, attempts, next_attempt_at,
       last_attempt_at, last_status, last_error, delivered_at
FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id AND (@status::text = '' OR status = @status::text)
  AND (@before_id::bigint = 0 OR id < @before_id::bigint)
ORDER BY id DESC
LIMIT @max_rows;

-- name: WebhookDeliveryPrune :execrows
-- WebhookDeliveryPrune deletes up to max_rows settled deliveries created before the cutoff.
DELETE FROM webhook_deliveries d
USING (SELECT endpoint_id, id FROM webhook_deliveries
       WHERE status <> 'pending' AND created_at < @before::timestamptz
       ORDER BY created_at
       LIMIT @max_rows) old
WHERE d.endpoint_id = old.endpoint_id AND d.id = old.id;
