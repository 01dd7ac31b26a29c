// batch.test.mjs — a batched backfill that needs many budgets, in real
// workerd (issue 21, item 2): scripts/e2e.sh builds `batch` (v2 +
// variants/batch: 0003 fills 500,000 rows into a room that holds a message,
// 0004 backfills them with `-- durable-schema: batch`, 500 rows a
// repetition, 0005 backfills another column with a range batch, `--
// durable-schema: batch over filler limit 1000`, the executor binding each
// slice's rowids to `:from` and `:to`; `budget_ms = 100`) and runs this file
// with `node --test` over a state dir of its own ($E2E_WORK/state-batch,
// fresh each run).
//
// The constructor's run ends its blockConcurrencyWhile slice once the budget
// is spent between two repetitions and opens the next slice itself: the
// backfill completes without a new request, every request meanwhile is
// answered (served, or 503 in_progress), and a kill of wrangler and workerd
// in the middle loses no completed repetition (each is synced).
//
//   deploy  build  state  scenario
//   24      v2     batch  three rooms with a message each
//   25      batch  batch  quiet: one request, then none: the backfill completes
//                         in the background; busy: requests all along, each
//                         200 or 503 in_progress; kill: SIGKILL mid-backfill
//   26      batch  batch  restart: the killed room resumes from its committed
//                         repetitions (none lost, not interrupted) and completes;
//                         range kill: a room SIGKILLed in 0005's range batch
//   27      batch  batch  range restart: it resumes from its cursor (no committed
//                         slice lost or run twice) and completes
//
// The deploys are numbered after queries.test.mjs's 23. Environment:
// harness.mjs's.

import path from "node:path";
import { deployer } from "./chat.mjs";
import { check, dsLog, env, fail, killWrangler, pass, say, scenario, stopWrangler } from "./harness.mjs";

const stateBatch = path.join(env("E2E_WORK"), "state-batch");
const d = deployer(24);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rooms = ["quietroom", "busyroom", "killroom", "rangeroom"];
const ids = {};

/**
 * The room's export once both backfills are applied: [version 5, 500000 rows
 * and 0 wrong for 0004's batch, the same for 0005's range batch (a slice
 * that did not bind, or ran twice, leaves rows wrong), no record].
 */
async function backfilled(room) {
  const r = await d.get(`/rooms/${room}/export`);
  return [
    r.code,
    r.d?.migrations?.rows.map((x) => x.version).at(-1),
    r.d?.backfill_check?.rows[0]?.total,
    r.d?.backfill_check?.rows[0]?.wrong,
    r.d?.range_check?.rows[0]?.total,
    r.d?.range_check?.rows[0]?.wrong,
    r.d?.migrations_failure?.rows.length,
  ];
}
const BACKFILLED = [200, 5, 500000, 0, 500000, 0, 0];

/** Polls GET messages until 200 (at most `ms`): the codes and kinds seen. */
async function pollUntilServed(room, ms) {
  const seen = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = await d.get(`/rooms/${room}/messages`, 30000);
    seen.push({ code: r.code, kind: r.d?.migration?.kind, file: r.d?.migration?.file, repetitions: r.d?.migration?.repetitions });
    if (r.code === 200) break;
    await sleep(20);
  }
  return seen;
}

scenario("batch: three rooms on v2 hold a message before the backfill", async () => {
  await d.deploy("v2", stateBatch);
  for (const room of rooms) {
    check(`batch (v2): room ${room} holds a message (201)`,
      (await d.post(`/rooms/${room}/messages`, { author: "zoe", body: "before the backfill" })).code, 201);
  }
  await stopWrangler();
});

scenario("batch: one request, then none: the backfill completes in later slices", async () => {
  await d.deploy("batch", stateBatch);
  let r = await d.get("/rooms/quietroom/messages", 30000);
  check("batch (quiet): the first request answers 503, kind in_progress, naming the batch",
    () => [r.code, r.d.migration.kind, r.d.migration.file, r.d.migration.statement, r.d.migration.repetitions > 0],
    [503, "in_progress", "0004_backfill_filler.sql", 2, true]);
  say(`  response: ${r.text.slice(0, 300)}`);
  r = await d.get("/rooms/quietroom/schema");
  ids.quietroom = r.d?.object_id;
  check("batch (quiet): /schema shows 0003 applied and 0004's batch in progress (status)",
    () => [r.code, r.d.stored_version, r.d.pending, r.d.in_progress.kind, r.d.in_progress.rows > 0],
    [200, 3, ["0004_backfill_filler.sql", "0005_range_backfill_filler.sql"], "in_progress", true]);
  // No request for a while: only the object's own slices can finish it.
  const applied5 = (l) => l.outcome === "applied" && (l.applied ?? []).includes(5);
  let done = false;
  for (let i = 0; i < 180 && !done; i++) {
    await sleep(500);
    done = (await dsLog(d.log, ids.quietroom, "applied", { none: true })).some(applied5);
  }
  const lines = await dsLog(d.log, ids.quietroom);
  const slices = lines.filter((l) => l.outcome === "in_progress").length;
  const rangeSlices = lines.filter((l) => l.outcome === "in_progress" && JSON.stringify(l).includes("0005_range_backfill_filler.sql")).length;
  check("batch (quiet): with no request, the slices ran until 0004 and 0005 were applied (log: in_progress lines, then applied)",
    () => [slices >= 3, rangeSlices >= 2, lines.at(-1).outcome, applied5(lines.at(-1))], [true, true, "applied", true]);
  say(`  ${slices} slices logged in_progress (${rangeSlices} in 0005's range batch) before the one that applied 0005`);
  check("batch (quiet): served afterwards (200)", (await d.get("/rooms/quietroom/messages")).code, 200);
  check("batch (quiet): export: version 5, all 500000 rows backfilled by both batches (the range batch's :from and :to bound), no record left",
    await backfilled("quietroom"), BACKFILLED);
});

scenario("batch: requests all along are each served or answered 503 in_progress", async () => {
  const seen = await pollUntilServed("busyroom", 120000);
  const r = await d.get("/rooms/busyroom/schema");
  ids.busyroom = r.d?.object_id;
  const other = seen.filter((s) => !(s.code === 200 || (s.code === 503 && s.kind === "in_progress")));
  check("batch (busy): every answer is 200 or 503 in_progress", other, []);
  const inProgress = seen.filter((s) => s.kind === "in_progress");
  // 0004's batch, then 0005's range batch (its count starts again)
  const forward = (s, i) => i === 0 || s.file > inProgress[i - 1].file
    || (s.file === inProgress[i - 1].file && s.repetitions >= inProgress[i - 1].repetitions);
  check("batch (busy): several in_progress answers, their batch and repetitions never going back, then 200",
    () => [inProgress.length >= 3, inProgress.every(forward), seen.at(-1).code],
    [true, true, 200]);
  say(`  ${seen.length} requests: ${inProgress.length} in_progress, repetitions ${inProgress[0]?.repetitions} .. ${inProgress.at(-1)?.repetitions}`);
  check("batch (busy): export: all rows backfilled", await backfilled("busyroom"), BACKFILLED);
});

let killedAt;

scenario("batch: wrangler and workerd are SIGKILLed in the middle of the backfill", async () => {
  let r = await d.get("/rooms/killroom/messages", 30000);
  check("batch (kill): the first request answers 503 in_progress", () => [r.code, r.d.migration.kind], [503, "in_progress"]);
  // between slices, /schema answers with the last slice's repetitions,
  // all of them synced
  for (let i = 0; i < 200; i++) {
    r = await d.get("/rooms/killroom/schema");
    killedAt = r.d?.last_run?.error?.repetitions;
    if (killedAt >= 20 || r.d?.stored_version === 4) break;
    await sleep(10);
  }
  ids.killroom = r.d?.object_id;
  if (r.d?.stored_version === 4) {
    fail("batch (kill): killed in the middle of the backfill", "it finished before the kill");
  } else {
    pass(`batch (kill): killed after ${killedAt} committed repetitions`);
  }
  await killWrangler();
});

scenario("batch: after the restart the backfill resumes from its repetitions and completes", async () => {
  await d.deploy("batch", stateBatch);
  let r = await d.get("/rooms/killroom/export");
  const progress = r.d?.migrations_failure?.rows[0];
  check("batch (restart): the first slice resumed with no completed repetition lost (the record's count)",
    () => [progress === undefined || progress.repetitions >= killedAt, r.d.migrations.rows.length >= 2], [true, true]);
  const seen = await pollUntilServed("killroom", 120000);
  check("batch (restart): answers 200 or 503 in_progress (never interrupted) until served",
    () => [seen.every((s) => s.code === 200 || s.kind === "in_progress"), seen.at(-1).code], [true, 200]);
  check("batch (restart): export: all rows backfilled", await backfilled("killroom"), BACKFILLED);
  const lines = await dsLog(d.log, ids.killroom);
  check("batch (restart): the log since the restart: in_progress slices, then applied, nothing failed",
    () => [lines.some((l) => l.outcome === "failed"), lines.at(-1).outcome], [false, "applied"]);
});

let rangeKilledAt;

scenario("batch: SIGKILL in the middle of 0005's range batch", async () => {
  let r = await d.get("/rooms/rangeroom/messages", 30000);
  check("batch (range kill): the first request answers 503 in_progress", () => [r.code, r.d.migration.kind], [503, "in_progress"]);
  // 0004 first (its own batch), then 0005's slices: kill once 20 of them
  // committed (each synced before the next)
  for (let i = 0; i < 6000; i++) {
    r = await d.get("/rooms/rangeroom/schema");
    const e = r.d?.last_run?.error;
    if (r.d?.stored_version === 5) break;
    if (r.d?.stored_version === 4 && e?.file === "0005_range_backfill_filler.sql" && e?.repetitions >= 20) {
      rangeKilledAt = e.repetitions;
      break;
    }
    await sleep(10);
  }
  ids.rangeroom = r.d?.object_id;
  if (rangeKilledAt === undefined) {
    fail("batch (range kill): killed in the middle of the range batch", `not seen: ${JSON.stringify(r.d).slice(0, 300)}`);
  } else {
    pass(`batch (range kill): killed after ${rangeKilledAt} committed slices of 0005`);
  }
  await killWrangler();
});

scenario("batch: after the restart the range batch resumes from its cursor and completes", async () => {
  await d.deploy("batch", stateBatch);
  let r = await d.get("/rooms/rangeroom/export");
  const progress = r.d?.migrations_failure?.rows[0];
  check("batch (range restart): the progress kept every committed slice: repetitions, and a cursor at a slice's end",
    () => [progress === undefined || progress.repetitions >= rangeKilledAt,
      progress === undefined || (progress.cursor >= rangeKilledAt * 1000 && progress.cursor % 1000 === 0)],
    [true, true]);
  say(`  progress at the restart: ${JSON.stringify(progress)}`);
  const seen = await pollUntilServed("rangeroom", 120000);
  check("batch (range restart): answers 200 or 503 in_progress (never interrupted) until served",
    () => [seen.every((s) => s.code === 200 || s.kind === "in_progress"), seen.at(-1).code], [true, 200]);
  check("batch (range restart): export: both backfills right, so no slice ran twice (r accumulates)",
    await backfilled("rangeroom"), BACKFILLED);
  await stopWrangler();
});
