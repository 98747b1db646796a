-- The journal: accounts, entries, postings, balances and seals.
-- Every money invariant that can live in the database lives here; Go checks the same things earlier
-- only to give better errors. See docs/accounting.md for where each rule is enforced.

-- currency_scale is the number of decimals a currency allows; NULL means the currency is unknown.
CREATE FUNCTION currency_scale(currency text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE currency
    WHEN 'CNY' THEN 2 WHEN 'USD' THEN 2 WHEN 'EUR' THEN 2
    WHEN 'JPY' THEN 0 WHEN 'PTS' THEN 0
  END
$$;

CREATE TABLE accounts (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code           text        NOT NULL CHECK (code ~ '^[a-z_]+(:[A-Za-z0-9_.@-]+)+$' AND length(code) <= 200),
  currency       text        NOT NULL CHECK (currency_scale(currency) IS NOT NULL),
  kind           text        NOT NULL CHECK (kind IN ('asset', 'liability', 'income', 'expense')),
  allow_negative boolean     NOT NULL,
  -- shards > 1 marks a hot account: its cached balance is split over that many rows (ADR 0002).
  shards         smallint    NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 256),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT accounts_code_currency_key UNIQUE (code, currency),
  CONSTRAINT accounts_id_currency_key UNIQUE (id, currency)
);

-- account_balances caches the sum of an account's postings, on the account's normal side
-- (debit-normal for assets and expenses, credit-normal for liabilities and income). It is updated in
-- the same transaction as the postings; audit.Verify recomputes it from postings.
CREATE TABLE account_balances (
  account_id     bigint   NOT NULL REFERENCES accounts (id),
  shard          smallint NOT NULL CHECK (shard >= 0),
  balance        numeric  NOT NULL DEFAULT 0,
  allow_negative boolean  NOT NULL,
  PRIMARY KEY (account_id, shard),
  CONSTRAINT account_balances_non_negative CHECK (allow_negative OR balance >= 0)
);

CREATE TABLE entries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  idempotency_key text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 300),
  request_hash    bytea       NOT NULL CHECK (length(request_hash) = 32),
  kind            text        NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  metadata        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  refers_to       bigint      REFERENCES entries (id),
  -- txid orders sealing: every entry of a transaction with txid below the oldest running transaction
  -- is committed (or gone), so the sealer can never skip one that commits late (ADR 0003).
  txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
  CONSTRAINT entries_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX entries_txid_id_idx ON entries (txid, id);

CREATE TABLE postings (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  entry_id    bigint      NOT NULL,
  account_id  bigint      NOT NULL,
  currency    text        NOT NULL,
  side        text        NOT NULL CHECK (side IN ('debit', 'credit')),
  amount      numeric     NOT NULL,
  -- a copy of the entry's recorded_at, so that balances as of an instant read one index range.
  recorded_at timestamptz NOT NULL,
  CONSTRAINT postings_amount_positive CHECK (amount > 0),
  CONSTRAINT postings_amount_scale CHECK (amount = trunc(amount, currency_scale(currency)))
  -- entry_id must name an entry of the same transaction, and account_id an account in the posting's
  -- currency. Foreign keys would check each posting with a FOR KEY SHARE row lock, and on the hot
  -- platform account rows every concurrent writer would build a new multixact on the same row.
  -- The statement trigger postings_same_transaction checks both for the whole statement without
  -- row locks, and entries and accounts can never be deleted or changed (append-only triggers).
);
CREATE INDEX postings_entry_id_idx ON postings (entry_id);
CREATE INDEX postings_account_recorded_idx ON postings (account_id, recorded_at) INCLUDE (side, amount);

-- entry_seals is the hash chain: seal seq covers one entry, hash = SHA-256(prev_hash || canonical entry).
CREATE TABLE entry_seals (
  seq        bigint      PRIMARY KEY CHECK (seq > 0),
  entry_id   bigint      NOT NULL REFERENCES entries (id),
  entry_txid xid8        NOT NULL,
  prev_hash  bytea       NOT NULL CHECK (length(prev_hash) = 32),
  hash       bytea       NOT NULL CHECK (length(hash) = 32),
  sealed_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT entry_seals_entry_id_key UNIQUE (entry_id)
);

-- An entry balances: at least two postings, and per currency debits equal credits. Checked at commit,
-- when all of the entry's postings are in.
CREATE FUNCTION entry_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  n_postings int;
  unbalanced text;
BEGIN
  SELECT coalesce(sum(n), 0), min(currency) FILTER (WHERE NOT balanced)
    INTO n_postings, unbalanced
    FROM (SELECT currency, count(*) AS n,
                 sum(CASE side WHEN 'debit' THEN amount ELSE -amount END) = 0 AS balanced
            FROM postings WHERE entry_id = NEW.id GROUP BY currency) per_currency;
  IF n_postings < 2 THEN
    RAISE EXCEPTION 'entry % has % postings; an entry needs at least two', NEW.id, n_postings
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  IF unbalanced IS NOT NULL THEN
    RAISE EXCEPTION 'entry % does not balance in %: debits differ from credits', NEW.id, unbalanced
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balanced';
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER entry_balanced AFTER INSERT ON entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entry_check_balanced();

-- Postings may only be added to an entry written by the same transaction, with the entry's
-- recorded_at: a committed entry can never gain a posting later. Each posting's account must exist
-- in the posting's currency.
-- The planner cannot know how many rows a transition table holds; the SET clauses keep it on index
-- lookups, so the check costs the same with ten thousand entries or a hundred million.
CREATE FUNCTION postings_check_same_transaction() RETURNS trigger
LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_postings p LEFT JOIN entries e ON e.id = p.entry_id
              WHERE e.id IS NULL OR e.txid <> pg_current_xact_id() OR e.recorded_at <> p.recorded_at) THEN
    RAISE EXCEPTION 'postings can only be added to an entry in the transaction that creates it'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'postings_same_transaction';
  END IF;
  IF EXISTS (SELECT 1 FROM new_postings p LEFT JOIN accounts a ON a.id = p.account_id AND a.currency = p.currency
              WHERE a.id IS NULL) THEN
    RAISE EXCEPTION 'a posting names an account that does not exist in the posting''s currency'
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'postings_account_currency';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER postings_same_transaction AFTER INSERT ON postings
  REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION postings_check_same_transaction();

-- The journal is append-only.
CREATE FUNCTION journal_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'correct a mistake with a new entry that refers to the old one';
END
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER accounts_append_only BEFORE UPDATE OR DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER entry_seals_append_only BEFORE UPDATE OR DELETE ON entry_seals
  FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER entry_seals_no_truncate BEFORE TRUNCATE ON entry_seals
  FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

CREATE TABLE api_keys (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  role       text        NOT NULL CHECK (role IN ('shop', 'operator', 'auditor')),
  key_hash   bytea       NOT NULL CHECK (length(key_hash) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
