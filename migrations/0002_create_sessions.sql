-- Login sessions; deleting a user deletes their sessions.
CREATE TABLE sessions (
    token      TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user_id);

-- Keep users.last_seen_at fresh without an extra write from the app.
ALTER TABLE users ADD COLUMN last_seen_at TEXT;

CREATE TRIGGER sessions_touch_user AFTER INSERT ON sessions
BEGIN
    UPDATE users SET last_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE id = NEW.user_id;
END;
