-- Withdrawals check their amounts' scale without calling currency_scale(), as postings (0007) and
-- orders (0008) do: PostgreSQL prepares a table's CHECK expressions again for every statement that
-- writes it, and inlining the SQL function parsed its body each time, twice per statement here
-- (a pgbench copy of the table: 209 µs an insert with the function, 174 µs without; ADR 0016).
-- withdrawals_currency_check admits CNY, USD, EUR and JPY; of those only JPY has no decimals. A test
-- compares the scales these checks allow with the money package's.
ALTER TABLE withdrawals
  DROP CONSTRAINT withdrawals_amount_exact,
  ADD CONSTRAINT withdrawals_amount_exact
    CHECK (amount > 0 AND amount = round(amount, CASE WHEN currency = 'JPY' THEN 0 ELSE 2 END)),
  DROP CONSTRAINT withdrawals_fee_below_amount,
  ADD CONSTRAINT withdrawals_fee_below_amount
    CHECK (fee >= 0 AND fee < amount AND fee = round(fee, CASE WHEN currency = 'JPY' THEN 0 ELSE 2 END));
