-- name: MemberInsert :one
-- MemberInsert registers a member; no row when the id exists already.
INSERT INTO members (id, referral_code, referrer_id, upline, request_hash)
VALUES (@id, @referral_code, sqlc.narg('referrer_id'), @upline::text[], @request_hash)
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

-- name: MemberCountPaidOrder :one
-- MemberCountPaidOrder counts a buyer's paid order and locks its row for the rest of the
-- transaction (buyer first, then its referrer: locks only go towards ancestors).
UPDATE members SET paid_orders = paid_orders + 1 WHERE id = @id
RETURNING upline, paid_orders;

-- name: MemberAddConvertedInvitees :one
-- MemberAddConvertedInvitees adds 0 or 1 converted invitee and locks the referrer's row, so the
-- tier and milestone an order sees are counted exactly under concurrency.
UPDATE members SET converted_invitees = converted_invitees + @add::int WHERE id = @id
RETURNING converted_invitees;

-- name: MemberInvitedCount :one
SELECT count(*) FROM members WHERE referrer_id = @id;
