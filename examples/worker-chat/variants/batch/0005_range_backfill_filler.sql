-- A range batch (scripts/e2e/batch.test.mjs): the executor reads each slice
-- of at most 1,000 rowids of filler past its cursor, binds the slice's first
-- and last rowid to :from and :to, and commits the cursor with the slice.
-- `r` accumulates, so a slice run twice would leave it wrong.
ALTER TABLE filler ADD COLUMN r INTEGER;
-- durable-schema: batch over filler limit 1000
UPDATE filler SET r = coalesce(r, 0) + v + 1 WHERE id BETWEEN :from AND :to AND id % 7 <> 0;
-- What the range batch left wrong (0 expected) and how many rows it saw.
CREATE TABLE range_check AS
    SELECT count(*) AS total,
           sum(r IS NOT (CASE WHEN id % 7 <> 0 THEN v + 1 END)) AS wrong
    FROM filler;
