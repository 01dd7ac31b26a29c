-- When a message was last edited: a nullable column, an additive change.
-- Code built for version 3 never names it, so a rollback to that code keeps
-- serving a database that has it.
ALTER TABLE messages ADD COLUMN edited_at TEXT;
