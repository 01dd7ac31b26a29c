// harness.test.mjs — what the e2e suites rely on harness.mjs for, proved on
// a fake wrangler (fixtures/fake-wrangler.mjs) in a few seconds: the counts,
// soft checks, workerd killed at the end whatever the outcome, also when the
// suite is interrupted, a wrangler SIGKILLed mid-run (killWrangler) and
// started again, and a deploy that cannot start skipping the rest.
// scripts/e2e.sh runs it before its builds:
//   node --test scripts/e2e/harness.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

const here = path.dirname(new URL(import.meta.url).pathname);

// A killed process nobody reaps yet (a container's init may not) is a zombie:
// dead, though kill(pid, 0) still finds it.
function alive(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] !== "Z";
  } catch {
    return false;
  }
}

/** Runs fixtures/suite.mjs like the entry scripts run a suite; resolves with its outcome. */
function runFixture(extraEnv = {}, onStdout = () => {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-harness-"));
  const files = {
    results: path.join(dir, "results.json"),
    pgid: path.join(dir, "wrangler.pgid"),
    childPid: path.join(dir, "child.pid"),
  };
  // without the outer runner's NODE_TEST_CONTEXT, which would make the inner
  // one speak the runner's binary protocol instead of TAP
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  const child = spawn(process.execPath,
    ["--test", "--experimental-test-isolation=none", "--test-reporter=tap", path.join(here, "fixtures", "suite.mjs")], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...outer,
        E2E_NAME: "fixture", E2E_WORK: dir, E2E_LOGS: dir, E2E_RESULTS: files.results, E2E_PGID_FILE: files.pgid,
        DS_WRANGLER: path.join(here, "fixtures", "fake-wrangler.mjs"),
        FAKE_BANNER: "fake ok: 1", FAKE_CHILD_PID_FILE: files.childPid, FIXTURE_LOG: path.join(dir, "deploy.log"),
        ...extraEnv,
      },
    });
  let stdout = "";
  child.stdout.on("data", (b) => {
    stdout += b;
    onStdout(stdout, child);
  });
  child.stderr.on("data", (b) => { stdout += b; });
  // "close", not "exit": the output is all read then
  return new Promise((resolve) => child.on("close", (code, signal) => {
    const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : null);
    resolve({ code, signal, stdout, results: JSON.parse(read(files.results) ?? "null"),
      childPid: Number(read(files.childPid)), pgidFile: read(files.pgid) });
  }));
}

test("failed checks are counted without ending the scenario, and fail the run", async () => {
  const run = await runFixture();
  assert.deepEqual(run.results, { passed: 4, failed: 2 }, run.stdout);
  assert.match(run.stdout, /^FAIL  a field read from a missing answer fails only this check  \(expected \[200\], got an error: /m);
  assert.match(run.stdout, /^FAIL  different values fail  \(expected \[2\], got \["2"\]\)$/m);
  assert.match(run.stdout, /^PASS  the scenario goes on after a failed check$/m);
  assert.equal(run.code, 1, "node --test exits 1 when a scenario failed");
});

test("workerd is stopped after the last scenario, also when checks failed", async () => {
  const run = await runFixture();
  assert.ok(run.childPid > 0, run.stdout);
  assert.equal(alive(run.childPid), false, "the fake workerd outlived the suite");
  assert.equal(run.pgidFile, null, "the process group file is removed once the group is stopped");
});

test("an interrupted suite kills workerd and fails", async () => {
  const run = await runFixture({ FIXTURE_WAIT: "1" }, (out, child) => {
    if (out.includes("FIXTURE READY") && !child.signalled) {
      child.signalled = true;
      child.kill("SIGTERM");
    }
  });
  assert.ok(run.childPid > 0, run.stdout);
  // node's test runner ends the process on SIGTERM itself (status 1); the
  // harness's `exit` handler is what reaches workerd then
  assert.notEqual(run.code, 0, run.stdout);
  // SIGKILL to the group is synchronous, but the kernel may take a moment to reap
  for (let i = 0; i < 50 && alive(run.childPid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(run.childPid), false, "the fake workerd outlived the interrupted suite");
});

test("a wrangler that cannot start is one failed check, and the scenarios after it are skipped", async () => {
  const run = await runFixture({ FAKE_DIE: "1" });
  // the first scenario's 2 + 2, then the failed start; the last scenario skipped
  assert.deepEqual(run.results, { passed: 2, failed: 3 }, run.stdout);
  assert.match(run.stdout, /^FAIL  wrangler is started and left running: fixture: wrangler ready/m);
  assert.match(run.stdout, /# SKIP not run: fixture: wrangler ready/);
});

test("killWrangler SIGKILLs workerd with wrangler, and a wrangler starts again after it", async () => {
  const run = await runFixture({ FIXTURE_KILL: "1" });
  // the first scenario's 2 + 2, then the banner, the three kill checks, the last scenario
  assert.deepEqual(run.results, { passed: 7, failed: 2 }, run.stdout);
  assert.match(run.stdout, /^PASS  killWrangler: the fake workerd is gone$/m);
  assert.match(run.stdout, /^PASS  killWrangler: a wrangler starts again afterwards$/m);
  // the second wrangler's workerd is stopped at the end like any other
  assert.equal(alive(run.childPid), false, "the second fake workerd outlived the suite");
  assert.equal(run.pgidFile, null);
});
