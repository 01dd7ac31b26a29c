-- Reject double-posts: at most one message with the same author and body,
-- and a table for moderation notes.
-- BROKEN ON PURPOSE: the index fails at run time on a room that already holds
-- a double-post ("UNIQUE constraint failed"). The compile-time replay runs on
-- an empty database, so it cannot see that. variants/fixed/ has the fix. The
-- failing migration's first statement must leave no trace: no `moderation`
-- table afterwards (the e2e checks it).
CREATE TABLE moderation (message_id INTEGER NOT NULL, reason TEXT);
CREATE UNIQUE INDEX messages_unique_author_body ON messages (author, body);
