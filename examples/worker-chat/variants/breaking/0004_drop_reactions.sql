-- durable-schema: breaking
-- Retire reactions: drop the counter 0003 added. Code built for version 3
-- reads it on every listing, so this breaks it (BC103) and removes its values
-- (DS102); the line above acknowledges that (the lock releases 0001-0003, so
-- without it the build fails). A rollback to version 3 code over a room that
-- applied this answers 503 `incompatible` instead of "no such column".
ALTER TABLE messages DROP COLUMN reactions;
