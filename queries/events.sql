-- name: EventInsert :one
-- EventInsert claims an event id; no row when it was claimed before (a replay or a conflict).
INSERT INTO events (id, type, request_hash, status_code, response)
VALUES (@id, @type, @request_hash, 0, '{}')
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: EventGet :one
SELECT id, type, request_hash, status_code, response
FROM events
WHERE id = @id;

-- name: EventSetResponse :exec
UPDATE events SET status_code = @status_code, response = @response WHERE id = @id;
