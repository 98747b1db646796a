-- name: ProgramAt :one
-- ProgramAt is the program version in force at an instant.
SELECT version, effective_at, rules
FROM programs
WHERE effective_at <= @at
ORDER BY effective_at DESC, version DESC
LIMIT 1;

-- name: ProgramInsert :one
INSERT INTO programs (effective_at, rules)
VALUES (@effective_at, @rules)
RETURNING version, effective_at, rules, created_at;

-- name: ProgramGet :one
SELECT version, effective_at, rules, created_at
FROM programs
WHERE version = @version;

-- name: ProgramList :many
SELECT version, effective_at, rules, created_at
FROM programs
ORDER BY version DESC;
