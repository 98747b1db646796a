-- Member tokens: short-lived bearer tokens scoped to one member, issued by the shop. Only the
-- SHA-256 is stored, like API keys.
CREATE TABLE member_tokens (
  token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
  member_id  text        NOT NULL REFERENCES members (id),
  issued_by  bigint      NOT NULL REFERENCES api_keys (id),
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_tokens_expires_idx ON member_tokens (expires_at);
