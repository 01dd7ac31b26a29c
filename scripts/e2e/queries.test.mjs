// queries.test.mjs — checked queries at run time (issue 19), in real workerd:
// the example's `/rooms/:room/q/*` routes run `durable_schema::query::Query`s
// written as `query!` generates them, through `worker::SqlStorage` (the raw
// cursor, no serde). scripts/e2e.sh runs this file with `node --test` on the
// v2 build over a state dir of its own ($E2E_WORK/state-q, fresh each run).
//
//   deploy  build  state  scenario
//   23      v2     q      fetch_all/fetch_one/no_rows/execute counts, a round
//                         trip of i64/f64/text/blob/NULL, and unsafe_integer
//                         for an integer beyond 2^53 read or bound
//
// The deploy is numbered after worker-chat.test.mjs's and
// interrupted.test.mjs's (chat.mjs); worker-chat.test.mjs's last scenario
// searches its log too. Environment: harness.mjs's.

import path from "node:path";
import { deployer } from "./chat.mjs";
import { check, env, say, scenario, stopWrangler } from "./harness.mjs";

const stateQ = path.join(env("E2E_WORK"), "state-q");
const d = deployer(23);

scenario("queries: fetch_all, fetch_one and execute through worker::SqlStorage", async () => {
  await d.deploy("v2", stateQ);
  const codes = [];
  for (const [author, body] of [["alice", "one"], ["alice", "two"], ["bob", "hi"]]) {
    codes.push((await d.post("/rooms/qroom/messages", { author, body })).code);
  }
  check("query: three messages posted (201 x 3)", codes, [201, 201, 201]);
  let r = await d.get("/rooms/qroom/q/by-author/alice");
  check("query: fetch_all binds a text argument and decodes i64 and text columns",
    () => [r.code, r.d.map((m) => [typeof m.id, m.author, m.body])],
    [200, [["number", "alice", "one"], ["number", "alice", "two"]]]);
  r = await d.get("/rooms/qroom/q/first/bob");
  check("query: fetch_one returns the row", () => [r.code, r.d.author, r.d.body], [200, "bob", "hi"]);
  r = await d.get("/rooms/qroom/q/first/nobody");
  check("query: fetch_one with no row answers kind no_rows", () => [r.code, r.d.kind], [404, "no_rows"]);
  r = await d.post("/rooms/qroom/q/rename/alice/carol");
  check("query: execute counts the rows changed (2, not workerd's rowsWritten with the index)",
    () => [r.code, r.d.changed], [200, 2]);
  r = await d.post("/rooms/qroom/q/rename/alice/carol");
  check("query: execute again changes nothing (0)", () => [r.code, r.d.changed], [200, 0]);
  r = await d.get("/rooms/qroom/q/by-author/carol");
  check("query: the update is visible (carol has 2 messages)", () => [r.code, r.d.length], [200, 2]);
});

scenario("queries: every SQLite storage class round-trips through workerd", async () => {
  const r = await d.get("/rooms/qroom/q/roundtrip");
  check("query: i64 (-(2^53 - 1)), f64, text, blob and NULL round-trip through workerd",
    () => [r.code, r.d.equal, r.d.i, r.d.f, r.d.t === "\u00e9 \u{1F600} \u0000 end", r.d.b, r.d.n],
    [200, true, -9007199254740991, -0.1, true, [0, 159, 255], null]);
});

scenario("queries: an integer beyond 2^53 is refused, read or bound, and the object goes on", async () => {
  let r = await d.get("/rooms/qroom/q/big");
  check("query: SELECT 9007199254740993 into i64 is an unsafe_integer error, not a rounded value",
    () => [r.code, r.d.kind, r.d.column, r.d.error.includes("holds 9007199254740992,")],
    [500, "unsafe_integer", "n", true]);
  say(`  response: ${r.text.slice(0, 300)}`);
  r = await d.get("/rooms/qroom/q/bind-big");
  check("query: binding 2^53 is refused with unsafe_integer before the statement runs",
    () => [r.code, r.d.kind, r.d.error.includes("argument 1 is 9007199254740992")], [500, "unsafe_integer", true]);
  r = await d.get("/rooms/qroom/q/by-author/bob");
  check("query: the object still serves after the errors", () => [r.code, r.d.length], [200, 1]);
  await stopWrangler();
});
