-- Rebuild `authors` with a new column, D1's recipe for a referenced table:
-- defer the foreign keys, copy, drop, rename.
-- BROKEN ON PURPOSE: the copy keeps only authors with more than one post, so
-- an author with a single post loses its row while author_stats still
-- references it. The compile-time replay runs on empty tables and cannot see
-- that; at run time the executor's `PRAGMA foreign_key_check("author_stats")`
-- after the statements finds the orphan and rolls the migration back
-- (`foreign_key` error naming author_stats and its parent authors).
PRAGMA defer_foreign_keys = ON;
CREATE TABLE authors_new (name TEXT PRIMARY KEY, since TEXT);
INSERT INTO authors_new (name) SELECT author FROM author_stats WHERE posts > 1;
DROP TABLE authors;
ALTER TABLE authors_new RENAME TO authors;
PRAGMA defer_foreign_keys = OFF;
