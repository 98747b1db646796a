-- name: EventClaimMany :many
-- EventClaimMany claims event ids; the ids it returns are new. An id being claimed by a concurrent
-- transaction is waited for, so a concurrent duplicate sees the first one's answer.
INSERT INTO events (id, type, request_hash, status_code, response)
SELECT unnest(@ids::text[]), unnest(@types::text[]), unnest(@request_hashes::bytea[]), 0, '{}'
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: EventListByIDs :many
SELECT id, type, request_hash, status_code, response
FROM events
WHERE id = ANY(@ids::text[]);

-- name: EventSetResponseMany :exec
UPDATE events e SET status_code = v.status_code, response = v.response
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@status_codes::int[]) AS status_code,
             unnest(@responses::jsonb[]) AS response) v
WHERE e.id = v.id;

-- name: EventForgetMany :exec
-- EventForgetMany drops the claims of events that were refused, so that they change nothing.
DELETE FROM events WHERE id = ANY(@ids::text[]);
