-- name: MemberInsert :one
-- MemberInsert registers a member; no row when the id exists already.
INSERT INTO members (id, referral_code, referrer_id, upline, request_hash, created_at)
VALUES (@id, @referral_code, sqlc.narg('referrer_id'), @upline::text[], @request_hash, @created_at)
ON CONFLICT (id) DO NOTHING
RETURNING id, referral_code, referrer_id, upline, request_hash, paid_orders, converted_invitees, created_at;

-- name: MemberGet :one
SELECT id, referral_code, referrer_id, upline, request_hash, paid_orders, converted_invitees, created_at
FROM members
WHERE id = @id;

-- name: MemberGetByCode :one
SELECT id, referral_code, referrer_id, upline, request_hash, paid_orders, converted_invitees, created_at
FROM members
WHERE referral_code = @referral_code;

-- name: MemberLock :one
-- MemberLock locks a member row for the rest of the transaction. Locks are always taken from a
-- buyer towards its ancestors, never the other way, so they cannot deadlock.
SELECT id, referral_code, referrer_id, upline, request_hash, paid_orders, converted_invitees, created_at
FROM members
WHERE id = @id
FOR UPDATE;

-- name: MemberLockMany :many
-- MemberLockMany locks several members' rows, sorted by id (the fixed order every transaction
-- locks member rows in), and answers the ids found.
SELECT id
FROM members
WHERE id = ANY(@ids::text[])
ORDER BY id
FOR UPDATE;

-- name: MemberInvitedCount :one
SELECT count(*) FROM members WHERE referrer_id = @id;

-- name: MemberLockBuyers :many
-- MemberLockBuyers locks the buyers and their referrers, sorted by id, so that transactions that
-- count orders lock member rows in one fixed order and cannot deadlock on them.
SELECT id, upline, paid_orders, converted_invitees
FROM members
WHERE id = ANY(array_cat(@ids::text[],
                         ARRAY(SELECT m.upline[1] FROM members m WHERE m.id = ANY(@ids::text[]) AND cardinality(m.upline) > 0)))
ORDER BY id
FOR NO KEY UPDATE;

-- name: MemberSetCountersMany :exec
UPDATE members m SET paid_orders = v.paid_orders, converted_invitees = v.converted_invitees
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@paid_orders::int[]) AS paid_orders,
             unnest(@converted_invitees::int[]) AS converted_invitees) v
WHERE m.id = v.id;
