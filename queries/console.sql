-- name: ConsoleSessionInsert :exec
INSERT INTO console_sessions (token_hash, key_id, role, csrf, created_at, expires_at)
VALUES (@token_hash, @key_id, @role, @csrf, @created_at, @expires_at);

-- name: ConsoleSessionGet :one
-- ConsoleSessionGet answers a live session whose key is not revoked.
SELECT s.key_id, s.role, s.csrf, k.name
FROM console_sessions s
JOIN api_keys k ON k.id = s.key_id
WHERE s.token_hash = @token_hash AND s.ended_at IS NULL AND s.expires_at > @now::timestamptz
  AND k.revoked_at IS NULL;

-- name: ConsoleSessionEnd :exec
UPDATE console_sessions SET ended_at = @now::timestamptz WHERE token_hash = @token_hash AND ended_at IS NULL;
