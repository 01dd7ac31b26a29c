-- One Durable Object per chat room: its messages.
CREATE TABLE messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    sent_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
