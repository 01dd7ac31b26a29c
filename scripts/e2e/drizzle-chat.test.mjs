// drizzle-chat.test.mjs — taking over drizzle-orm Durable Objects, end to end
// in real workerd: the scenarios of scripts/e2e-drizzle.sh, which assembles
// the trees ($E2E_WORK/trees/NAME/{drizzle,ts,rust}), builds the Rust ones
// and then runs this file with `node --test`.
//
// examples/drizzle-chat holds one chat room Durable Object (`ChatRoom`,
// binding CHAT, script drizzle-chat) twice: in TypeScript (ts/), migrated by
// drizzle-orm's own `durable-sqlite` migrator, and in Rust (rust/), reading the
// same drizzle-kit directory with `#[durable_schema(dir = "../drizzle")]`.
//
//   tree       journal (idx: tag @ when)                               built as
//   base       0: create_messages @T0, 1: index_by_author @T2          ts
//   reactions  base + 2: add_reactions @T3                             rust (version 3)
//   merged     0: create_messages @T0, 1: add_reactions @T1 (a merged  ts, rust
//              branch's older migration), 2: index_by_author @T2
//   (T0 < T1 < T2 < T3)
//
//   deploy  build           state  scenario
//   A1      ts base         a      drizzle migrates rooms alpha, beta
//   A2      rust reactions  a      each room adopts drizzle's history and applies
//                                  0002 once; a room drizzle never saw migrates 0 -> 3
//   A3      rust reactions  a      restart: one row read, nothing applied or logged
//   B1      ts base         b      room delta migrated by drizzle (T0, T2)
//   B2      ts merged       b      drizzle skips the merged older migration silently
//   B3      rust merged     b      delta: 503 ledger_mismatch, nothing written;
//                                  epsilon (all three by drizzle): adopted
//
// Last, every deploy's log is searched for panics and unhandled rejections.
// Environment: harness.mjs's, and E2E_EXAMPLE (examples/drizzle-chat).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  check, checkDeployLogs, dsLog, env, freePort, http, say, scenario, startWrangler, stopWrangler,
} from "./harness.mjs";

const work = env("E2E_WORK");
const logs = env("E2E_LOGS");
const example = env("E2E_EXAMPLE");
const stateA = path.join(work, "state-a");
const stateB = path.join(work, "state-b");

// The journal `when`s (see the table above).
const T0 = 1767261843512; // 0000_create_messages
const T1 = 1767538817096; // add_reactions, as merged from an older branch
const T2 = 1767866404871; // index_by_author
const T3 = 1768471205230; // 0002_add_reactions, drizzle-kit's next migration

const journalEntries = (tree) =>
  JSON.parse(fs.readFileSync(path.join(work, "trees", tree, "drizzle", "meta", "_journal.json"), "utf8")).entries.length;

let port;
let log;

/** (Re)starts wrangler dev on `tree`'s `side` (ts or rust) build over `persist`; checks it serves that build. */
async function deploy(label, tree, side, persist) {
  port = await freePort();
  log = path.join(logs, `deploy-${label}-${side}-${tree}.log`);
  say(`deploy ${label}: ${side} build of tree ${tree} on 127.0.0.1:${port} (state ${path.basename(persist)})`);
  const banner = await startWrangler({
    dir: path.join(work, "trees", tree, side), persist, port, log,
    label: `deploy ${label}`, readyPrefix: "drizzle-chat ok",
  });
  // the ts build counts its journal's entries, the rust build's version is their number
  const expected = side === "ts"
    ? `drizzle-chat ok (ts): journal entries ${journalEntries(tree)}`
    : `drizzle-chat ok (rust): schema version ${journalEntries(tree)}`;
  check(`deploy ${label} serves the ${side} build of tree ${tree}`, banner, expected);
}

const get = (p) => http(port, "GET", p);
const post = (p, json) => http(port, "POST", p, json);
const message = (author, body) => ({ author, body });
const versions = (d) => (d.applied || []).map((a) => a.version).join(",");
/** drizzle's table as /export shows it: "created_at|hash" per row, sorted. */
const ledgerRows = (d) =>
  (d.__drizzle_migrations ? d.__drizzle_migrations.rows : []).map((r) => `${r.created_at}|${r.hash}`).sort().join(",");
/**
 * drizzle's table from /export, key order normalized (serde_json sorts keys,
 * JS keeps the column order): "columns;id|hash|created_at,..."
 */
const ledgerSnapshot = (d) => {
  const t = d.__drizzle_migrations;
  return t ? `${t.columns.join(",")};${t.rows.map((r) => [r.id, JSON.stringify(r.hash), r.created_at].join("|")).join(",")}` : "none";
};
/** The /export answer's table names (miniflare's own left out). */
const tables = (d) => Object.keys(d).filter((t) => !t.startsWith("__miniflare")).sort().join(",");
const journal = (d) => d.journal.map((e) => `${e.idx}:${e.tag}@${e.when}`).join(",");

// What later scenarios compare against.
const ids = {};
let ledgerAlpha;
let ledgerBeta;
let ledgerDelta;

scenario("drizzle-orm and its generated migrations.js are what the lockfile and drizzle-kit say", async () => {
  const pkg = path.join(example, "ts", "node_modules", "drizzle-orm", "package.json");
  check("drizzle-orm 0.45.4 installed from the lockfile", () => JSON.parse(fs.readFileSync(pkg, "utf8")).version, "0.45.4");
  const gen = spawnSync(process.execPath, [path.join(example, "ts", "gen-migrations.mjs"), path.join(example, "drizzle"), "--check"],
    { encoding: "utf8" });
  fs.writeFileSync(path.join(logs, "gen-check.log"), `${gen.stdout ?? ""}${gen.stderr ?? ""}`);
  check("drizzle/migrations.js is what drizzle-kit writes for the journal (ts/gen-migrations.mjs --check)",
    gen.status === 0 ? "up to date" : `${gen.stdout}${gen.stderr}`, "up to date");
});

scenario("A1: drizzle's own migrator migrates two rooms and records the journal's whens", async () => {
  await deploy("A1", "base", "ts", stateA);
  const codes = [
    (await post("/rooms/alpha/messages", message("alice", "hello"))).code,
    (await post("/rooms/alpha/messages", message("bob", "hi"))).code,
    (await post("/rooms/beta/messages", message("carol", "hey"))).code,
  ];
  check("A1 drizzle: two rooms written (201 x 3)", codes, [201, 201, 201]);
  let r = await get("/rooms/alpha/messages");
  check("A1 drizzle: alpha lists 2 messages", () => [r.code, r.d.messages.map((m) => m.author)], [200, ["alice", "bob"]]);
  r = await get("/rooms/alpha/drizzle-migrations");
  check("A1 drizzle: __drizzle_migrations has 2 rows, created_at = the journal whens (integers), hash ''",
    () => r.d.rows.map((x) => [x.created_at, x.created_at_type, x.hash]), [[T0, "integer", ""], [T2, "integer", ""]]);
  check("A1 drizzle: the journal it ran has entries 0000, 0001",
    () => journal(r.d), `0:0000_create_messages@${T0},1:0001_index_by_author@${T2}`);
  r = await get("/rooms/alpha/export");
  ledgerAlpha = r.d && ledgerSnapshot(r.d);
  check("A1 drizzle: /export shows drizzle's table as its migrator wrote it (id SERIAL stays NULL)",
    ledgerAlpha, `id,hash,created_at;|""|${T0},|""|${T2}`);
  check("A1 drizzle: alpha's tables are drizzle's and messages", () => tables(r.d), "__drizzle_migrations,messages");
  r = await get("/rooms/beta/export");
  ledgerBeta = r.d && ledgerSnapshot(r.d);
  check("A1 drizzle: beta migrated too (T0, T2)", () => ledgerRows(r.d), `${T0}|,${T2}|`);
});

scenario("A2: the Rust build adopts drizzle's history and applies the next migration once", async () => {
  await deploy("A2", "reactions", "rust", stateA);
  let r = await get("/rooms/alpha/messages");
  check("A2 rust: alpha serves its old messages (200, alice + bob)",
    () => [r.code, r.d.messages.map((m) => `${m.author}:${m.body}`)], [200, ["alice:hello", "bob:hi"]]);
  check("A2 rust: the new column is there (reactions 0, 0)", () => r.d.messages.map((m) => m.reactions), [0, 0]);
  r = await get("/rooms/alpha/schema");
  let d = r.d;
  ids.alpha = d?.object_id;
  check("A2 rust: last_run.adopted, from 2 to 3, applied [0002_add_reactions.sql]",
    () => [d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied, d.last_run.error ?? null],
    [true, 2, 3, ["0002_add_reactions.sql"], null]);
  check("A2 rust: stored version 3, state current, nothing pending",
    () => [d.code_version, d.stored_version, d.state, d.pending.length], [3, 3, "current", 0]);
  check("A2 rust: tracking rows 1,2 (adopted) + 3, descriptions from the tags",
    () => d.applied.map((a) => `${a.version}:${a.description}`), ["1:create_messages", "2:index_by_author", "3:add_reactions"]);
  check("A2 rust: applied_at of 1 and 2 is drizzle's created_at",
    () => d.applied.slice(0, 2).map((a) => a.applied_at), [new Date(T0).toISOString(), new Date(T2).toISOString()]);
  check("A2 rust: every tracking row has a checksum", () => d.applied.every((a) => /^[0-9a-f]{64}$/.test(a.checksum)), true);
  r = await get("/rooms/alpha/export");
  d = r.d;
  check("A2 rust: drizzle's table unchanged (/export)", () => ledgerSnapshot(d), ledgerAlpha);
  check("A2 rust: alpha's tables: drizzle's, messages, migrations (no failure record)",
    // The failure table holds a run's started record while it runs (issue
    // 21), and stays, empty, after it succeeded.
    () => [tables(d), d.migrations_failure?.rows?.length],
    ["__drizzle_migrations,messages,migrations,migrations_failure", 0]);
  check("A2 rust: the migrations table holds versions 1,2,3 once each", () => d.migrations.rows.map((x) => x.version), [1, 2, 3]);
  check("A2 rust: alpha's log: one line, 2 -> 3, applied [3]",
    (await dsLog(log, ids.alpha)).map((l) => [l.from, l.to, l.applied]), [[2, 3, [3]]]);
  r = await get("/rooms/beta/messages");
  check("A2 rust: beta serves its message", () => [r.code, r.d.messages.map((m) => m.body)], [200, ["hey"]]);
  r = await get("/rooms/beta/schema");
  ids.beta = r.d?.object_id;
  check("A2 rust: beta adopted too (1,2 adopted + 3 applied)",
    () => [r.d.last_run.adopted, r.d.last_run.from_version, r.d.stored_version, versions(r.d)], [true, 2, 3, "1,2,3"]);
  r = await get("/rooms/beta/export");
  check("A2 rust: beta's drizzle table unchanged", () => ledgerSnapshot(r.d), ledgerBeta);
  check("A2 rust: beta's log: one line, 2 -> 3, applied [3]",
    (await dsLog(log, ids.beta)).map((l) => [l.from, l.to, l.applied]), [[2, 3, [3]]]);
  r = await post("/rooms/alpha/messages/1/react");
  check("A2 rust: the new column works (react: 200, reactions 1)", () => [r.code, r.d.reactions], [200, 1]);
  check("A2 rust: the adopted room takes writes (201)",
    (await post("/rooms/alpha/messages", message("dan", "written by rust"))).code, 201);
});

scenario("A2: a room drizzle never saw migrates from version 0, and each room logs one line", async () => {
  let r = await get("/rooms/gamma/schema");
  ids.gamma = r.d?.object_id;
  check("A2 rust: a room drizzle never saw migrates 0 -> 3 (not adopted)",
    () => [r.d.last_run.adopted, r.d.last_run.from_version, r.d.last_run.to_version, r.d.last_run.applied.length, versions(r.d)],
    [false, 0, 3, 3, "1,2,3"]);
  r = await get("/rooms/gamma/export");
  check("A2 rust: gamma has no drizzle table", () => tables(r.d), "messages,migrations");
  const rooms = { [ids.alpha]: "alpha", [ids.beta]: "beta", [ids.gamma]: "gamma" };
  // An adoption logs one "adopted" line per room, also when the same run
  // applies a pending migration (gamma, never adopted, logs "applied").
  check("A2 rust: the deploy's log: outcome adopted once per drizzle room, applied once for gamma",
    (await dsLog(log, "*")).map((l) => `${l.outcome}:${rooms[l.object] || l.object}`).sort(),
    ["adopted:alpha", "adopted:beta", "applied:gamma"]);
});

scenario("A3: a restart over adopted rooms reads one row, applies and logs nothing", async () => {
  await deploy("A3", "reactions", "rust", stateA);
  let r = await get("/rooms/alpha/schema");
  const d = r.d;
  check("A3 restart: nothing applied (3 -> 3), not adopted again",
    () => [d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length], [false, 3, 3, 0]);
  check("A3 restart: the up-to-date check read 1 row (last_run.rows_read)", () => d.last_run.rows_read, 1);
  check("A3 restart: tracking rows 1,2,3", () => versions(d), "1,2,3");
  r = await get("/rooms/alpha/messages");
  check("A3 restart: data kept (alice, bob, dan; reactions 1,0,0)",
    () => [r.code, r.d.messages.map((m) => m.author + m.reactions)], [200, ["alice1", "bob0", "dan0"]]);
  r = await get("/rooms/alpha/export");
  check("A3 restart: drizzle's table still unchanged", () => ledgerSnapshot(r.d), ledgerAlpha);
  r = await get("/rooms/beta/schema");
  check("A3 restart: beta reads 1 row too, applies nothing",
    () => [r.d.last_run.rows_read, r.d.last_run.applied.length, r.d.stored_version], [1, 0, 3]);
  check("A3 restart: no durable-schema log line", (await dsLog(log, "*", undefined, { none: true })).length, 0);
});

scenario("B1-B2: drizzle silently skips a merged migration older than its last one", async () => {
  await deploy("B1", "base", "ts", stateB);
  check("B1 drizzle: room delta written (201)", (await post("/rooms/delta/messages", message("erin", "before the merge"))).code, 201);
  let r = await get("/rooms/delta/drizzle-migrations");
  check("B1 drizzle: delta's table records T0, T2", () => r.d.rows.map((x) => x.created_at), [T0, T2]);

  await deploy("B2", "merged", "ts", stateB);
  r = await get("/rooms/delta/messages");
  check("B2 drizzle: with the merged journal delta still serves (200, 1 message)", () => [r.code, r.d.count], [200, 1]);
  r = await get("/rooms/delta/drizzle-migrations");
  check("B2 drizzle: the journal now has 0001_add_reactions @T1 (T0 < T1 < T2) as idx 1",
    () => journal(r.d), `0:0000_create_messages@${T0},1:0001_add_reactions@${T1},2:0002_index_by_author@${T2}`);
  check("B2 drizzle: it skipped 0001_add_reactions silently (still 2 rows: T0, T2)",
    () => r.d.rows.map((x) => x.created_at), [T0, T2]);
  r = await get("/rooms/delta/export");
  ledgerDelta = r.d && ledgerSnapshot(r.d);
  check("B2 drizzle: delta has no reactions column", () => r.d.messages.columns, ["id", "author", "body", "sent_at"]);
  check("B2 drizzle: a new room epsilon (201)", (await post("/rooms/epsilon/messages", message("fay", "after the merge"))).code, 201);
  r = await get("/rooms/epsilon/export");
  check("B2 drizzle: epsilon got all three (T0, T1, T2; reactions column)",
    () => [ledgerRows(r.d), r.d.messages.columns], [`${T0}|,${T1}|,${T2}|`, ["id", "author", "body", "sent_at", "reactions"]]);
});

scenario("B3: the Rust build refuses a room whose drizzle ledger skipped a migration, and writes nothing", async () => {
  await deploy("B3", "merged", "rust", stateB);
  let r = await get("/rooms/delta/messages");
  check("B3 rust: delta answers 503, kind ledger_mismatch", () => [r.code, r.d.migration.kind], [503, "ledger_mismatch"]);
  say(`  response: ${r.text.slice(0, 400)}`);
  check("B3 rust: the error names the skipped version 2",
    () => /skipped by drizzle: version 2\)/.test(r.d.migration.message), true);
  r = await post("/rooms/delta/messages", message("erin", "refused"));
  check("B3 rust: writes refused too (503)", () => [r.code, r.d.migration.kind], [503, "ledger_mismatch"]);
  r = await get("/rooms/delta/schema");
  const deltaId = r.d?.object_id;
  check("B3 rust: /schema answers with the same error (status and last_run)",
    () => [r.code, r.d.status_error.kind, r.d.last_run.error.kind], [200, "ledger_mismatch", "ledger_mismatch"]);
  r = await get("/rooms/delta/export");
  check("B3 rust: nothing written (no migrations table, no failure record)", () => tables(r.d), "__drizzle_migrations,messages");
  check("B3 rust: drizzle's table and delta's data unchanged",
    () => [ledgerSnapshot(r.d), r.d.messages.rows.map((x) => x.body)], [ledgerDelta, ["before the merge"]]);
  check("B3 rust: delta's log: one failed line, ledger_mismatch",
    (await dsLog(log, deltaId)).map((l) => [l.outcome, l.error?.kind]), [["failed", "ledger_mismatch"]]);
});

scenario("B3: a room drizzle migrated in full is adopted with nothing to apply", async () => {
  let r = await get("/rooms/epsilon/messages");
  check("B3 rust: epsilon (all three applied by drizzle) serves (200)",
    () => [r.code, r.d.messages.map((m) => m.body)], [200, ["after the merge"]]);
  r = await get("/rooms/epsilon/schema");
  const epsilonId = r.d?.object_id;
  check("B3 rust: epsilon adopted at 3, nothing to apply",
    () => [r.d.last_run.adopted, r.d.last_run.from_version, r.d.last_run.to_version, r.d.last_run.applied.length,
      r.d.stored_version, versions(r.d)], [true, 3, 3, 0, 3, "1,2,3"]);
  check("B3 rust: epsilon's log: one adopted line, 3 -> 3",
    (await dsLog(log, epsilonId)).map((l) => [l.outcome, l.from, l.to, l.applied.length]), [["adopted", 3, 3, 0]]);
});

scenario("no deploy's log shows a panic, a wasm trap or an unhandled rejection", async () => {
  await stopWrangler();
  checkDeployLogs(logs);
});
