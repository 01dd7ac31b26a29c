-- Reject double-posts: at most one message with the same author and body.
-- BROKEN ON PURPOSE: fails at run time on a room that already holds a
-- double-post ("UNIQUE constraint failed"). The compile-time replay runs on an
-- empty database, so it cannot see that. variants/fixed/ has the fix.
CREATE UNIQUE INDEX messages_unique_author_body ON messages (author, body);
