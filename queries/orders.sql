-- name: OrderInsert :exec
INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline, release_at, accrual_entry_id)
VALUES (@order_id, @event_id, @member_id, @amount, @currency, @occurred_at, @program_version, @upline::text[], @release_at, sqlc.narg('accrual_entry_id'));

-- name: OrderGet :one
SELECT order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
       accrual_entry_id, release_at, released_at, release_entry_id, refunded, excess_refunded
FROM orders
WHERE order_id = @order_id;

-- name: OrderLock :one
SELECT order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
       accrual_entry_id, release_at, released_at, release_entry_id, refunded, excess_refunded
FROM orders
WHERE order_id = @order_id
FOR UPDATE;

-- name: OrderSetReleased :exec
UPDATE orders SET released_at = @released_at, release_entry_id = sqlc.narg('entry_id') WHERE order_id = @order_id;

-- name: OrderAddRefund :exec
UPDATE orders SET refunded = refunded + @applied, excess_refunded = excess_refunded + @excess WHERE order_id = @order_id;

-- name: LotInsertMany :exec
INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, program_version, upline)
SELECT @order_id::text, unnest(@beneficiary_ids::text[]), unnest(@legs::text[]), unnest(@currencies::text[]),
       unnest(@amounts::numeric[]), @program_version::bigint, @upline::text[];

-- name: LotListByOrder :many
SELECT order_id, beneficiary_id, leg, currency, amount, clawed_back, released, program_version, upline
FROM rebate_lots
WHERE order_id = @order_id
ORDER BY beneficiary_id, leg;

-- name: LotSetClawedBack :exec
UPDATE rebate_lots SET clawed_back = @clawed_back
WHERE order_id = @order_id AND beneficiary_id = @beneficiary_id AND leg = @leg;

-- name: LotSetReleased :exec
UPDATE rebate_lots SET released = @released
WHERE order_id = @order_id AND beneficiary_id = @beneficiary_id AND leg = @leg;

-- name: LotEarnedByMember :many
-- LotEarnedByMember is accrued minus clawed back, per currency, all time.
SELECT currency, sum(amount - clawed_back)::numeric AS earned
FROM rebate_lots
WHERE beneficiary_id = @beneficiary_id
GROUP BY currency
ORDER BY currency;

-- name: RefundInsert :one
-- RefundInsert claims a refund id; no row when it exists.
INSERT INTO refunds (refund_id, event_id, order_id, amount, status)
VALUES (@refund_id, @event_id, @order_id, @amount, @status)
ON CONFLICT (refund_id) DO NOTHING
RETURNING seq;

-- name: RefundGet :one
SELECT refund_id, event_id, order_id, amount, seq, status, entry_id
FROM refunds
WHERE refund_id = @refund_id;

-- name: RefundListParked :many
SELECT refund_id, event_id, order_id, amount, seq, status, entry_id
FROM refunds
WHERE order_id = @order_id AND status = 'parked'
ORDER BY seq;

-- name: RefundSetApplied :exec
UPDATE refunds SET status = 'applied', entry_id = sqlc.narg('entry_id') WHERE refund_id = @refund_id;

-- name: OrderPaidExistsForMember :one
SELECT EXISTS (SELECT 1 FROM orders WHERE member_id = @member_id) AS paid;
