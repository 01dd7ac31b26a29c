-- A table to backfill in batches (scripts/e2e.sh, batch.test.mjs): 500,000
-- rows in a room that holds a message, none at the compile-time replay,
-- whose tables are empty.
CREATE TABLE filler (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
WITH RECURSIVE c(x) AS (
    SELECT 1 FROM (SELECT 1 FROM messages LIMIT 1)
    UNION ALL
    SELECT x + 1 FROM c WHERE x < 500000
)
INSERT INTO filler (id, v) SELECT x, x FROM c;
