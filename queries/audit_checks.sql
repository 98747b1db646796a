-- name: AuditCheckLast :one
SELECT coalesce(max(to_seq), 0)::bigint AS to_seq FROM audit_checks;

-- name: AuditCheckInsert :one
INSERT INTO audit_checks (from_seq, to_seq, entries, accounts, status, violations, started_at, finished_at)
VALUES (@from_seq, @to_seq, @entries, @accounts, @status, @violations, @started_at, @finished_at)
RETURNING id;

-- name: AuditCheckList :many
SELECT id, from_seq, to_seq, entries, accounts, status, violations, started_at, finished_at
FROM audit_checks
WHERE (@before_id::bigint = 0 OR id < @before_id::bigint)
ORDER BY id DESC
LIMIT @max_rows;
