-- name: EventListByIDs :many
SELECT id, type, request_hash, response
FROM events
WHERE id = ANY(@ids::text[]);

-- name: EventInsertMany :exec
-- EventInsertMany records applied events with their answers. An id written meanwhile by a
-- concurrent transaction fails the statement (unique violation): the caller runs the batch again
-- and then answers the stored response.
INSERT INTO events (id, type, request_hash, response)
SELECT unnest(@ids::text[]), unnest(@types::text[]), unnest(@request_hashes::bytea[]),
       unnest(@responses::jsonb[]);
