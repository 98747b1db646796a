-- name: StatementPage :many
-- StatementPage lists postings on a member's accounts after a cursor (posting id), with the running
-- balance of each account after the posting (on the liability's credit side).
SELECT id, entry_id, occurred_at, recorded_at, kind, code, currency, signed_amount, balance_after, order_id
FROM (
  SELECT p.id, p.entry_id, e.occurred_at, e.recorded_at, e.kind, a.code, p.currency,
         (CASE WHEN p.side = 'credit' THEN p.amount ELSE -p.amount END)::numeric AS signed_amount,
         (sum(CASE WHEN p.side = 'credit' THEN p.amount ELSE -p.amount END) OVER (PARTITION BY p.account_id ORDER BY p.id))::numeric AS balance_after,
         coalesce(e.metadata->>'order_id', '')::text AS order_id
  FROM accounts a
  JOIN postings p ON p.account_id = a.id
  JOIN entries e ON e.id = p.entry_id
  WHERE a.code = ANY(@codes::text[])
    AND (@currency::text = '' OR a.currency = @currency::text)
) stmt
WHERE id > @after_id::bigint
ORDER BY id
LIMIT @max_rows;

-- name: ReferralPage :many
-- ReferralPage lists a member's invitees at one level (1 to 3) after a cursor (member id), with
-- whether each converted and what its orders earned this member, per currency.
SELECT m.id, m.created_at, (m.paid_orders > 0)::boolean AS converted,
       coalesce((SELECT json_object_agg(x.currency, x.earned)::text FROM (
                  SELECT l.currency, sum(l.amount - l.clawed_back)::text AS earned
                  FROM rebate_lots l JOIN orders o ON o.order_id = l.order_id
                  WHERE o.member_id = m.id AND l.beneficiary_id = @member_id::text
                  GROUP BY l.currency) x), '{}')::text AS earned
FROM members m
WHERE cardinality(m.upline) >= @level::int AND m.upline[@level::int] = @member_id::text
  AND m.id > @after_id::text
ORDER BY m.id
LIMIT @max_rows;
