-- Reject double-posts: at most one message with the same author and body.
-- Remove the existing duplicates first (keep the oldest of each), so the
-- unique index can be built on rooms that already hold double-posts.
DELETE FROM messages
WHERE id NOT IN (SELECT min(id) FROM messages GROUP BY author, body);

CREATE UNIQUE INDEX messages_unique_author_body ON messages (author, body);
