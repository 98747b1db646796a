-- name: OrderGet :one
SELECT order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
       accrual_entry_id, release_at, released_at, release_entry_id, refunded, excess_refunded, first_order
FROM orders
WHERE order_id = @order_id;

-- name: OrderLock :one
SELECT order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
       accrual_entry_id, release_at, released_at, release_entry_id, refunded, excess_refunded, first_order
FROM orders
WHERE order_id = @order_id
FOR UPDATE;

-- name: OrderSetReleased :exec
UPDATE orders SET released_at = @released_at, release_entry_id = sqlc.narg('entry_id') WHERE order_id = @order_id;

-- name: LotListByOrder :many
SELECT order_id, beneficiary_id, leg, currency, amount, clawed_back, released, program_version, upline
FROM rebate_lots
WHERE order_id = @order_id
ORDER BY beneficiary_id, leg;

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

-- name: OrderLockMany :many
-- OrderLockMany locks the orders that exist among the ids, sorted by id (the fixed lock order).
SELECT order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
       accrual_entry_id, release_at, released_at, release_entry_id, refunded, excess_refunded, first_order
FROM orders
WHERE order_id = ANY(@order_ids::text[])
ORDER BY order_id
FOR NO KEY UPDATE;

-- name: OrderInsertMany :exec
-- OrderInsertMany records new orders; uplines are comma-joined (member ids never hold a comma).
INSERT INTO orders (order_id, event_id, member_id, amount, currency, occurred_at, program_version, upline,
                    release_at, accrual_entry_id, refunded, excess_refunded, first_order)
SELECT v.order_id, v.event_id, v.member_id, v.amount, v.currency, v.occurred_at, v.program_version,
       string_to_array(v.upline, ','), v.release_at, nullif(v.accrual_entry_id, 0), v.refunded, v.excess_refunded,
       v.first_order
FROM (SELECT unnest(@order_ids::text[]) AS order_id, unnest(@event_ids::text[]) AS event_id,
             unnest(@member_ids::text[]) AS member_id, unnest(@amounts::numeric[]) AS amount,
             unnest(@currencies::text[]) AS currency, unnest(@occurred_ats::timestamptz[]) AS occurred_at,
             unnest(@program_versions::bigint[]) AS program_version, unnest(@uplines::text[]) AS upline,
             unnest(@release_ats::timestamptz[]) AS release_at, unnest(@accrual_entry_ids::bigint[]) AS accrual_entry_id,
             unnest(@refundeds::numeric[]) AS refunded, unnest(@excess_refundeds::numeric[]) AS excess_refunded,
             unnest(@first_orders::boolean[]) AS first_order) v;

-- name: OrderSetRefundedMany :exec
UPDATE orders o SET refunded = v.refunded, excess_refunded = v.excess_refunded
FROM (SELECT unnest(@order_ids::text[]) AS order_id, unnest(@refundeds::numeric[]) AS refunded,
             unnest(@excess_refundeds::numeric[]) AS excess_refunded) v
WHERE o.order_id = v.order_id;

-- name: LotInsertManyOrders :exec
-- LotInsertManyOrders records the lots of several orders; uplines are comma-joined.
INSERT INTO rebate_lots (order_id, beneficiary_id, leg, currency, amount, clawed_back, program_version, upline)
SELECT v.order_id, v.beneficiary_id, v.leg, v.currency, v.amount, v.clawed_back, v.program_version, string_to_array(v.upline, ',')
FROM (SELECT unnest(@order_ids::text[]) AS order_id, unnest(@beneficiary_ids::text[]) AS beneficiary_id,
             unnest(@legs::text[]) AS leg, unnest(@currencies::text[]) AS currency, unnest(@amounts::numeric[]) AS amount,
             unnest(@clawed_backs::numeric[]) AS clawed_back, unnest(@program_versions::bigint[]) AS program_version,
             unnest(@uplines::text[]) AS upline) v;

-- name: LotListByOrders :many
SELECT order_id, beneficiary_id, leg, currency, amount, clawed_back, released, program_version, upline
FROM rebate_lots
WHERE order_id = ANY(@order_ids::text[])
ORDER BY order_id, beneficiary_id, leg;

-- name: LotSetClawedBackMany :exec
UPDATE rebate_lots l SET clawed_back = v.clawed_back
FROM (SELECT unnest(@order_ids::text[]) AS order_id, unnest(@beneficiary_ids::text[]) AS beneficiary_id,
             unnest(@legs::text[]) AS leg, unnest(@clawed_backs::numeric[]) AS clawed_back) v
WHERE l.order_id = v.order_id AND l.beneficiary_id = v.beneficiary_id AND l.leg = v.leg;

-- name: RefundListParkedByOrders :many
SELECT refund_id, event_id, order_id, amount, seq, status, entry_id
FROM refunds
WHERE order_id = ANY(@order_ids::text[]) AND status = 'parked'
ORDER BY seq;

-- name: RefundListIDs :many
SELECT refund_id FROM refunds WHERE refund_id = ANY(@refund_ids::text[]);

-- name: RefundInsertMany :exec
-- RefundInsertMany records refunds in arrival order (seq follows the array order).
INSERT INTO refunds (refund_id, event_id, order_id, amount, status, entry_id)
SELECT v.refund_id, v.event_id, v.order_id, v.amount, v.status, nullif(v.entry_id, 0)
FROM (SELECT unnest(@refund_ids::text[]) AS refund_id, unnest(@event_ids::text[]) AS event_id,
             unnest(@order_ids::text[]) AS order_id, unnest(@amounts::numeric[]) AS amount,
             unnest(@statuses::text[]) AS status, unnest(@entry_ids::bigint[]) AS entry_id,
             generate_subscripts(@refund_ids::text[], 1) AS ord) v
ORDER BY v.ord;

-- name: RefundSetAppliedMany :exec
UPDATE refunds r SET status = 'applied', entry_id = nullif(v.entry_id, 0)
FROM (SELECT unnest(@refund_ids::text[]) AS refund_id, unnest(@entry_ids::bigint[]) AS entry_id) v
WHERE r.refund_id = v.refund_id;

-- name: LotHeldByMembers :many
-- LotHeldByMembers is what members' held accounts must hold: the lots of orders not released yet,
-- less what was clawed back, per member and currency.
SELECT l.beneficiary_id, l.currency, sum(l.amount - l.clawed_back)::numeric AS held
FROM rebate_lots l
JOIN orders o ON o.order_id = l.order_id
WHERE l.beneficiary_id = ANY(@members::text[]) AND o.released_at IS NULL
GROUP BY l.beneficiary_id, l.currency;
