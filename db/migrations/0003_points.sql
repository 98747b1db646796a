-- Points lots: each batch of points that became available (a sign-up reward, or a released points
-- rebate) with its validity. Redemptions spend the oldest first; the expiry job expires what is left.
CREATE TABLE points_lots (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  member_id   text        NOT NULL REFERENCES members (id),
  source      text        NOT NULL CHECK (source IN ('signup', 'release')),
  source_ref  text        NOT NULL,
  amount      bigint      NOT NULL CHECK (amount > 0),
  remaining   bigint      NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
  valid_from  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  expired_at  timestamptz,
  CONSTRAINT points_lots_source_key UNIQUE (member_id, source, source_ref)
);
CREATE INDEX points_lots_spendable_idx ON points_lots (member_id, expires_at, id) WHERE remaining > 0;
CREATE INDEX points_lots_expiring_idx ON points_lots (expires_at) WHERE remaining > 0;

CREATE TABLE points_redemptions (
  id           text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  member_id    text        NOT NULL REFERENCES members (id),
  points       bigint      NOT NULL CHECK (points > 0),
  reason       text        NOT NULL CHECK (length(reason) <= 500),
  request_hash bytea       NOT NULL,
  entry_id     bigint      NOT NULL REFERENCES entries (id),
  spent        jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
