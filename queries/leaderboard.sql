-- The leaderboard queries rank every member with a figure in [from_at, to_at): the figure descending,
-- then who reached it first (the time of the last thing that counted), then the member id; they
-- answer the top max_rows and, when me is set, that member's row wherever it ranks.

-- name: LeaderboardInvited :many
WITH board AS (
  SELECT referrer_id AS member_id, count(*)::numeric AS figure, max(created_at) AS reached_at
  FROM members
  WHERE referrer_id IS NOT NULL AND created_at >= @from_at::timestamptz AND created_at < @to_at::timestamptz
  GROUP BY referrer_id
), ranked AS (
  SELECT member_id, figure, reached_at, row_number() OVER (ORDER BY figure DESC, reached_at, member_id) AS rank
  FROM board
)
SELECT member_id::text AS member_id, figure, reached_at::timestamptz AS reached_at, rank FROM ranked
WHERE rank <= @max_rows::bigint OR member_id = @me::text
ORDER BY rank;

-- name: LeaderboardConverted :many
-- Converted counts the period's orders that were their buyer's first, for the buyer's inviter.
WITH board AS (
  SELECT o.upline[1] AS member_id, count(*)::numeric AS figure, max(o.occurred_at) AS reached_at
  FROM orders o
  WHERE o.occurred_at >= @from_at::timestamptz AND o.occurred_at < @to_at::timestamptz
    AND o.first_order AND cardinality(o.upline) > 0
  GROUP BY o.upline[1]
), ranked AS (
  SELECT member_id, figure, reached_at, row_number() OVER (ORDER BY figure DESC, reached_at, member_id) AS rank
  FROM board
)
SELECT member_id::text AS member_id, figure, reached_at::timestamptz AS reached_at, rank FROM ranked
WHERE rank <= @max_rows::bigint OR member_id = @me::text
ORDER BY rank;

-- name: LeaderboardEarned :many
-- Earned is the cash rebates (every leg in the currency, net of what refunds clawed back so far)
-- of the orders that occurred in the period.
WITH board AS (
  SELECT l.beneficiary_id AS member_id, sum(l.amount - l.clawed_back) AS figure, max(o.occurred_at) AS reached_at
  FROM orders o
  JOIN rebate_lots l ON l.order_id = o.order_id
  WHERE o.occurred_at >= @from_at::timestamptz AND o.occurred_at < @to_at::timestamptz AND l.currency = @currency::text
  GROUP BY l.beneficiary_id
  HAVING sum(l.amount - l.clawed_back) > 0
), ranked AS (
  SELECT member_id, figure, reached_at, row_number() OVER (ORDER BY figure DESC, reached_at, member_id) AS rank
  FROM board
)
SELECT member_id::text AS member_id, figure::numeric AS figure, reached_at::timestamptz AS reached_at, rank FROM ranked
WHERE rank <= @max_rows::bigint OR member_id = @me::text
ORDER BY rank;
