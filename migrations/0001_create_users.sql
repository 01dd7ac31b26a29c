-- Accounts. Emails are unique regardless of case.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE UNIQUE INDEX users_email ON users (lower(email));
