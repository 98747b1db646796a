-- Leaderboards rank members over a period by what they did in it; each metric is answered from an
-- index over the period (a range scan, never the whole table):
--   invited:   members_invited_idx, the sign-ups of the period by inviter;
--   converted: orders_occurred_idx, the period's orders that were their buyer's first, counted for
--              the buyer's inviter (orders.upline[1]);
--   earned:    orders_occurred_idx, the orders of the period, then their rebate lots by key.
-- first_order marks the order that converted its buyer: the first order.paid applied for the member,
-- the same event that counts toward the inviter's converted_invitees (tiers and milestones). It is
-- written with the order; an earlier-dated order that arrives later does not move it. Existing
-- orders are marked by their business time (the best the history tells).
ALTER TABLE orders ADD COLUMN first_order boolean NOT NULL DEFAULT false;
UPDATE orders o SET first_order = true
FROM (SELECT DISTINCT ON (member_id) order_id FROM orders ORDER BY member_id, occurred_at, order_id) f
WHERE o.order_id = f.order_id;

CREATE INDEX members_invited_idx ON members (created_at) INCLUDE (referrer_id) WHERE referrer_id IS NOT NULL;
CREATE INDEX orders_occurred_idx ON orders (occurred_at);

-- Campaigns: a competition over a period whose prizes are paid once, after it ends, as journal
-- entries (platform:rebate_expense → the winner's held, released after the program's hold period).
CREATE TABLE campaigns (
  id             text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,100}$'),
  metric         text        NOT NULL CHECK (metric IN ('invited', 'converted', 'earned')),
  starts_at      timestamptz NOT NULL,
  ends_at        timestamptz NOT NULL,
  currency       text        NOT NULL CHECK (currency_scale(currency) IS NOT NULL),
  prizes         jsonb       NOT NULL CHECK (jsonb_typeof(prizes) = 'array'),
  created_at     timestamptz NOT NULL,
  status         text        NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'awarded')),
  awarded_at     timestamptz,
  -- standings: the final board as the award read it (what the prizes were paid on).
  standings      jsonb,
  CONSTRAINT campaigns_period_check CHECK (ends_at > starts_at),
  CONSTRAINT campaigns_awarded_check CHECK ((status = 'awarded') = (awarded_at IS NOT NULL AND standings IS NOT NULL))
);

-- campaign_prizes: one row per prize paid. Its entry is keyed prize:{campaign}:{rank}; the release
-- (held → available) is keyed prize_release:{campaign}:{rank}.
CREATE TABLE campaign_prizes (
  campaign_id      text        NOT NULL REFERENCES campaigns (id),
  rank             integer     NOT NULL CHECK (rank >= 1),
  member_id        text        NOT NULL REFERENCES members (id),
  currency         text        NOT NULL,
  amount           numeric     NOT NULL CHECK (amount > 0),
  figure           numeric     NOT NULL,
  entry_id         bigint      NOT NULL,
  release_at       timestamptz NOT NULL,
  released_at      timestamptz,
  release_entry_id bigint,
  PRIMARY KEY (campaign_id, rank),
  CONSTRAINT campaign_prizes_released_check CHECK ((released_at IS NULL) = (release_entry_id IS NULL))
);
CREATE INDEX campaign_prizes_member_idx ON campaign_prizes (member_id) WHERE released_at IS NULL;

CREATE FUNCTION campaigns_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege',
    HINT = 'campaign prizes explain journal entries';
END
$$;
CREATE TRIGGER campaigns_no_delete BEFORE DELETE OR TRUNCATE ON campaigns FOR EACH STATEMENT EXECUTE FUNCTION campaigns_refuse_delete();
CREATE TRIGGER campaign_prizes_no_delete BEFORE DELETE OR TRUNCATE ON campaign_prizes FOR EACH STATEMENT EXECUTE FUNCTION campaigns_refuse_delete();
