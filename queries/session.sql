-- name: SessionGenericPlans :exec
-- SessionGenericPlans makes the rest of the transaction reuse generic plans, and plan index scans.
-- Queries that take an array of ids (= ANY(@ids)) otherwise get a custom plan on every call, and
-- planning them cost more than running them; but a generic plan is kept for the connection's life,
-- and one made while a table was still small (a fresh install, the first minute of a bulk load)
-- would keep scanning it whole as it grows. Every query these transactions run is a key lookup,
-- except the webhook outbox's read of its endpoints (a handful of rows, scanned): with seq scans
-- off its cost is inflated past JIT's threshold, and compiling it took 150-300 ms per call, so JIT
-- is off too (it never pays for a key lookup). (Measured: docs/benchmarks.md.)
SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true),
       set_config('jit', 'off', true);
