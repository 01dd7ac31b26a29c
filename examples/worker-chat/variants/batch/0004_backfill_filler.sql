-- The backfill, 500 rows a repetition: about a thousand repetitions, many
-- budgets (lib.rs.sed sets budget_ms = 100).
ALTER TABLE filler ADD COLUMN w INTEGER;
-- durable-schema: batch
UPDATE filler SET w = v * 2 WHERE id IN (SELECT id FROM filler WHERE w IS NULL LIMIT 500);
-- What the backfill left wrong (0 expected) and how many rows it saw, for
-- the export to show.
CREATE TABLE backfill_check AS
    SELECT count(*) AS total, sum(w IS NOT v * 2) AS wrong FROM filler;
