-- Orders check their currency without calling currency_scale(): PostgreSQL plans a table's CHECK
-- expressions again for every statement that writes it, and inlining the SQL function parsed its
-- body each time (ADR 0009, as for the postings scale check). The list is currency_scale()'s; a
-- test compares it with the money package's currencies.
ALTER TABLE orders DROP CONSTRAINT orders_currency_check,
  ADD CONSTRAINT orders_currency_check CHECK (currency IN ('CNY', 'USD', 'EUR', 'JPY', 'PTS'));
