// chat.mjs — deploying the worker-chat builds of scripts/e2e.sh, for the
// suites that stand beside worker-chat.test.mjs (interrupted.test.mjs,
// queries.test.mjs): each runs in a process of its own over a state dir of
// its own, and numbers its deploys after the others' in the deploy table, so
// that the check names and the logs (deploy-N-BUILD.log) stay distinct
// across the run.

import path from "node:path";
import { check, env, freePort, http, say, startWrangler } from "./harness.mjs";

/** Each build's CURRENT_SCHEMA_VERSION: the migrations scripts/e2e.sh put in it. */
export const BUILD_VERSION = { v2: 2, v3: 3, bad: 4, fixed: 4, "v2-strict": 2, edited: 2, fk: 4, slow: 3, batch: 5 };

/**
 * A deployer whose first deploy is number `first`. `deploy(name, persist)`
 * (re)starts wrangler dev on build `name` over the state dir `persist` and
 * checks that it serves that build; `port` and `log` are the running
 * deploy's; `get`, `post` are requests to it.
 */
export function deployer(first) {
  const work = env("E2E_WORK");
  const logs = env("E2E_LOGS");
  const d = {
    n: first - 1,
    port: undefined,
    log: undefined,
    async deploy(name, persist) {
      d.n += 1;
      d.port = await freePort();
      d.log = path.join(logs, `deploy-${d.n}-${name}.log`);
      say(`deploy ${d.n}: build ${name} on 127.0.0.1:${d.port} (state ${persist})`);
      const banner = await startWrangler({
        dir: path.join(work, "crates", name), persist, port: d.port, log: d.log,
        label: `deploy ${d.n} (${name})`, readyPrefix: "worker-chat ok",
      });
      // guards against serving a stale build: GET / reports the code's version
      check(`deploy ${d.n} serves build ${name} (code version ${BUILD_VERSION[name]})`,
        banner, `worker-chat ok: schema version ${BUILD_VERSION[name]}`);
    },
    get: (p, timeoutMs) => http(d.port, "GET", p, undefined, timeoutMs),
    post: (p, json) => http(d.port, "POST", p, json),
  };
  return d;
}
