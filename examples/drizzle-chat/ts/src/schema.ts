// The drizzle schema of a chat room (what drizzle-kit generated
// ../../drizzle/0000_create_messages.sql and 0001_index_by_author.sql from).
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const messages = sqliteTable(
  "messages",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    author: text("author").notNull(),
    body: text("body").notNull(),
    sentAt: text("sent_at")
      .notNull()
      .default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`),
  },
  (t) => [
    index("messages_by_author").on(t.author, t.id),
    index("messages_by_sent_at").on(t.sentAt),
  ],
);
