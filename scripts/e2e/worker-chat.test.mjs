// worker-chat.test.mjs — durable-schema end to end in real workerd: the
// scenarios of scripts/e2e.sh, which builds examples/worker-chat in nine
// variants into $E2E_WORK/crates/NAME/build and then runs this file with
// `node --test`.
//
// The builds are deployed one after another over persisted Durable Object
// state (`wrangler dev --local`, 127.0.0.1): deploys 1-10 share one state dir
// ("main"), 11-12 a second one ("fk") and 13-18 a third ("rollback"), whose
// version numbers must not meet the main sequence's. The scenarios run in
// file order, each on what the ones before it left behind:
//
//   deploy  build      state  scenario
//   1       v2         main   fresh objects, 30 parallel POSTs, rooms for later
//   -       (stopped)  main   hand-rolled tracking tables written with node:sqlite
//   2       v2         main   restart; adoption; adoption mismatch
//   3       v3         main   upgrade by the chain; a new room from v3's baseline;
//                             30 parallel GETs mid-upgrade
//   4       bad        main   a failing migration: typed 503, no trace, one log
//                             line, not re-run; a lagging object keeps 0003
//   5       bad        main   restart within retry_after: deferred
//   6       v3         main   the previous good build again
//   7       fixed      main   the fixed migration applies at once; a replaced
//                             release is kept where it applied
//   8       v2-strict  main   strict = true over a newer database: 503 ahead
//   9       v2         main   rollback: old code keeps serving a room whose
//                             newer migration is additive; where it is
//                             breaking (0004: a unique index) its reads
//                             serve and its writes answer 503 incompatible
//   10      edited     main   an applied migration edited: 503 edited
//   11-12   v2, fk     fk     a deferred foreign key left dangling
//   13-15   v3, additive, v3
//                      rollback  old code over an additive version 4: serves
//   16-18   breaking, v3, breaking
//                      rollback  old code over a breaking version 4 (a dropped
//                                column): the routes whose queries use it answer
//                                503 incompatible, the others serve, no "no such
//                                column"; version 4 again serves
//
// Last, every deploy's log is searched for panics and unhandled rejections.
// Environment: harness.mjs's, and E2E_CROSSCHECK (the native model's error
// for the bad 0004, JSON; empty when its run failed).

import fs from "node:fs";
import path from "node:path";
import {
  check, checkDeployLogs, dsLog, env, fail, freePort, http, logHas, pass, say, scenario,
  startWrangler, stopWrangler,
} from "./harness.mjs";

const work = env("E2E_WORK");
const logs = env("E2E_LOGS");
const state = path.join(work, "state");
const stateFk = path.join(work, "state-fk");
const stateRollback = path.join(work, "state-rollback");
// `name` in wrangler.toml and the class: the DO state lives in <script>-<class>/
const doDir = path.join(state, "v3", "do", "worker-chat-ChatRoom");

// Each build's CURRENT_SCHEMA_VERSION: the migrations scripts/e2e.sh put in it.
const BUILD_VERSION = { v2: 2, v3: 3, bad: 4, fixed: 4, "v2-strict": 2, edited: 2, fk: 4, additive: 4, breaking: 4 };

let deployN = 0;
let port;
let log;

/** (Re)starts wrangler dev on build `name` over `persist`; checks it serves that build. */
async function deploy(name, persist = state) {
  deployN += 1;
  port = await freePort();
  log = path.join(logs, `deploy-${deployN}-${name}.log`);
  say(`deploy ${deployN}: build ${name} on 127.0.0.1:${port} (state ${persist})`);
  const banner = await startWrangler({
    dir: path.join(work, "crates", name), persist, port, log,
    label: `deploy ${deployN} (${name})`, readyPrefix: "worker-chat ok",
  });
  // guards against serving a stale build: GET / reports the code's version
  check(`deploy ${deployN} serves build ${name} (code version ${BUILD_VERSION[name]})`,
    banner, `worker-chat ok: schema version ${BUILD_VERSION[name]}`);
}

const get = (p) => http(port, "GET", p);
const post = (p, json) => http(port, "POST", p, json);
const message = (author, body) => ({ author, body });
/** The tracking rows' versions of a /schema answer. */
const versions = (d) => (d.applied || []).map((a) => a.version).join(",");
/** The /export answer's table names. */
const tables = (d) => Object.keys(d).filter((t) => !t.startsWith("__")).sort().join(",");
const lastRun = (d) => [d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")];

/** `n` requests at once (POSTs carry a distinct message each). */
function parallel(n, method, p) {
  return Promise.all(Array.from({ length: n }, (_, i) =>
    http(port, method, p, method === "POST" ? message(`user${i + 1}`, `burst message ${i + 1}`) : undefined, 30000)));
}
const ok = (rs) => rs.filter((r) => r.code >= 200 && r.code < 300).length;

// What later scenarios compare against.
let appliedV2;
let alphaId;
let legacyId;
let legacyBadId;
let failureAt;
let cleanRow4;
const measured = {};

scenario("fresh objects migrate to version 2 from the compile-time baseline in one run", async () => {
  await deploy("v2");
  let r = await get("/rooms/alpha/schema");
  const d = r.d;
  check("fresh: GET /rooms/alpha/schema answers 200", r.code, 200);
  check("fresh: code version (CURRENT_SCHEMA_VERSION) is 2", () => d.code_version, 2);
  check("fresh: stored version is 2", () => d.stored_version, 2);
  check("fresh: state is current", () => d.state, "current");
  check("fresh: tracking rows for versions 1,2", () => versions(d), "1,2");
  check("fresh: tracking rows carry description, applied_at and checksum",
    () => d.applied.map((a) => [a.description, a.applied_at.length > 0, /^[0-9a-f]{64}$/.test(a.checksum)]),
    [["create_messages", true, true], ["index_messages_by_author", true, true]]);
  check("fresh: the constructor's run applied 0001 and 0002 from version 0",
    () => lastRun(d), [0, 2, "0001_create_messages.sql 0002_index_messages_by_author.sql"]);
  appliedV2 = d?.applied;
  alphaId = d?.object_id;
  const lines = await dsLog(log, alphaId, "applied");
  check("fresh: one \"applied\" log line for alpha (0 -> 2, applied [1,2])",
    lines.map((l) => [l.from, l.to, l.applied]), [[0, 2, [1, 2]]]);
  check("fresh (baseline): created from the compile-time baseline (log path, no baseline_error)",
    lines.map((l) => [l.path, l.baseline_error === undefined]), [["baseline", true]]);
  r = await get("/rooms/alpha/schema");
  check("fresh (baseline): last_run.baseline, rows_written > 0",
    () => [r.d.last_run.baseline, r.d.last_run.baseline_error, r.d.last_run.rows_written > 0], [true, null, true]);

  check("fresh: POST a message (201)", (await post("/rooms/alpha/messages", message("alice", "hello"))).code, 201);
  check("fresh: POST a second message (201)", (await post("/rooms/alpha/messages", message("bob", "hi"))).code, 201);
  check("fresh: a double-post is accepted by schema v2 (201)",
    (await post("/rooms/alpha/messages", message("bob", "hi"))).code, 201);
  r = await get("/rooms/alpha/messages");
  check("fresh: GET messages lists 3", () => [r.code, r.d.count], [200, 3]);
});

scenario("30 parallel POSTs at a fresh object all succeed and migrate it once", async () => {
  say("30 parallel POSTs at a fresh object (room burst)");
  check("concurrency (fresh object): 30 parallel POSTs all succeed", ok(await parallel(30, "POST", "/rooms/burst/messages")), 30);
  let r = await get("/rooms/burst/messages");
  check("concurrency (fresh object): 30 messages stored", () => [r.code, r.d.count], [200, 30]);
  r = await get("/rooms/burst/schema");
  check("concurrency (fresh object): migrated once (tracking rows 1,2; one run from 0)",
    () => [versions(r.d), r.d.last_run.from_version], ["1,2", 0]);
});

scenario("rooms for later scenarios are written at version 2", async () => {
  // lagging: a double-post, then not visited until the bad build (two versions behind)
  const lagging = [];
  for (let i = 0; i < 2; i++) lagging.push((await post("/rooms/lagging/messages", message("dan", "twice"))).code);
  check("lagging (v2): a room with a double-post (201, 201)", lagging, [201, 201]);
  // legacy, legacy-bad: their tracking tables get rewritten by hand next
  const legacy = [
    (await post("/rooms/legacy/messages", message("erin", "before adoption"))).code,
    (await post("/rooms/legacy-bad/messages", message("erin", "before adoption"))).code,
  ];
  check("adoption (v2): rooms legacy and legacy-bad hold a message (201, 201)", legacy, [201, 201]);
  legacyId = (await get("/rooms/legacy/schema")).d?.object_id;
  legacyBadId = (await get("/rooms/legacy-bad/schema")).d?.object_id;
});

scenario("a hand-rolled tracking table is written into a stopped object's SQLite file", async () => {
  await stopWrangler();
  say(`DO state: ${doDir}`);
  const file = (id) => path.join(doDir, `${id}.sqlite`);
  if (legacyId && fs.existsSync(file(legacyId)) && legacyBadId && fs.existsSync(file(legacyBadId))) {
    pass("adoption: the rooms' SQLite files found (<state>/v3/do/worker-chat-ChatRoom/<object_id>.sqlite)");
  } else {
    fail("adoption: the rooms' SQLite files found", `ids [${legacyId}] [${legacyBadId}] in ${doDir}`);
  }
  const { DatabaseSync } = await import("node:sqlite");
  // the 3-column table a project might have written itself; returns its rows
  const handRoll = (id, description2) => {
    const db = new DatabaseSync(file(id));
    try {
      db.exec("BEGIN");
      db.exec("DROP TABLE migrations");
      db.exec("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, description TEXT NOT NULL)");
      const ins = db.prepare("INSERT INTO migrations (version, applied_at, description) VALUES (?, ?, ?)");
      ins.run(1, "2024-01-01", "create_messages");
      ins.run(2, "2024-01-02", description2);
      db.exec("COMMIT");
      return db.prepare("SELECT version, applied_at, description FROM migrations ORDER BY version").all()
        .map((r) => [r.version, r.applied_at, r.description].join("|")).join(",");
    } finally {
      db.close();
    }
  };
  check("adoption: legacy's tracking table rewritten by hand (node:sqlite)",
    () => handRoll(legacyId, "index_messages_by_author"),
    "1|2024-01-01|create_messages,2|2024-01-02|index_messages_by_author");
  check("adoption: legacy-bad's too, with a wrong description for version 2",
    () => handRoll(legacyBadId, "price_to_cents"),
    "1|2024-01-01|create_messages,2|2024-01-02|price_to_cents");
});

scenario("a restart over the same state re-applies nothing and its up-to-date check reads one row", async () => {
  await deploy("v2");
  let r = await get("/rooms/alpha/schema");
  const d = r.d;
  check("restart: GET schema answers 200", r.code, 200);
  check("restart: nothing re-applied (tracking rows and applied_at unchanged)", () => d.applied, appliedV2);
  check("restart: the constructor's run applied nothing (2 -> 2)",
    () => [d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length], [2, 2, 0]);
  measured.rowsRead = d?.last_run?.rows_read;
  check("restart: the up-to-date check read 1 row (rows_read)", () => d.last_run.rows_read, 1);
  r = await get("/rooms/alpha/messages");
  check("restart: data kept (3 messages)", () => [r.code, r.d.count], [200, 3]);
  check("restart: no log line for an up-to-date object", (await dsLog(log, alphaId, undefined, { none: true })).length, 0);
});

scenario("a hand-rolled tracking table that matches the migrations is adopted", async () => {
  let r = await get("/rooms/legacy/messages");
  check("adoption: the hand-rolled room serves (200, its message kept)",
    () => [r.code, r.d.messages.map((m) => m.body)], [200, ["before adoption"]]);
  r = await get("/rooms/legacy/schema");
  const d = r.d;
  check("adoption: last_run.adopted, nothing applied (2 -> 2)",
    () => [d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length], [true, 2, 2, 0]);
  check("adoption: tracking rows 1,2 keep their original applied_at and gain checksums",
    () => [d.stored_version, d.applied.map((a) => [a.version, a.applied_at, /^[0-9a-f]{64}$/.test(a.checksum)])],
    [2, [[1, "2024-01-01", true], [2, "2024-01-02", true]]]);
  check("adoption: exactly one log line for the room, outcome \"adopted\"",
    (await dsLog(log, legacyId)).map((l) => l.outcome), ["adopted"]);
});

scenario("a hand-rolled tracking table with a wrong description is refused and left untouched", async () => {
  let r = await get("/rooms/legacy-bad/messages");
  check("adoption mismatch: the room answers 503 adoption_mismatch",
    () => [r.code, r.d.migration.kind], [503, "adoption_mismatch"]);
  say(`  response: ${r.text.slice(0, 300)}`);
  check("adoption mismatch: the error names version 2's recorded description",
    () => /price_to_cents/.test(r.d.migration.message), true);
  r = await get("/rooms/legacy-bad/export");
  const d = r.d;
  check("adoption mismatch: the table is left untouched (3 columns, same rows; /export)",
    () => [r.code, d.migrations.columns, d.migrations.rows.map((x) => [x.version, x.applied_at, x.description])],
    [200, ["version", "applied_at", "description"],
      [[1, "2024-01-01", "create_messages"], [2, "2024-01-02", "price_to_cents"]]]);
  check("adoption mismatch: the room's data kept, no failure record (/export)",
    () => [d.messages.rows.map((x) => x.body), "migrations_failure" in d], [["before adoption"], false]);
  check("adoption mismatch: one \"failed\" log line (adoption_mismatch)",
    (await dsLog(log, legacyBadId)).map((l) => [l.outcome, l.error && l.error.kind]), [["failed", "adoption_mismatch"]]);
});

scenario("a redeploy with one more migration upgrades an existing object by the chain on its next request", async () => {
  await deploy("v3");
  let r = await get("/rooms/alpha/messages");
  check("upgrade: existing object answers on its next request (200)", r.code, 200);
  check("upgrade: served by code version 3", () => r.d.code_version, 3);
  check("upgrade: old data kept, new column present (reactions 0)",
    () => r.d.messages.map((m) => [m.author, m.body, m.reactions].join(":")), ["alice:hello:0", "bob:hi:0", "bob:hi:0"]);
  r = await post("/rooms/alpha/messages/1/react");
  check("upgrade: the new column is usable (react -> reactions 1)", () => [r.code, r.d.reactions], [200, 1]);
  r = await get("/rooms/alpha/schema");
  const d = r.d;
  check("upgrade: stored version 3, tracking rows 1,2,3", () => [d.stored_version, versions(d)], [3, "1,2,3"]);
  check("upgrade: rows 1,2 untouched (applied_at unchanged)", () => d.applied.slice(0, 2), appliedV2);
  check("upgrade: the constructor's run applied 0003 only (2 -> 3)", () => lastRun(d), [2, 3, "0003_add_reactions.sql"]);
  const lines = await dsLog(log, alphaId);
  check("upgrade: one log line for alpha: applied, 2 -> 3, rows_written > 0",
    lines.map((l) => [l.outcome, l.from, l.to, l.applied, l.rows_written > 0]), [["applied", 2, 3, [3], true]]);
  check("upgrade: the constructor's run went migration by migration (log path chain)",
    lines.map((l) => l.path), ["chain"]);
});

scenario("a new object on the upgraded build starts from its baseline with the tracking rows of a full run", async () => {
  // alpha's rows: 1,2 from v2's baseline, 3 by the chain
  const rowsAlpha = (await get("/rooms/alpha/schema")).d?.applied?.map((a) => [a.description, a.checksum]);
  check("fresh at v3 (baseline): POST to a new room (201)",
    (await post("/rooms/gamma/messages", message("gus", "new here"))).code, 201);
  let r = await get("/rooms/gamma/schema");
  const d = r.d;
  check("fresh at v3 (baseline): version 3 in one run from 0, from the baseline",
    () => [d.stored_version, d.last_run.from_version, d.last_run.applied.length, d.last_run.baseline], [3, 0, 3, true]);
  check("fresh at v3 (baseline): the same tracking rows (description, checksum) as alpha's",
    () => d.applied.map((a) => [a.description, a.checksum]), rowsAlpha);
  r = await get("/rooms/gamma/export");
  check("fresh at v3 (baseline): the schema of v3 (reactions column), the message stored",
    () => [r.d.messages.columns.includes("reactions"), r.d.messages.rows.length], [true, 1]);
});

scenario("30 parallel GETs at an object that needs the upgrade all see the new schema", async () => {
  say("30 parallel GETs at an object that needs the upgrade (room burst)");
  const rs = await parallel(30, "GET", "/rooms/burst/messages");
  check("concurrency (upgrade): 30 parallel GETs all succeed", ok(rs), 30);
  check("concurrency (upgrade): all 30 saw the new schema (30 messages with reactions)",
    rs.filter((x) => x.d && x.d.count === 30 && x.d.messages.every((m) => m.reactions === 0)).length, 30);
  const r = await get("/rooms/burst/schema");
  check("concurrency (upgrade): upgraded once (rows 1,2,3; one run 2 -> 3)",
    () => [versions(r.d), r.d.last_run.from_version, r.d.last_run.to_version], ["1,2,3", 2, 3]);
});

scenario("a migration failing on the object's data answers 503 with the typed error and leaves no trace", async () => {
  await deploy("bad");
  let r = await get("/rooms/alpha/messages");
  failureAt = Date.now();
  const m = r.d?.migration;
  check("failing migration: the request answers 503 \"schema unavailable\"", () => [r.code, r.d.error], [503, "schema unavailable"]);
  say(`  response: ${r.text.slice(0, 300)}`);
  check("failing migration: typed error: kind statement, 0004_unique_messages.sql, version 4, statement 2",
    () => [m.kind, m.file, m.version, m.statement], ["statement", "0004_unique_messages.sql", 4, 2]);
  check("failing migration: the error carries SQLite's message (UNIQUE constraint failed)",
    () => /UNIQUE constraint failed/.test(m.sqlite), true);
  check("failing migration: the error locates the statement (0004_unique_messages.sql:9:1)",
    () => [m.line, m.column], [9, 1]);
  // the same failure in durable_schema::testing's model (computed by scripts/e2e.sh before the deploys)
  const keys = ["kind", "version", "file", "statement", "line", "column", "sqlite", "message"];
  const crosscheck = process.env.E2E_CROSSCHECK;
  if (crosscheck && fs.existsSync(crosscheck) && fs.statSync(crosscheck).size > 0) {
    const native = JSON.parse(fs.readFileSync(crosscheck, "utf8"));
    check("model cross-check: workerd and durable_schema::testing give the same error (kind, file, statement, line, SQLite's message, text)",
      () => keys.map((k) => m[k] ?? null), keys.map((k) => native[k] ?? null));
  } else {
    fail("model cross-check: the native run", `see ${path.join(logs, "crosscheck.log")}`);
  }
  check("failing migration: the error is logged with the file name (0004_unique_messages.sql)",
    await logHas(log, "0004_unique_messages.sql"), true);
  check("failing migration: the log carries SQLite's message (UNIQUE constraint failed)",
    await logHas(log, "UNIQUE constraint failed"), true);
  r = await get("/rooms/alpha/schema");
  check("failing migration: /schema keeps answering (200), stored version 3, rows 1,2,3",
    () => [r.code, r.d.stored_version, versions(r.d)], [200, 3, "1,2,3"]);
  check("failing migration: /schema's last_run.error names 0004_unique_messages.sql",
    () => [r.d.last_run.error.kind, r.d.last_run.error.file], ["statement", "0004_unique_messages.sql"]);
  check("failing migration: /schema's object_id is alpha's", () => r.d.object_id, alphaId);
  r = await get("/rooms/alpha/export");
  const d = r.d;
  check("failing migration: /export answers on the stuck object (200)", r.code, 200);
  check("failing migration: the two-statement migration left no trace (no moderation table, no unique index effect)",
    () => tables(d), "messages,migrations,migrations_failure");
  check("failing migration: data intact (/export: 3 messages, the double-post; tracking rows 1,2,3)",
    () => [d.messages.rows.map((x) => `${x.author}:${x.body}`), d.migrations.rows.map((x) => x.version)],
    [["alice:hello", "bob:hi", "bob:hi"], [1, 2, 3]]);
  check("failing migration: the failure record (version 4, 1 attempt, the error)",
    () => d.migrations_failure.rows.map((x) => [x.version, x.attempts, /0004_unique_messages.sql/.test(x.error)]),
    [[4, 1, true]]);
});

scenario("the failure is logged as one structured JSON line", async () => {
  const lines = await dsLog(log, alphaId, "failed");
  check("structured log: exactly one \"failed\" line for alpha's object", lines.length, 1);
  const l = lines[0];
  say(`  log line: ${JSON.stringify(l).slice(0, 400)}`);
  check("structured log: event, object, outcome, from 3, to 3, applied []",
    () => [l.event, l.object, l.outcome, l.from, l.to, l.applied], ["durable-schema", alphaId, "failed", 3, 3, []]);
  check("structured log: duration_ms and rows_written are numbers (rows_written 0)",
    () => [typeof l.duration_ms, l.duration_ms >= 0, typeof l.rows_written, l.rows_written], ["number", true, "number", 0]);
  check("structured log: error kind/file/statement/line/column",
    () => [l.error.kind, l.error.file, l.error.version, l.error.statement, l.error.line, l.error.column],
    ["statement", "0004_unique_messages.sql", 4, 2, 9, 1]);
  check("structured log: error.sqlite has SQLite's message",
    () => /UNIQUE constraint failed: messages.author, messages.body/.test(l.error.sqlite), true);
});

scenario("the failing migration is not re-run by 30 more requests", async () => {
  say("30 parallel GETs at the failed object (room alpha)");
  const rs = await parallel(30, "GET", "/rooms/alpha/messages");
  check("not re-run: 30 more requests all answer 503", rs.filter((x) => x.code === 503).length, 30);
  check("not re-run: all 30 carry the typed error (statement, 0004)",
    rs.filter((x) => x.d?.migration?.kind === "statement" && x.d.migration.file === "0004_unique_messages.sql").length, 30);
  await new Promise((res) => setTimeout(res, 1000));
  measured.failedLines = (await dsLog(log, alphaId, "failed")).length;
  measured.deferredLines = (await dsLog(log, alphaId, "deferred", { none: true })).length;
  check(`not re-run: after the 30 more requests still exactly one "failed" line for alpha (deferred lines: ${measured.deferredLines})`,
    measured.failedLines, 1);
  const r = await get("/rooms/alpha/export");
  check("not re-run: the failure record still says 1 attempt",
    () => r.d.migrations_failure.rows.map((x) => x.attempts), [1]);
});

scenario("an object two versions behind keeps 0003 and rolls the failing 0004 back", async () => {
  let r = await get("/rooms/lagging/messages");
  check("lagging: a v2 room with a double-post answers 503 (statement, 0004)",
    () => [r.code, r.d.migration.kind, r.d.migration.file], [503, "statement", "0004_unique_messages.sql"]);
  r = await get("/rooms/lagging/schema");
  const d = r.d;
  const laggingId = d?.object_id;
  check("lagging: 0003 kept, 0004 rolled back (stored version 3, tracking rows 1,2,3)",
    () => [d.stored_version, versions(d)], [3, "1,2,3"]);
  check("lagging: last_run 2 -> 3 applied [0003_add_reactions.sql], error in 0004",
    () => [d.last_run.from_version, d.last_run.to_version, d.last_run.applied, d.last_run.error.file],
    [2, 3, ["0003_add_reactions.sql"], "0004_unique_messages.sql"]);
  r = await get("/rooms/lagging/export");
  check("lagging: /export shows 0003's reactions column, no moderation table",
    () => [r.d.messages.columns.includes("reactions"), "moderation" in r.d, r.d.messages.rows.length], [true, false, 2]);
  check("lagging: one log line: failed, from 2, to 3, applied [3], rows_written > 0",
    (await dsLog(log, laggingId)).map((l) => [l.outcome, l.from, l.to, l.applied, l.rows_written > 0, l.error?.file]),
    [["failed", 2, 3, [3], true, "0004_unique_messages.sql"]]);
});

scenario("a room without double-posts applies the first 0004", async () => {
  // The fixed build declares this 0004 replaced (variants/fixed/durable-schema.lock)
  // and keeps the room as it is, on the one-row fast path.
  check("replaced release: a room without double-posts applies the first 0004 (201)",
    (await post("/rooms/clean/messages", message("erin", "only once"))).code, 201);
  const r = await get("/rooms/clean/schema");
  check("replaced release: that room is at version 4 with the first 0004",
    () => [r.d.stored_version, versions(r.d)], [4, "1,2,3,4"]);
  cleanRow4 = r.d?.applied?.[3];
});

scenario("the failing build restarted within retry_after defers instead of re-running the migration", async () => {
  await deploy("bad");
  let r = await get("/rooms/alpha/messages");
  check("deferred: the bad build restarted: 503, kind deferred (version 4, 1 attempt)",
    () => [r.code, r.d.migration.kind, r.d.migration.version, r.d.migration.attempts, r.d.migration.retry_in_secs > 0],
    [503, "deferred", 4, 1, true]);
  measured.deferredLines2 = (await dsLog(log, alphaId, "deferred")).length;
  check("deferred: one \"deferred\" log line for alpha", measured.deferredLines2, 1);
  check("deferred: no \"failed\" line: the migration was not executed again",
    (await dsLog(log, alphaId, "failed", { none: true })).length, 0);
  r = await get("/rooms/alpha/export");
  check("deferred: still no moderation table, record still 1 attempt",
    () => [tables(r.d), r.d.migrations_failure.rows.map((x) => x.attempts)], ["messages,migrations,migrations_failure", [1]]);
});

scenario("the previous good build serves the objects the failing one left behind", async () => {
  await deploy("v3");
  let r = await get("/rooms/alpha/messages");
  check("after the failure: previous build serves the object again (200)", r.code, 200);
  check("after the failure: data intact (3 messages, the double-post, reaction kept)",
    () => r.d.messages.map((m) => [m.author, m.body, m.reactions].join(":")), ["alice:hello:1", "bob:hi:0", "bob:hi:0"]);
  r = await get("/rooms/alpha/schema");
  check("after the failure: still version 3, 0004 not recorded", () => [r.d.stored_version, versions(r.d)], [3, "1,2,3"]);
  r = await get("/rooms/alpha/export");
  check("after the failure: the failure record is still there (for the fixed build to ignore)",
    () => r.d.migrations_failure.rows.map((x) => x.version), [4]);
  r = await get("/rooms/lagging/messages");
  check("lagging: on the previous good build it serves at version 3 (200, 2 messages)",
    () => [r.code, r.d.code_version, r.d.count], [200, 3, 2]);
  r = await get("/rooms/lagging/schema");
  check("lagging: stored version 3, tracking rows 1,2,3, nothing to apply",
    () => [r.d.stored_version, versions(r.d), r.d.last_run.applied.length, r.d.last_run.error], [3, "1,2,3", 0, null]);
  // steady: left at version 3 (0003 only adds a column) for the rollback to v2
  check("steady (v3): a room written at version 3 and not visited again until the rollback (201)",
    (await post("/rooms/steady/messages", message("sam", "written at version 3"))).code, 201);
});

scenario("the fixed migration applies at once despite the failure record, and clears it", async () => {
  await deploy("fixed");
  let r = await get("/rooms/alpha/schema");
  const sinceFailure = Math.round((Date.now() - failureAt) / 1000);
  const d = r.d;
  check("fixed migration: GET schema answers 200", r.code, 200);
  check("fixed migration: code 4, stored 4, tracking rows 1..4",
    () => [d.code_version, d.stored_version, versions(d)], [4, 4, "1,2,3,4"]);
  check("fixed migration: the constructor's run applied 0004 (3 -> 4)", () => lastRun(d), [3, 4, "0004_unique_messages.sql"]);
  r = await get("/rooms/gamma/schema");
  check("fixed migration: the room created from v3's baseline upgrades by the chain (3 -> 4)",
    () => [r.d.stored_version, r.d.last_run.from_version, r.d.last_run.applied.join(" "), r.d.last_run.baseline],
    [4, 3, "0004_unique_messages.sql", false]);
  r = await get("/rooms/gamma/messages");
  check("fixed migration: that room's message kept", () => [r.code, r.d.count], [200, 1]);
  // Not a timing assertion on the library: the scenario proves something only
  // when the fixed build came inside the failure's retry_after.
  if (sinceFailure < 60) {
    pass(`fixed migration: new code tried at once, ${sinceFailure} s after the failure (inside retry_after = 60 s)`);
  } else {
    fail("fixed migration: new code tried inside retry_after", `${sinceFailure} s after the failure: not inside 60 s, proves nothing`);
  }
  check("fixed migration: one log line for alpha: applied 3 -> 4",
    (await dsLog(log, alphaId)).map((l) => [l.outcome, l.from, l.to, l.applied]), [["applied", 3, 4, [4]]]);
  r = await get("/rooms/alpha/export");
  check("fixed migration: the failure record is cleared",
    () => ("migrations_failure" in r.d ? r.d.migrations_failure.rows.length : "absent"), 0);
  r = await get("/rooms/alpha/messages");
  check("fixed migration: the duplicate was removed, the rest kept",
    () => r.d.messages.map((m) => `${m.id}:${m.author}:${m.body}`), ["1:alice:hello", "2:bob:hi"]);
  check("fixed migration: a double-post is now refused (409)", (await post("/rooms/alpha/messages", message("bob", "hi"))).code, 409);
  r = await get("/rooms/lagging/messages");
  check("lagging: the fixed build migrates it to 4 (200, duplicate removed)",
    () => [r.code, r.d.messages.map((m) => `${m.author}:${m.body}`)], [200, ["dan:twice"]]);
  r = await get("/rooms/lagging/schema");
  check("lagging: stored version 4, tracking rows 1..4", () => [r.d.stored_version, versions(r.d)], [4, "1,2,3,4"]);
});

scenario("a release the lock declares replaced is kept where it was applied", async () => {
  let r = await get("/rooms/clean/messages");
  check("replaced release: the room that applied the first 0004 serves the fixed build (200, 1 message)",
    () => [r.code, r.d.count], [200, 1]);
  r = await get("/rooms/clean/schema");
  check("replaced release: nothing re-run there: row 4 unchanged (first text's checksum, applied_at)",
    () => r.d.applied[3], cleanRow4);
  check("replaced release: its up-to-date check read one row and applied nothing",
    () => [r.d.last_run.rows_read, r.d.last_run.applied.length, r.d.last_run.error], [1, 0, null]);
});

scenario("a strict build over a newer database answers 503 ahead", async () => {
  await deploy("v2-strict");
  let r = await get("/rooms/alpha/messages");
  check("strict: a strict v2 build over the v4 object answers 503 ahead", () => [r.code, r.d.migration.kind], [503, "ahead"]);
  say(`  response: ${r.text.slice(0, 300)}`);
  r = await get("/rooms/alpha/schema");
  check("strict: /schema answers (200), stored 4, last_run.error ahead",
    () => [r.code, r.d.stored_version, r.d.last_run.error.kind], [200, 4, "ahead"]);
  check("strict: one \"failed\" log line (ahead)",
    (await dsLog(log, alphaId)).map((l) => [l.outcome, l.error?.kind]), [["failed", "ahead"]]);
});

scenario("a rollback to older code keeps serving a newer database unless a newer migration breaks it", async () => {
  await deploy("v2");
  // steady is at version 3: 0003 added a column, which the v2 code never names
  let r = await get("/rooms/steady/messages");
  check("rollback: the v2 build over a room at version 3 keeps serving (200)", r.code, 200);
  check("rollback: served by code version 2, data there", () => [r.d.code_version, r.d.count], [2, 1]);
  check("rollback: the old code can still write (201)",
    (await post("/rooms/steady/messages", message("carol", "written by the old code"))).code, 201);
  r = await get("/rooms/steady/schema");
  const steadyId = r.d?.object_id;
  check("rollback: schema shows stored version 3 > code version 2 (state ahead)",
    () => [r.d.code_version, r.d.stored_version, r.d.state], [2, 3, "ahead"]);
  check("rollback: the constructor's run tolerated it (ahead = 3, nothing applied)",
    () => [r.d.last_run.ahead, r.d.last_run.applied.length], [3, 0]);
  check("rollback: a warning is logged (ahead of the code)", await logHas(log, "ahead of the code"), true);
  // alpha is at version 4: fixed/0004 adds a unique index over existing rows
  // (BC108) and deletes rows (DS103), which the build classifies as breaking.
  // `ds::checked` judges each query: a unique index breaks writers only.
  r = await get("/rooms/alpha/messages");
  check("rollback: over alpha, whose 0004 is breaking for writers (BC108), the v2 build still lists (200)",
    () => [r.code, r.d.code_version, r.d.count > 0], [200, 2, true]);
  r = await post("/rooms/alpha/messages", message("dan", "written by the old code"));
  check("rollback: over alpha, a POST (it writes messages) answers 503 incompatible naming 0004 and BC108",
    () => [r.code, r.d.kind, /version 4 \(unique_messages\) breaks it: BC108 unique index on existing table `messages`/.test(r.d.message)],
    [503, "incompatible", true]);
  r = await get("/rooms/alpha/q/roundtrip");
  check("rollback: over alpha, a route left on ds::sql (no table used) answers 503 incompatible naming 0004",
    () => [r.code, r.d.migration.kind, r.d.migration.version, r.d.migration.migration, /BC108/.test(r.d.migration.findings)],
    [503, "incompatible", 4, "unique_messages", true]);
  check("rollback: no durable-schema log line for steady (a tolerated run only warns)",
    (await dsLog(log, steadyId, undefined, { none: true })).length, 0);
});

scenario("an applied migration edited afterwards answers 503 edited and leaves the data alone", async () => {
  await deploy("edited");
  // steady (version 3, tolerated by v2 code): the history the code knows, up
  // to 0002, is compared, and its 0002 differs
  let r = await get("/rooms/steady/messages");
  check("edited: a build whose 0002 differs from the applied one answers 503 edited",
    () => [r.code, r.d.migration.kind, r.d.migration.file, r.d.migration.version],
    [503, "edited", "0002_index_messages_by_author.sql", 2]);
  say(`  response: ${r.text.slice(0, 300)}`);
  r = await get("/rooms/steady/export");
  const steadyId = (await get("/rooms/steady/schema")).d?.object_id;
  check("edited: data intact, tracking rows 1..3 unchanged (/export)",
    () => [r.code, r.d.messages.rows.map((x) => x.author), r.d.migrations.rows.map((x) => x.version)],
    [200, ["sam", "carol"], [1, 2, 3]]);
  check("edited: one \"failed\" log line (edited)",
    (await dsLog(log, steadyId)).map((l) => [l.outcome, l.error?.kind]), [["failed", "edited"]]);
});

scenario("a deferred foreign key left dangling rolls its migration back", async () => {
  await deploy("v2", stateFk);
  const codes = [];
  for (const [author, body] of [["alice", "one"], ["bob", "one"], ["bob", "two"]]) {
    codes.push((await post("/rooms/fkroom/messages", message(author, body))).code);
  }
  check("foreign key (v2): alice posts once, bob twice (201 x 3)", codes, [201, 201, 201]);
  await deploy("fk", stateFk);
  let r = await get("/rooms/fkroom/messages");
  const m = r.d?.migration;
  check("foreign key: the room answers 503, kind foreign_key", () => [r.code, m.kind], [503, "foreign_key"]);
  say(`  response: ${r.text.slice(0, 300)}`);
  check("foreign key: 0004_rebuild_authors.sql (version 4) left author_stats -> authors dangling",
    () => [m.file, m.version, m.table, m.parent, typeof m.rowid], ["0004_rebuild_authors.sql", 4, "author_stats", "authors", "number"]);
  r = await get("/rooms/fkroom/schema");
  const fkId = r.d?.object_id;
  check("foreign key: stored version 3 (0003 kept, 0004 rolled back)",
    () => [r.d.stored_version, versions(r.d), r.d.last_run.error.kind], [3, "1,2,3", "foreign_key"]);
  r = await get("/rooms/fkroom/export");
  check("foreign key: data intact (/export: authors alice, bob; author_stats 2 rows; no authors_new)",
    () => [r.d.authors.columns, r.d.authors.rows.map((x) => x.name).sort(),
      r.d.author_stats.rows.map((x) => `${x.author}:${x.posts}`).sort(), "authors_new" in r.d],
    [["name"], ["alice", "bob"], ["alice:1", "bob:2"], false]);
  check("foreign key: one log line: failed, 2 -> 3, applied [3], foreign_key",
    (await dsLog(log, fkId)).map((l) => [l.outcome, l.from, l.to, l.applied, l.error?.kind, l.error?.table, l.error?.parent]),
    [["failed", 2, 3, [3], "foreign_key", "author_stats", "authors"]]);
});

// Old code over a newer schema (issue 20), over the "rollback" state dir:
// room `added` meets an additive 0004 (variants/additive: a new column), room
// `dropped` a breaking one (variants/breaking: reactions dropped, acknowledged
// with `-- durable-schema: breaking`); the v3 build, which reads `reactions` on
// every listing and reaction, is deployed over each. Its schema routes use
// `ds::checked`: over the breaking 0004, the queries that use `reactions`
// answer 503 incompatible and the others serve; `/q/roundtrip` stays on
// `ds::sql`, which refuses the whole code.
const reactions = (d) => d.messages.map((m) => `${m.author}:${m.body}:${m.reactions}`);
/** Answers that carry SQLite's "no such column"/"no such table" (the failure the guard prevents). */
const noSuch = (rs) => rs.filter((r) => /no such (column|table)/.test(r.text)).length;
/** The tracking row of `version` in an /export answer: [class, breaks_below, findings]. */
const classOf = (d, version) => d.migrations.rows.filter((x) => x.version === version)
  .map((x) => [x.class, x.breaks_below, x.findings])[0];
let droppedId;

scenario("old code over an additive newer migration keeps serving", async () => {
  await deploy("v3", stateRollback);
  const codes = [];
  for (const room of ["added", "dropped"]) {
    codes.push((await post(`/rooms/${room}/messages`, message("ann", "first"))).code);
    codes.push((await post(`/rooms/${room}/messages`, message("ben", "second"))).code);
    codes.push((await post(`/rooms/${room}/messages/1/react`)).code);
  }
  check("rollback (v3): rooms added and dropped get 2 messages and a reaction each (201, 201, 200 x 2)",
    codes, [201, 201, 200, 201, 201, 200]);
  droppedId = (await get("/rooms/dropped/schema")).d?.object_id;

  await deploy("additive", stateRollback);
  let r = await get("/rooms/added/messages");
  check("additive: the v4 build applies the additive 0004 to room added (200, code version 4, reactions kept)",
    () => [r.code, r.d.code_version, reactions(r.d)], [200, 4, ["ann:first:1", "ben:second:0"]]);
  r = await get("/rooms/added/export");
  check("additive: row 4 records class additive, breaks_below 0; messages gained edited_at (/export)",
    () => [classOf(r.d, 4).slice(0, 2), r.d.messages.columns.includes("edited_at")], [["additive", 0], true]);

  await deploy("v3", stateRollback);
  say("30 parallel GETs of the v3 build at the room migrated to the additive version 4 (room added)");
  const rs = await parallel(30, "GET", "/rooms/added/messages");
  check("additive rollback: the v3 build over the additive v4 answers all 30 parallel GETs (200)", ok(rs), 30);
  check("additive rollback: none fails with \"no such column\" or \"no such table\"", noSuch(rs), 0);
  r = await get("/rooms/added/messages");
  check("additive rollback: served by code version 3, reactions read (200)",
    () => [r.code, r.d.code_version, reactions(r.d)], [200, 3, ["ann:first:1", "ben:second:0"]]);
  check("additive rollback: the old code still writes and reacts (201, 200)",
    [(await post("/rooms/added/messages", message("cid", "third"))).code,
      (await post("/rooms/added/messages/1/react")).code], [201, 200]);
  r = await get("/rooms/added/schema");
  check("additive rollback: /schema stored 4, state ahead, tolerated (ahead 4, no error)",
    () => [r.code, r.d.stored_version, r.d.state, r.d.last_run.ahead, r.d.last_run.error], [200, 4, "ahead", 4, null]);
});

scenario("old code over a breaking newer migration stops with 503 incompatible, never \"no such column\"", async () => {
  await deploy("breaking", stateRollback);
  let r = await get("/rooms/dropped/messages");
  check("breaking: the v4 build drops reactions in room dropped (200, code version 4, messages without reactions)",
    () => [r.code, r.d.code_version, r.d.messages.map((m) => `${m.author}:${m.body}:${"reactions" in m}`)],
    [200, 4, ["ann:first:false", "ben:second:false"]]);
  r = await get("/rooms/dropped/export");
  const row4 = classOf(r.d, 4);
  check("breaking: row 4 records class breaking, breaks_below 4, BC103 for messages.reactions (/export)",
    () => [row4[0], row4[1], /BC103 column `messages.reactions` dropped/.test(row4[2])], ["breaking", 4, true]);

  await deploy("v3", stateRollback);
  say("30 parallel GETs and 30 parallel reactions (they use reactions), 30 parallel GETs by author (they do not) of the v3 build at the room whose 0004 dropped reactions (room dropped)");
  const reads = await parallel(30, "GET", "/rooms/dropped/messages");
  const reacts = await parallel(30, "POST", "/rooms/dropped/messages/1/react");
  const byAuthor = await parallel(30, "GET", "/rooms/dropped/q/by-author/ann");
  const rs = [...reads, ...reacts];
  measured.noSuch = noSuch([...rs, ...byAuthor]);
  check("breaking rollback: not one of 90 requests fails with \"no such column\" or \"no such table\"",
    measured.noSuch, 0);
  check("breaking rollback: all 60 whose queries use reactions answer 503 kind incompatible",
    rs.filter((x) => x.code === 503 && x.d?.kind === "incompatible").length, 60);
  say(`  response: ${reads[0].text.slice(0, 400)}`);
  check("breaking rollback: the refusal names the newer migration and the finding (version 4, drop_reactions, BC103 messages.reactions)",
    () => [/version 4 \(drop_reactions\) breaks it: BC103 column `messages.reactions` dropped/.test(reads[0].d.message),
      /version 4 \(drop_reactions\) breaks it: BC103 column `messages.reactions` dropped/.test(reacts[0].d.message)], [true, true]);
  check("breaking rollback: all 30 reads by author (no reactions in the query) serve (200, ann's message)",
    byAuthor.filter((x) => x.code === 200 && x.d?.[0]?.body === "first").length, 30);
  r = await post("/rooms/dropped/messages", message("cid", "written by the old code"));
  check("breaking rollback: a write that leaves reactions out serves (201)", () => [r.code, r.d.author], [201, "cid"]);
  r = await http(port, "POST", "/rooms/dropped/q/rename/cid/cyd");
  check("breaking rollback: an UPDATE of another column serves (200, 1 row changed)", () => [r.code, r.d.changed], [200, 1]);
  r = await get("/rooms/dropped/q/roundtrip");
  const m = r.d?.migration;
  check("breaking rollback: the route left on ds::sql answers 503 incompatible although its query uses no table",
    () => [r.code, m.kind], [503, "incompatible"]);
  check("breaking rollback: its error names the newer migration (version 4, drop_reactions; db 4, code 3)",
    () => [m.version, m.migration, m.db, m.code], [4, "drop_reactions", 4, 3]);
  check("breaking rollback: and carries its findings (BC103, DS102 for messages.reactions)",
    () => [/BC103 column `messages.reactions` dropped/.test(m.findings), /DS102/.test(m.findings)], [true, true]);
  r = await get("/rooms/dropped/schema");
  check("breaking rollback: /schema works (200): stored 4, state incompatible, last_run.error incompatible, nothing applied",
    () => [r.code, r.d.stored_version, r.d.state, r.d.last_run.error.kind, r.d.last_run.applied.length],
    [200, 4, "incompatible (version 4 breaks this code)", "incompatible", 0]);
  r = await get("/rooms/dropped/export");
  check("breaking rollback: /export works (200): 3 messages (cyd's written by the old code), no reactions column, tracking rows 1..4",
    () => [r.code, r.d.messages.rows.map((x) => x.author), r.d.messages.columns.includes("reactions"), r.d.migrations.rows.map((x) => x.version)],
    [200, ["ann", "ben", "cyd"], false, [1, 2, 3, 4]]);
  r = await get("/rooms/added/messages");
  check("breaking rollback: the same build still serves the room at the additive version 4 (200)",
    () => [r.code, r.d.code_version], [200, 3]);
  check("breaking rollback: one \"failed\" log line for room dropped (incompatible)",
    (await dsLog(log, droppedId)).map((l) => [l.outcome, l.error?.kind]), [["failed", "incompatible"]]);
  check("breaking rollback: the deploy's log has no \"no such column\"", await logHas(log, "no such column"), false);

  await deploy("breaking", stateRollback);
  r = await get("/rooms/dropped/messages");
  check("breaking again: version 4 serves room dropped again (200, code version 4, 3 messages)",
    () => [r.code, r.d.code_version, r.d.count], [200, 4, 3]);
  check("breaking again: and writes (201)", (await post("/rooms/dropped/messages", message("cid", "third"))).code, 201);
  r = await get("/rooms/dropped/schema");
  check("breaking again: /schema current, nothing applied, no error, one row read",
    () => [r.d.state, r.d.last_run.applied.length, r.d.last_run.error, r.d.last_run.rows_read], ["current", 0, null, 1]);
});

scenario("no deploy's log shows a panic, a wasm trap or an unhandled rejection", async () => {
  await stopWrangler();
  checkDeployLogs(logs);
  say(`measured rows_read of the up-to-date check: ${measured.rowsRead ?? "?"}`);
  say(`measured in the breaking rollback: requests failing with "no such column/table": ${measured.noSuch ?? "?"} of 90`);
  say(`measured after the failure (deploy bad, 31 requests to alpha through the guard): failed lines ${measured.failedLines ?? "?"}, deferred lines ${measured.deferredLines ?? "?"}; after the restart of the bad build: deferred lines ${measured.deferredLines2 ?? "?"}`);
});
