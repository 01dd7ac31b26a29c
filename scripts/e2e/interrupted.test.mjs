// interrupted.test.mjs — a run killed in the middle of a migration (issue 21),
// in real workerd: scripts/e2e.sh builds `slow` (v2 + variants/slow's
// 0003_fill_filler.sql, a 30-million-row backfill for a room holding a
// message) and runs this file with `node --test` over a state dir of its own
// ($E2E_WORK/state-slow, fresh each run).
//
// The constructor's run commits a started record and awaits storage.sync()
// before 0003's statements run; wrangler and workerd are SIGKILLed during
// them and restarted over the same files: the next run reports 0003 as
// interrupted (503 naming the file) and executes nothing; status and export
// keep working, and a restart within retry_after defers.
//
//   deploy  build  state  scenario
//   19      v2     slow   a room with a message
//   20      slow   slow   0003 backfills 30M rows; wrangler and workerd SIGKILLed
//                         during it
//   21      slow   slow   restart: 503 interrupted naming 0003, 30 parallel
//                         requests: no re-run; /schema, /export answer
//   22      slow   slow   restart within retry_after: 503 deferred, no re-run
//
// The deploys are numbered after worker-chat.test.mjs's eighteen (chat.mjs);
// its last scenario searches these deploys' logs too. Environment:
// harness.mjs's.

import path from "node:path";
import { deployer } from "./chat.mjs";
import { check, dsLog, env, fail, http, killWrangler, pass, say, scenario, stopWrangler } from "./harness.mjs";

const stateSlow = path.join(env("E2E_WORK"), "state-slow");
const d = deployer(19);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const interruptedText = /0003_fill_filler.sql \(version 3\) was interrupted/;

let slowId;

scenario("interrupted: a room on v2 holds a message before the backfill", async () => {
  await d.deploy("v2", stateSlow);
  check("interrupted (v2): room slowroom holds a message (201)",
    (await d.post("/rooms/slowroom/messages", { author: "zoe", body: "before the backfill" })).code, 201);
});

scenario("interrupted: wrangler and workerd are SIGKILLed in the middle of 0003", async () => {
  await d.deploy("slow", stateSlow);
  // the request whose constructor run executes 0003; it never gets an answer
  let answer;
  const request = d.get("/rooms/slowroom/messages", 120000).then((r) => { answer = r; });
  await sleep(5000);
  if (answer === undefined) {
    pass("interrupted: the request that runs 0003 is still waiting after 5 s (the backfill runs)");
  } else {
    fail("interrupted: the request that runs 0003 is still waiting after 5 s",
      `it answered ${answer.code}: the backfill finished too soon`);
  }
  await killWrangler();
  await request;
});

scenario("interrupted: after the restart the killed migration is reported, not re-run", async () => {
  await d.deploy("slow", stateSlow);
  let r = await d.get("/rooms/slowroom/messages");
  check("interrupted: after the restart the room answers 503, kind interrupted",
    () => [r.code, r.d.migration.kind], [503, "interrupted"]);
  check("interrupted: the error names the file, the version and when the run started",
    () => [r.d.migration.file, r.d.migration.version, /^\d{4}-\d\d-\d\dT.*Z$/.test(r.d.migration.started_at)],
    ["0003_fill_filler.sql", 3, true]);
  say(`  response: ${r.text.slice(0, 300)}`);
  r = await d.get("/rooms/slowroom/schema");
  slowId = r.d?.object_id;
  check("interrupted: /schema answers (200): stored version 2, nothing applied or written by the run",
    () => [r.code, r.d.stored_version, r.d.last_run.error.kind, r.d.last_run.applied.length, r.d.last_run.rows_written],
    [200, 2, "interrupted", 0, 0]);
  say("30 parallel GETs at the interrupted room");
  const rs = await Promise.all(Array.from({ length: 30 },
    () => http(d.port, "GET", "/rooms/slowroom/messages", undefined, 30000)));
  check("interrupted: 30 parallel requests all answer 503", rs.filter((x) => x.code === 503).length, 30);
  check("interrupted: ... each naming 0003_fill_filler.sql (kind interrupted)",
    rs.filter((x) => x.d?.migration?.kind === "interrupted" && x.d.migration.file === "0003_fill_filler.sql").length, 30);
  r = await d.get("/rooms/slowroom/export");
  check("interrupted: /export answers: the message kept, no filler table, tracking rows 1,2",
    () => [r.code, r.d.messages.rows.map((x) => x.author), "filler" in r.d, r.d.migrations.rows.map((x) => x.version)],
    [200, ["zoe"], false, [1, 2]]);
  check("interrupted: the failure record: version 3, 1 attempt, the interrupted error",
    () => r.d.migrations_failure.rows.map((x) => [x.version, x.attempts, interruptedText.test(x.error)]), [[3, 1, true]]);
  check("interrupted: one log line for the room since the restart: failed, interrupted, nothing applied",
    (await dsLog(d.log, slowId)).map((l) => [l.outcome, l.error?.kind, l.error?.file, l.applied?.length]),
    [["failed", "interrupted", "0003_fill_filler.sql", 0]]);
});

scenario("interrupted: restarted within retry_after, the record defers the same code", async () => {
  await stopWrangler();
  await d.deploy("slow", stateSlow);
  let r = await d.get("/rooms/slowroom/messages");
  check("interrupted (restart within retry_after): 503 deferred, naming the interrupted file",
    () => [r.code, r.d.migration.kind, interruptedText.test(r.d.migration.message)], [503, "deferred", true]);
  r = await d.get("/rooms/slowroom/export");
  check("interrupted (restart within retry_after): nothing re-run (no filler table, 1 attempt)",
    () => ["filler" in r.d, r.d.migrations_failure.rows[0].attempts], [false, 1]);
  await stopWrangler();
});
