-- A reaction counter per message (POST /rooms/:room/messages/:id/react).
ALTER TABLE messages ADD COLUMN reactions INTEGER NOT NULL DEFAULT 0;
