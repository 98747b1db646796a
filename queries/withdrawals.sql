-- name: WithdrawalInsertMany :execrows
-- WithdrawalInsertMany writes a group's withdrawals, each naming its entry by key (it is sent in the
-- same round trip as the entries' statement, whose ids it cannot know yet).
INSERT INTO withdrawals (id, member_id, currency, amount, fee, destination, status, program_version,
                         requested_at, request_entry_id)
SELECT w.id, w.member_id, w.currency, w.amount, w.fee, w.destination, w.status, @program_version,
       @requested_at, e.id
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@member_ids::text[]) AS member_id,
             unnest(@currencies::text[]) AS currency, unnest(@amounts::numeric[]) AS amount,
             unnest(@fees::numeric[]) AS fee, unnest(@destinations::jsonb[]) AS destination,
             unnest(@statuses::text[]) AS status, unnest(@entry_keys::text[]) AS entry_key) w
JOIN entries e ON e.idempotency_key = w.entry_key;

-- name: WithdrawalGet :one
SELECT id, member_id, currency, amount, fee, destination, status, program_version, requested_at,
       request_entry_id, batch_id, reason, reviewed_at, settled_at, settle_entry_id
FROM withdrawals
WHERE id = @id;

-- name: WithdrawalLock :one
SELECT id, member_id, currency, amount, fee, destination, status, program_version, requested_at,
       request_entry_id, batch_id, reason, reviewed_at, settled_at, settle_entry_id
FROM withdrawals
WHERE id = @id
FOR UPDATE;

-- name: WithdrawalRecentMany :many
-- WithdrawalRecentMany is WithdrawalRecent for several members at once.
SELECT member_id, currency, requested_at, amount
FROM withdrawals
WHERE member_id = ANY(@member_ids::text[]) AND requested_at >= @since
  AND status NOT IN ('rejected', 'cancelled', 'failed');

-- name: WithdrawalReview :exec
-- WithdrawalReview approves a withdrawal under review.
UPDATE withdrawals SET status = 'approved', reason = @reason, reviewed_at = @now
WHERE id = @id AND status = 'pending_review';

-- name: WithdrawalSettle :exec
-- WithdrawalSettle ends a withdrawal that never reached a batch (rejected or cancelled).
UPDATE withdrawals SET status = @status, reason = @reason, reviewed_at = coalesce(reviewed_at, @now),
       settled_at = @now, settle_entry_id = @entry_id
WHERE id = @id AND batch_id IS NULL AND status IN ('pending_review', 'approved');

-- name: WithdrawalListByMember :many
SELECT id, member_id, currency, amount, fee, destination, status, program_version, requested_at,
       request_entry_id, batch_id, reason, reviewed_at, settled_at, settle_entry_id
FROM withdrawals
WHERE member_id = @member_id AND (@status::text = '' OR status = @status::text)
  AND (requested_at, id) > (@after_at::timestamptz, @after_id::text)
ORDER BY requested_at, id
LIMIT @max_rows;

-- name: WithdrawalListByStatus :many
SELECT id, member_id, currency, amount, fee, destination, status, program_version, requested_at,
       request_entry_id, batch_id, reason, reviewed_at, settled_at, settle_entry_id
FROM withdrawals
WHERE (@status::text = '' OR status = @status::text)
  AND (requested_at, id) > (@after_at::timestamptz, @after_id::text)
ORDER BY requested_at, id
LIMIT @max_rows;

-- name: WithdrawalPaidByMember :many
SELECT currency, sum(amount)::numeric AS paid
FROM withdrawals
WHERE member_id = @member_id AND status = 'paid'
GROUP BY currency;

-- name: WithdrawalInFlightTotals :many
-- WithdrawalInFlightTotals is what members' withdrawing accounts must hold: withdrawals requested and
-- not yet settled, per currency.
SELECT currency, count(*)::int AS n, coalesce(sum(amount), 0)::numeric AS amount
FROM withdrawals
WHERE status IN ('pending_review', 'approved')
GROUP BY currency
ORDER BY currency;

-- name: WithdrawalInFlightByMembers :many
-- WithdrawalInFlightByMembers is what members' withdrawing accounts must hold.
SELECT member_id, currency, sum(amount)::numeric AS amount
FROM withdrawals
WHERE member_id = ANY(@members::text[]) AND status IN ('pending_review', 'approved')
GROUP BY member_id, currency;
