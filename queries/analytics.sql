-- Program analytics (GET /v1/reports/program): aggregates over the rebate tables for a period.
-- They read the period's rows (and, for the member counts, the members table): an operator's
-- report, not a request on the write path, so they add no index the write path would maintain.

-- name: AnalyticsMembers :one
-- AnalyticsMembers counts members by the period's end: all, new in [from_at, to_at), invited by
-- someone (referred), inviters (participants), and of the referred those with at least one and at
-- least two applied orders by the period's end.
SELECT count(*)::bigint AS members,
       (count(*) FILTER (WHERE m.created_at >= @from_at))::bigint AS new_members,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL))::bigint AS referred,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL AND m.created_at >= @from_at))::bigint AS new_invitees,
       (count(*) FILTER (WHERE EXISTS (SELECT 1 FROM members i WHERE i.referrer_id = m.id AND i.created_at < @to_at)))::bigint AS participants,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL AND o.n >= 1))::bigint AS referred_buyers,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL AND o.n >= 2))::bigint AS referred_repeat_buyers,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL AND m.created_at >= @from_at AND o.n >= 1))::bigint AS new_invitees_converted,
       (count(*) FILTER (WHERE m.referrer_id IS NOT NULL AND o.first_at >= @from_at))::bigint AS newly_converted
FROM members m
LEFT JOIN LATERAL (SELECT count(*) AS n, min(x.occurred_at) AS first_at FROM orders x
                   WHERE x.member_id = m.id AND x.occurred_at < @to_at) o ON true
WHERE m.created_at < @to_at;

-- name: AnalyticsGMV :many
-- AnalyticsGMV is referred customers' orders in the period, per currency, and the refunds of those
-- orders recorded in the period.
SELECT o.currency, count(*)::bigint AS orders, sum(o.amount)::numeric AS gmv,
       coalesce(sum((SELECT sum(r.amount) FROM refunds r WHERE r.order_id = o.order_id AND r.status = 'applied'
                       AND r.created_at >= @from_at AND r.created_at < @to_at)), 0)::numeric AS refunded
FROM orders o
JOIN members m ON m.id = o.member_id AND m.referrer_id IS NOT NULL
WHERE o.occurred_at >= @from_at AND o.occurred_at < @to_at
GROUP BY o.currency
ORDER BY o.currency;

-- name: AnalyticsRewards :many
-- AnalyticsRewards is the rebates of the period's orders per leg and currency: granted, clawed back
-- (so far), net.
SELECT l.leg, l.currency, sum(l.amount)::numeric AS granted, sum(l.clawed_back)::numeric AS clawed_back
FROM orders o
JOIN rebate_lots l ON l.order_id = o.order_id
WHERE o.occurred_at >= @from_at AND o.occurred_at < @to_at
GROUP BY l.leg, l.currency
ORDER BY l.currency, l.leg;
