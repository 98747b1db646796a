-- name: PayoutCandidates :many
-- PayoutCandidates locks the oldest approved withdrawals of a currency that are in no batch. Rows
-- another cut has locked are skipped, so two cuts at once take disjoint sets.
SELECT id, amount, fee
FROM withdrawals
WHERE status = 'approved' AND batch_id IS NULL AND currency = @currency
ORDER BY requested_at, id
LIMIT @max_items
FOR UPDATE SKIP LOCKED;

-- name: PayoutBatchInsert :exec
INSERT INTO payout_batches (id, currency, provider, item_count, amount, fee, net, created_at)
VALUES (@id, @currency, @provider, @item_count, @amount, @fee, @net, @created_at);

-- name: PayoutItemsInsert :exec
-- PayoutItemsInsert puts withdrawals into a batch, in the order given.
WITH items AS (
  INSERT INTO payout_items (batch_id, withdrawal_id)
  SELECT @batch_id, w FROM unnest(@withdrawal_ids::text[]) WITH ORDINALITY AS t(w, n) ORDER BY n
  RETURNING withdrawal_id
)
UPDATE withdrawals SET batch_id = @batch_id
WHERE id IN (SELECT withdrawal_id FROM items) AND batch_id IS NULL AND status = 'approved';

-- name: PayoutBatchGet :one
SELECT id, currency, provider, status, item_count, amount, fee, net, created_at, submitted_at, completed_at
FROM payout_batches
WHERE id = @id;

-- name: PayoutBatchLock :one
SELECT id, currency, provider, status, item_count, amount, fee, net, created_at, submitted_at, completed_at
FROM payout_batches
WHERE id = @id
FOR UPDATE;

-- name: PayoutBatchList :many
SELECT id, currency, provider, status, item_count, amount, fee, net, created_at, submitted_at, completed_at
FROM payout_batches
WHERE created_at >= @from_at AND created_at < @to_at
ORDER BY created_at, id;

-- name: PayoutBatchSubmitted :exec
UPDATE payout_batches SET status = 'submitted', submitted_at = @now
WHERE id = @id AND status = 'open';

-- name: PayoutBatchComplete :execrows
-- PayoutBatchComplete closes a batch once every item has a result.
UPDATE payout_batches b SET status = 'completed', completed_at = @now,
       submitted_at = coalesce(b.submitted_at, @now)
WHERE b.id = @batch_id AND b.status <> 'completed'
  AND NOT EXISTS (SELECT 1 FROM payout_items i WHERE i.batch_id = @batch_id AND i.status = 'pending');

-- name: PayoutItemsByBatch :many
SELECT i.id, i.withdrawal_id, i.status, i.reference, i.reason, i.entry_id, i.settled_at,
       w.member_id, w.currency, w.amount, w.fee, w.destination
FROM payout_items i
JOIN withdrawals w ON w.id = i.withdrawal_id
WHERE i.batch_id = @batch_id
ORDER BY i.id;

-- name: PayoutItemsLock :many
-- PayoutItemsLock locks the named items of a batch (items of other batches are not returned).
SELECT i.id, i.withdrawal_id, i.status, i.result_hash, w.member_id, w.currency, w.amount, w.fee, w.destination
FROM payout_items i
JOIN withdrawals w ON w.id = i.withdrawal_id
WHERE i.batch_id = @batch_id AND i.id = ANY(@ids::bigint[])
ORDER BY i.id
FOR UPDATE OF i, w;

-- name: PayoutItemsSettle :exec
-- PayoutItemsSettle records results and settles their withdrawals, one row per item.
WITH r AS (
  SELECT unnest(@ids::bigint[]) AS id, unnest(@statuses::text[]) AS status,
         unnest(@refs::text[]) AS reference, unnest(@reasons::text[]) AS reason,
         unnest(@hashes::bytea[]) AS hash, unnest(@entry_ids::bigint[]) AS entry_id
), items AS (
  UPDATE payout_items i SET status = r.status, reference = r.reference, reason = r.reason,
         result_hash = r.hash, entry_id = r.entry_id, settled_at = @now
  FROM r WHERE i.id = r.id AND i.status = 'pending'
  RETURNING i.withdrawal_id, r.status, r.reason, r.entry_id
)
UPDATE withdrawals w SET status = items.status, reason = items.reason, settled_at = @now,
       settle_entry_id = items.entry_id
FROM items WHERE w.id = items.withdrawal_id;

-- name: PayoutReport :many
-- PayoutReport totals each batch's items by result, for batches created in [from, to).
SELECT b.id, b.currency, b.status, b.created_at,
       count(*) FILTER (WHERE i.status = 'paid')::int AS paid_count,
       coalesce(sum(w.amount) FILTER (WHERE i.status = 'paid'), 0)::numeric AS paid_amount,
       coalesce(sum(w.amount - w.fee) FILTER (WHERE i.status = 'paid'), 0)::numeric AS paid_net,
       coalesce(sum(w.fee) FILTER (WHERE i.status = 'paid'), 0)::numeric AS paid_fee,
       count(*) FILTER (WHERE i.status = 'failed')::int AS failed_count,
       coalesce(sum(w.amount) FILTER (WHERE i.status = 'failed'), 0)::numeric AS failed_amount,
       count(*) FILTER (WHERE i.status = 'pending')::int AS pending_count,
       coalesce(sum(w.amount) FILTER (WHERE i.status = 'pending'), 0)::numeric AS pending_amount
FROM payout_batches b
JOIN payout_items i ON i.batch_id = b.id
JOIN withdrawals w ON w.id = i.withdrawal_id
WHERE b.created_at >= @from_at AND b.created_at < @to_at
GROUP BY b.id
ORDER BY b.created_at, b.id;

-- name: PayoutPaidTotals :many
-- PayoutPaidTotals are all paid withdrawals' nets and fees per currency, to compare with the
-- journal's platform:cash and platform:fee_income movements from payouts.
SELECT w.currency, count(*)::int AS n, coalesce(sum(w.amount - w.fee), 0)::numeric AS net,
       coalesce(sum(w.fee), 0)::numeric AS fee
FROM withdrawals w
WHERE w.status = 'paid'
GROUP BY w.currency
ORDER BY w.currency;

-- name: PayoutItemsByIDs :many
SELECT i.id, i.withdrawal_id, i.status, i.reference, i.reason, i.entry_id, i.settled_at,
       w.member_id, w.currency, w.amount, w.fee, w.destination
FROM payout_items i
JOIN withdrawals w ON w.id = i.withdrawal_id
WHERE i.batch_id = @batch_id AND i.id = ANY(@ids::bigint[])
ORDER BY i.id;
