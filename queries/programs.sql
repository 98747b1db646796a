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

-- name: ProgramInForceAt :many
-- ProgramInForceAt returns, once each, the versions in force at any of the instants.
SELECT p.version, p.effective_at, p.rules
FROM programs p
WHERE p.version IN (SELECT (SELECT q.version FROM programs q WHERE q.effective_at <= t.at
                             ORDER BY q.effective_at DESC, q.version DESC LIMIT 1)
                    FROM unnest(@ats::timestamptz[]) AS t(at))
ORDER BY p.effective_at DESC, p.version DESC;

-- name: ProgramInsertNotBefore :one
-- ProgramInsertNotBefore stores a version unless one already takes effect later: a new version may
-- not change the rules for a past that a later version already governs.
INSERT INTO programs (effective_at, rules)
SELECT @effective_at, @rules
WHERE NOT EXISTS (SELECT 1 FROM programs p WHERE p.effective_at > @effective_at)
RETURNING version, effective_at, rules, created_at;
