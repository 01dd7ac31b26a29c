// harness.mjs — what the end-to-end suites (worker-chat.test.mjs,
// interrupted.test.mjs, queries.test.mjs, drizzle-chat.test.mjs) share: counted checks, `wrangler dev --local` in a
// process group of its own, requests, and the library's JSON log lines.
//
// The suites run under `node --test` (Node 22 from scripts/wasm-env.sh), one
// `scenario` per behaviour, in file order: each scenario builds on the state
// the previous ones left in the persisted Durable Objects, as a redeploy does.
//
// Checks are soft, as the bash suites' were: a failed check prints a FAIL line
// and the scenario goes on, so one broken behaviour does not hide the next;
// the scenario (the node test) fails at its end when any of its checks did.
// The counts are the run's `NAME: N passed, M failed` line, which the entry
// script (scripts/e2e.sh, scripts/e2e-drizzle.sh) prints last from the
// results file this module writes after the last scenario.
//
// Environment (set by the entry script):
//   E2E_WORK      the work dir (builds, state dirs)
//   E2E_LOGS      the log dir (deploy-*.log: one per wrangler start)
//   E2E_RESULTS   where the counts go ({"passed": N, "failed": M}, JSON)
//   E2E_PGID_FILE where the running wrangler's process group id is written,
//                 so the entry script can kill it should this process die
//   DS_WRANGLER   the wrangler wrapper (scripts/wasm-env.sh)

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { after, test } from "node:test";

/** An environment variable the entry script must have set. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite through its entry script`);
  return value;
}

// ---- counted checks --------------------------------------------------------------

const counts = { passed: 0, failed: 0 };
let scenarioFailures = null; // the running scenario's failed check names
let aborted = null; // why the run cannot go on (a deploy that never got ready)

/** A progress line, as the bash suites printed them. */
export function say(text) {
  console.log(`[${process.env.E2E_NAME || "e2e"}] ${text}`);
}

/** One passed check. */
export function pass(name) {
  counts.passed += 1;
  console.log(`PASS  ${name}`);
}

/** One failed check; the running scenario fails at its end. */
export function fail(name, detail) {
  counts.failed += 1;
  console.log(`FAIL  ${name}${detail ? `  (${detail})` : ""}`);
  if (scenarioFailures) scenarioFailures.push(name);
}

// JSON, so that "2" and 2 read differently in a FAIL line
const show = (v) => (v === undefined ? "undefined" : JSON.stringify(v));

/**
 * One check: passes when `actual` deep-equals `expected`. `actual` may be a
 * function, so that reading a field of an unexpected answer (a 503 where a
 * 200 was due) fails this check instead of ending the scenario.
 */
export function check(name, actual, expected) {
  let value;
  try {
    value = typeof actual === "function" ? actual() : actual;
  } catch (e) {
    fail(name, `expected [${show(expected)}], got an error: ${e.message}`);
    return false;
  }
  if (isDeepStrictEqual(value, expected)) {
    pass(name);
    return true;
  }
  fail(name, `expected [${show(expected)}], got [${show(value)}]`);
  return false;
}

/**
 * One scenario: a node test whose checks are counted. An exception (a
 * request that cannot be made, a deploy that never gets ready) is one more
 * failed check; a deploy that never got ready skips the scenarios after it,
 * since they stand on its state.
 */
export function scenario(name, fn) {
  test(name, async (t) => {
    if (aborted) {
      t.skip(`not run: ${aborted}`);
      return;
    }
    scenarioFailures = [];
    try {
      await fn(t);
    } catch (e) {
      fail(`${name}: ${e.message}`);
      if (e instanceof Abort) aborted = e.message;
    }
    const failures = scenarioFailures;
    scenarioFailures = null;
    if (failures.length > 0) {
      throw new Error(`${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
    }
  });
}

/** A setup step that cannot go on: the scenarios after it are skipped. */
export class Abort extends Error {}

after(async () => {
  await stopWrangler();
  fs.writeFileSync(env("E2E_RESULTS"), JSON.stringify(counts));
});

// ---- wrangler dev ------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (the kernel's pick). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let running = null; // { child, pgid, exited }

function killGroup(signal) {
  if (!running) return;
  try {
    process.kill(-running.pgid, signal);
  } catch {
    // the group is gone already
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// workerd must not outlive the suite, whatever ends it: `exit` handlers run
// synchronously, so SIGKILL (a SIGTERM could not be waited for there). Under
// `node --test` the runner's own SIGINT/SIGTERM handler may exit first; the
// `exit` handler still runs then.
process.on("exit", () => killGroup("SIGKILL"));
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
]) {
  process.on(signal, () => {
    say(`${signal}: stopping wrangler`);
    killGroup("SIGKILL");
    process.exit(code);
  });
}

/** SIGTERM to wrangler's process group (node, esbuild, workerd), SIGKILL after 10 s. */
export async function stopWrangler() {
  if (!running) return;
  const { pgid, exited } = running;
  killGroup("SIGTERM");
  for (let i = 0; i < 100 && groupAlive(pgid); i++) await sleep(100);
  if (groupAlive(pgid)) {
    say(`wrangler (pgid ${pgid}) still running after 10 s: SIGKILL`);
    killGroup("SIGKILL");
  }
  await exited;
  running = null;
  fs.rmSync(env("E2E_PGID_FILE"), { force: true });
}

/**
 * SIGKILL to wrangler's process group, workerd included, as a crash or an
 * eviction would end it: no shutdown, whatever the running request was doing
 * is cut off (what the interrupted-run scenarios need). Returns once wrangler
 * has exited; the next `startWrangler` may reuse the same state dir.
 */
export async function killWrangler() {
  if (!running) return;
  const { pgid, exited } = running;
  say(`SIGKILL wrangler and workerd (pgid ${pgid})`);
  killGroup("SIGKILL");
  await exited;
  // the group's other members (workerd) die with the signal, but the kernel
  // may take a moment to remove them
  for (let i = 0; i < 50 && groupAlive(pgid); i++) await sleep(100);
  running = null;
  fs.rmSync(env("E2E_PGID_FILE"), { force: true });
}

/**
 * Starts `wrangler dev --local` in `dir` over the state dir `persist` on
 * 127.0.0.1:`port` (a fresh inspector port too), output to `log`, under
 * setsid (`detached`) so that stopping it reaches workerd. Ready when GET /
 * starts with `readyPrefix` (up to 60 s); returns that answer (without its
 * trailing newline). Throws an
 * `Abort` when wrangler dies or never gets ready.
 */
export async function startWrangler({ dir, persist, port, log, label, readyPrefix }) {
  await stopWrangler();
  const inspector = await freePort();
  const out = fs.openSync(log, "w");
  const started = Date.now();
  const child = spawn(
    env("DS_WRANGLER"),
    [
      "dev", "--local", "--ip", "127.0.0.1", "--port", String(port),
      "--inspector-ip", "127.0.0.1", "--inspector-port", String(inspector),
      "--persist-to", persist, "--show-interactive-dev-session=false",
    ],
    {
      cwd: dir,
      detached: true,
      stdio: ["ignore", out, out],
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        WRANGLER_SEND_ERROR_REPORTS: "false",
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        WRANGLER_LOG_PATH: path.join(env("E2E_LOGS"), "wrangler-debug"),
      },
    },
  );
  fs.closeSync(out);
  let dead = false;
  const exited = new Promise((resolve) => child.on("exit", () => { dead = true; resolve(); }));
  child.on("error", () => { dead = true; });
  if (!child.pid) throw new Abort(`${label}: start wrangler (no process)`);
  running = { child, pgid: child.pid, exited };
  fs.writeFileSync(env("E2E_PGID_FILE"), String(child.pid));
  for (let i = 0; i < 300 && !dead; i++) {
    const r = await http(port, "GET", "/", undefined, 2000);
    if (r.text.startsWith(readyPrefix)) {
      say(`${label}: ready in ${Math.round((Date.now() - started) / 1000)} s`);
      // as the shell's $(...) read it: the banner without its newline
      return r.text.replace(/\n+$/, "");
    }
    await sleep(200);
  }
  console.log(fs.readFileSync(log, "utf8").split("\n").slice(-30).join("\n"));
  throw new Abort(`${label}: wrangler ready (see ${log})`);
}

// ---- requests ------------------------------------------------------------------------

/**
 * A request to 127.0.0.1:`port`: `{ code, text, d }`, `code` 0 when nothing
 * answered, `d` the parsed JSON body (undefined when it is none). A `json`
 * body is sent as application/json.
 */
export async function http(port, method, urlPath, json, timeoutMs = 20000) {
  const init = { method, signal: AbortSignal.timeout(timeoutMs) };
  if (json !== undefined) {
    init.headers = { "content-type": "application/json" };
    init.body = typeof json === "string" ? json : JSON.stringify(json);
  }
  let code = 0;
  let text = "";
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, init);
    code = res.status;
    text = await res.text();
  } catch {
    // no answer: code 0
  }
  let d;
  try {
    d = JSON.parse(text);
  } catch {
    d = undefined;
  }
  return { code, text, d };
}

// ---- the library's JSON log lines -----------------------------------------------------

// One JSON object per line starting with {"event":"durable-schema" (wrangler
// prefixes console.error output with a colored "✘ [ERROR]").
function readDsLog(file, object, outcome) {
  const lines = [];
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const s = raw.replace(/\x1b\[[0-9;]*m/g, "");
    const i = s.indexOf('{"event":"durable-schema"');
    if (i < 0) continue;
    let l;
    try {
      l = JSON.parse(s.slice(i, s.lastIndexOf("}") + 1));
    } catch {
      l = { unparsable: s.slice(i) };
    }
    if (object !== "*" && l.object !== undefined && l.object !== object) continue;
    if (outcome && l.outcome !== outcome) continue;
    lines.push(l);
  }
  return lines;
}

/**
 * The durable-schema lines of `log` for `object` ("*": every object), with
 * `outcome` when given. Waits up to 5 s for at least one (workerd's output
 * reaches the file after the answer); `{ none: true }` when none is expected:
 * gives the output half a second, reads once.
 */
export async function dsLog(log, object, outcome, { none = false } = {}) {
  if (none) {
    await sleep(500);
    return readDsLog(log, object, outcome);
  }
  let lines = [];
  for (let i = 0; i < 25; i++) {
    lines = readDsLog(log, object, outcome);
    if (lines.length > 0) break;
    await sleep(200);
  }
  return lines;
}

/** `log` mentions `text` (waits up to 5 s). */
export async function logHas(log, text) {
  for (let i = 0; i < 25; i++) {
    if (fs.readFileSync(log, "utf8").includes(text)) return true;
    await sleep(200);
  }
  return false;
}

/**
 * The last two checks of a run, over every deploy-*.log in `logs`: no panic
 * or wasm trap (a panic never answers its request and traps the instance:
 * the shim logs "Reinitializing Wasm application"), no unhandled rejection
 * or uncaught exception (workerd logs "Uncaught (in promise) ...").
 */
export function checkDeployLogs(logs) {
  const files = fs.readdirSync(logs).filter((f) => /^deploy-.*\.log$/.test(f)).sort();
  const matching = (re) => files.filter((f) => re.test(fs.readFileSync(path.join(logs, f), "utf8"))).join(" ");
  check(`no Rust panic or wasm trap in any deploy's log (${files.length} logs)`,
    matching(/Rust panic|panicked|RuntimeError: unreachable|Reinitializing Wasm/i), "");
  check("no unhandled promise rejection or uncaught exception in any deploy's log",
    matching(/unhandled|uncaught/i), "");
}
