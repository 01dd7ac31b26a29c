-- A backfill long enough to be killed in the middle (scripts/e2e.sh, the
-- interrupted-run scenarios): 30 million rows in a room that holds a
-- message, none at the compile-time replay, whose tables are empty.
CREATE TABLE filler (id INTEGER PRIMARY KEY, pad TEXT NOT NULL);
WITH RECURSIVE c(x) AS (
    SELECT 1 FROM (SELECT 1 FROM messages LIMIT 1)
    UNION ALL
    SELECT x + 1 FROM c WHERE x < 30000000
)
INSERT INTO filler (id, pad) SELECT x, printf('%040d', x) FROM c;
