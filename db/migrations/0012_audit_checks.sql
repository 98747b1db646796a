-- audit_checks: one row per run of the continuous checker (internal/audit.Checker): the stretch
-- of the sealed chain it checked, and what it found. Each run starts after the last one's to_seq.
CREATE TABLE audit_checks (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  from_seq    bigint      NOT NULL CHECK (from_seq >= 1),
  to_seq      bigint      NOT NULL CHECK (to_seq >= from_seq - 1),
  entries     bigint      NOT NULL CHECK (entries >= 0),
  accounts    bigint      NOT NULL CHECK (accounts >= 0),
  status      text        NOT NULL CHECK (status IN ('ok', 'violations')),
  violations  jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(violations) = 'array'),
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL
);
CREATE INDEX audit_checks_to_seq_idx ON audit_checks (to_seq DESC);
