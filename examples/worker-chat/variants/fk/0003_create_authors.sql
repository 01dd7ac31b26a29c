-- Authors and per-author post counts, filled from the existing messages.
-- author_stats.author references authors(name): the parent of 0004's rebuild.
CREATE TABLE authors (name TEXT PRIMARY KEY);
CREATE TABLE author_stats (author TEXT NOT NULL REFERENCES authors (name), posts INTEGER NOT NULL);
INSERT INTO authors SELECT DISTINCT author FROM messages;
INSERT INTO author_stats SELECT author, count(*) FROM messages GROUP BY author;
