-- name: SessionGenericPlans :exec
-- SessionGenericPlans makes the rest of the transaction reuse generic plans. Queries that take an
-- array of ids (= ANY(@ids)) otherwise get a custom plan on every call, and planning them cost more
-- than running them (measured: docs/benchmarks.md).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true);
