// drizzle-chat (TypeScript): the chat room Durable Object of
// ../../rust/src/lib.rs, written the way a drizzle-orm project writes it, and
// migrated by drizzle's own Durable Object migrator. It is what the Rust
// build replaces: same class (`ChatRoom`), same binding, same script name, so
// the Rust build takes over these objects and adopts drizzle's history.
//
// Routes (the Worker forwards /rooms/:room/* to the room's object):
//   GET  /                                 `drizzle-chat ok (ts): journal entries N`
//   GET  /rooms/:room/messages             the room's messages (JSON)
//   POST /rooms/:room/messages             {"author": "...", "body": "..."}
//   GET  /rooms/:room/drizzle-migrations   admin: drizzle's __drizzle_migrations rows
//                                          and the journal this build ships
//   GET  /rooms/:room/export               admin: every table with columns and rows
import { DurableObject } from "cloudflare:workers";
import { asc } from "drizzle-orm";
import { drizzle, type DrizzleSqliteDODatabase } from "drizzle-orm/durable-sqlite";
import { migrate } from "drizzle-orm/durable-sqlite/migrator";
// drizzle-kit's generated module (imports the .sql files as text, see the
// `Text` rule in wrangler.toml); ts/gen-migrations.mjs writes the same.
import migrations from "../../drizzle/migrations.js";
import * as schema from "./schema";
import { messages } from "./schema";

interface Env {
  CHAT: DurableObjectNamespace<ChatRoom>;
}

const MAX_AUTHOR = 64;
const MAX_BODY = 4000;

function json(value: unknown, status = 200): Response {
  return Response.json(value, { status });
}

export class ChatRoom extends DurableObject<Env> {
  storage: DurableObjectStorage;
  db: DrizzleSqliteDODatabase<typeof schema>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.storage = ctx.storage;
    this.db = drizzle(this.storage, { schema, logger: false });
    // drizzle's recipe: migrate before any request reaches the object.
    ctx.blockConcurrencyWhile(async () => {
      await migrate(this.db, migrations);
    });
  }

  async fetch(request: Request): Promise<Response> {
    const segments = new URL(request.url).pathname.replace(/^\/+|\/+$/g, "").split("/");
    const route = segments.slice(2).join("/");
    if (request.method === "GET" && route === "messages") return this.list();
    if (request.method === "POST" && route === "messages") return this.post(request);
    if (request.method === "GET" && route === "drizzle-migrations") return this.ledger();
    if (request.method === "GET" && route === "export") return this.export();
    return json({ error: "no such route" }, 404);
  }

  list(): Response {
    const rows = this.db.select().from(messages).orderBy(asc(messages.id)).limit(1000).all();
    const out = rows.map((m) => ({ id: m.id, author: m.author, body: m.body, sent_at: m.sentAt }));
    return json({ count: out.length, messages: out });
  }

  async post(request: Request): Promise<Response> {
    let input: { author?: unknown; body?: unknown };
    try {
      input = await request.json();
    } catch (e) {
      return json({ error: `expected {"author", "body"}: ${e}` }, 400);
    }
    const author = typeof input.author === "string" ? input.author.trim() : "";
    const body = typeof input.body === "string" ? input.body.trim() : "";
    if (!author || author.length > MAX_AUTHOR) return json({ error: `author must be 1 to ${MAX_AUTHOR} bytes` }, 400);
    if (!body || body.length > MAX_BODY) return json({ error: `body must be 1 to ${MAX_BODY} bytes` }, 400);
    const m = this.db.insert(messages).values({ author, body }).returning().get();
    return json({ id: m.id, author: m.author, body: m.body, sent_at: m.sentAt }, 201);
  }

  // drizzle's history as its migrator recorded it (created_at = journal `when`),
  // next to the journal this build ships.
  ledger(): Response {
    const rows = this.storage.sql
      .exec("SELECT id, hash, created_at, typeof(created_at) AS created_at_type FROM __drizzle_migrations ORDER BY created_at")
      .toArray();
    const journal = migrations.journal.entries.map((e: { idx: number; tag: string; when: number }) => ({
      idx: e.idx,
      tag: e.tag,
      when: e.when,
    }));
    return json({ rows, journal });
  }

  // Every table with its columns and rows (the same shape as the Rust build's /export).
  export(): Response {
    const sql = this.storage.sql;
    const tables = sql
      .exec(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' " +
          "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
      )
      .toArray();
    const out: Record<string, { columns: string[]; rows: unknown[] }> = {};
    for (const t of tables) {
      const name = String(t.name);
      const cursor = sql.exec(`SELECT * FROM "${name.replace(/"/g, '""')}" LIMIT 1000`);
      const rows = cursor.toArray();
      out[name] = { columns: cursor.columnNames, rows };
    }
    return json(out);
  }
}

function validRoom(room: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(room);
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const segments = new URL(request.url).pathname.replace(/^\/+|\/+$/g, "").split("/");
    if (segments.length === 1 && segments[0] === "") {
      return new Response(`drizzle-chat ok (ts): journal entries ${migrations.journal.entries.length}\n`);
    }
    if (segments[0] === "rooms" && segments.length >= 3 && validRoom(segments[1])) {
      const stub = env.CHAT.get(env.CHAT.idFromName(segments[1]));
      return stub.fetch(request);
    }
    return json({ error: "no such route" }, 404);
  }
} satisfies ExportedHandler<Env>;
