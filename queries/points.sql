-- name: PointsLotInsert :exec
INSERT INTO points_lots (member_id, source, source_ref, amount, remaining, valid_from, expires_at)
VALUES (@member_id, @source, @source_ref, @amount, @amount, @valid_from, @expires_at)
ON CONFLICT (member_id, source, source_ref) DO NOTHING;

-- name: PointsLotsSpendable :many
-- PointsLotsSpendable locks a member's unexpired lots with points left, oldest expiry first.
SELECT id, remaining, expires_at
FROM points_lots
WHERE member_id = @member_id AND remaining > 0 AND expires_at > @now
ORDER BY expires_at, id
FOR UPDATE;

-- name: PointsLotSpend :exec
UPDATE points_lots SET remaining = remaining - @points WHERE id = @id;

-- name: PointsLotClaw :one
-- PointsLotClaw takes clawed-back points out of the lot a released order created, as far as they
-- are left; it returns what it took.
WITH lot AS (
  SELECT l.id, least(l.remaining, @points::bigint) AS take
  FROM points_lots l
  WHERE l.member_id = @member_id::text AND l.source = 'release' AND l.source_ref = @order_id::text
  FOR UPDATE
)
UPDATE points_lots p SET remaining = p.remaining - lot.take
FROM lot WHERE p.id = lot.id
RETURNING lot.take::bigint AS taken;

-- name: PointsLotsExpiring :many
SELECT id, member_id, remaining, expires_at
FROM points_lots
WHERE remaining > 0 AND expires_at <= @now
ORDER BY expires_at, id
LIMIT @max_lots
FOR UPDATE SKIP LOCKED;

-- name: PointsLotExpire :exec
UPDATE points_lots SET remaining = 0, expired_at = @now WHERE id = @id;

-- name: RedemptionInsert :exec
INSERT INTO points_redemptions (id, member_id, points, reason, request_hash, entry_id, spent)
VALUES (@id, @member_id, @points, @reason, @request_hash, @entry_id, @spent);

-- name: RedemptionGet :one
SELECT id, member_id, points, reason, request_hash, entry_id, spent, created_at
FROM points_redemptions
WHERE id = @id;
