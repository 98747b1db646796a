-- console_sessions: the operator console's logins (internal/console). The browser holds a random
-- token in an HttpOnly, SameSite=Strict cookie; only its SHA-256 is stored. Each session has its own
-- CSRF token, which every form posts back.
CREATE TABLE console_sessions (
  token_hash  bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
  key_id      bigint      NOT NULL REFERENCES api_keys (id),
  role        text        NOT NULL CHECK (role IN ('operator', 'auditor')),
  csrf        text        NOT NULL CHECK (length(csrf) >= 32),
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  ended_at    timestamptz,
  CHECK (expires_at > created_at)
);
