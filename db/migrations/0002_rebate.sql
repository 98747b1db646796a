-- The rebate engine: program versions, members and their fixed uplines, events (exactly once),
-- orders, rebate lots and refunds. These tables explain the journal; the journal stays the truth
-- for money, and every money movement below is a journal entry written in the same transaction.

CREATE TABLE programs (
  version      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  effective_at timestamptz NOT NULL,
  rules        jsonb       NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX programs_effective_at_idx ON programs (effective_at DESC, version DESC);

CREATE TABLE members (
  id              text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
  referral_code   text        NOT NULL UNIQUE CHECK (referral_code ~ '^[2-9A-HJ-NP-Z]{6,12}$'),
  referrer_id     text        REFERENCES members (id),
  -- upline: nearest first, at most 3, fixed at registration; it can never contain the member.
  upline          text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(upline) <= 3 AND NOT (id = ANY(upline))),
  request_hash    bytea       NOT NULL,
  -- paid_orders counts the member's applied order.paid events; converted_invitees counts direct
  -- invitees with at least one. Both only grow: tiers and milestones are forward only.
  paid_orders        int      NOT NULL DEFAULT 0 CHECK (paid_orders >= 0),
  converted_invitees int      NOT NULL DEFAULT 0 CHECK (converted_invitees >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (referrer_id IS DISTINCT FROM id),
  CHECK ((referrer_id IS NULL) = (cardinality(upline) = 0)),
  CHECK (referrer_id IS NULL OR upline[1] = referrer_id)
);
CREATE INDEX members_referrer_idx ON members (referrer_id);

-- events records every applied (or parked) event with its request hash and the answer given, so a
-- replay answers the same and a different body under the same id is refused.
CREATE TABLE events (
  id           text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  type         text        NOT NULL,
  request_hash bytea       NOT NULL,
  status_code  int         NOT NULL,
  response     jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
  order_id         text        PRIMARY KEY CHECK (length(order_id) BETWEEN 1 AND 200),
  event_id         text        NOT NULL UNIQUE REFERENCES events (id),
  member_id        text        NOT NULL REFERENCES members (id),
  amount           numeric     NOT NULL CHECK (amount > 0),
  currency         text        NOT NULL CHECK (currency_scale(currency) IS NOT NULL),
  occurred_at      timestamptz NOT NULL,
  program_version  bigint      NOT NULL REFERENCES programs (version),
  upline           text[]      NOT NULL,
  accrual_entry_id bigint      REFERENCES entries (id),
  release_at       timestamptz NOT NULL,
  released_at      timestamptz,
  release_entry_id bigint      REFERENCES entries (id),
  refunded         numeric     NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
  -- refund amounts that arrived beyond the order's amount (parked refunds only): never clawed.
  excess_refunded  numeric     NOT NULL DEFAULT 0 CHECK (excess_refunded >= 0)
);

-- rebate_lots: one row per (order, beneficiary, leg), with the program version and upline it was
-- computed with. Claw-backs and the release only grow clawed_back and released.
CREATE TABLE rebate_lots (
  order_id        text        NOT NULL REFERENCES orders (order_id),
  beneficiary_id  text        NOT NULL REFERENCES members (id),
  leg             text        NOT NULL CHECK (leg IN ('level1', 'level2', 'level3', 'first_order_bonus', 'milestone', 'points')),
  currency        text        NOT NULL,
  amount          numeric     NOT NULL CHECK (amount > 0),
  clawed_back     numeric     NOT NULL DEFAULT 0 CHECK (clawed_back >= 0 AND clawed_back <= amount),
  -- released is what moved to available at the end of the hold; claw-backs after that come from
  -- available, so clawed_back may cover released money too.
  released        numeric     NOT NULL DEFAULT 0 CHECK (released >= 0 AND released <= amount),
  program_version bigint      NOT NULL REFERENCES programs (version),
  upline          text[]      NOT NULL,
  PRIMARY KEY (order_id, beneficiary_id, leg)
);
CREATE INDEX rebate_lots_beneficiary_idx ON rebate_lots (beneficiary_id);

CREATE TABLE refunds (
  refund_id  text        PRIMARY KEY CHECK (length(refund_id) BETWEEN 1 AND 200),
  event_id   text        NOT NULL UNIQUE REFERENCES events (id),
  order_id   text        NOT NULL,
  amount     numeric     NOT NULL CHECK (amount > 0),
  seq        bigint GENERATED ALWAYS AS IDENTITY,
  status     text        NOT NULL CHECK (status IN ('parked', 'applied')),
  entry_id   bigint      REFERENCES entries (id),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON refunds (order_id, seq);

-- The default program, in force from 2000-01-01 (before any event) until an operator PUTs another.
INSERT INTO programs (effective_at, rules) VALUES ('2000-01-01T00:00:00Z', '{
  "currency": "CNY", "hold_period": "168h", "rounding": "down",
  "level_rates": ["0.05", "0.02", "0.01"],
  "tiers": [{"min_converted": 5, "level1_rate": "0.07"}, {"min_converted": 10, "level1_rate": "0.10"}],
  "first_order_bonus": "5.00",
  "milestones": [{"converted": 1, "bonus": "10.00"}, {"converted": 5, "bonus": "20.00"}, {"converted": 10, "bonus": "50.00"}],
  "max_rebate_ratio": "0.15",
  "points": {"per_unit": "1", "signup_referrer": 100, "signup_referee": 50, "validity": "8760h"},
  "withdrawal": {"min": "10.00", "max": "5000.00", "daily_count": 3, "daily_amount": "10000.00",
                 "monthly_amount": "50000.00", "fee_rate": "0.01", "fee_min": "1.00", "review_above": "2000.00"}
}');

-- Invitees at levels 2 and 3 (level 1 is members_referrer_idx).
CREATE INDEX members_upline2_idx ON members ((upline[2])) WHERE cardinality(upline) >= 2;
CREATE INDEX members_upline3_idx ON members ((upline[3])) WHERE cardinality(upline) >= 3;
