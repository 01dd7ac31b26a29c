# Many small budgets, so the backfill needs several slices of
# blockConcurrencyWhile (batch.test.mjs).
s/^#\[durable_schema(dir = "migrations")\]$/#[durable_schema(dir = "migrations", budget_ms = 100)]/
