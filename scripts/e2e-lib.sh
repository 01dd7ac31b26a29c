# shellcheck shell=bash
# e2e-lib.sh — the shell helpers of scripts/e2e.sh, scripts/e2e-drizzle.sh and
# scripts/readme-quickstart.sh: PASS/FAIL bookkeeping, the toolchain, the
# scenario suites under node --test (the e2e runs), and for the quickstart
# wrangler dev under its own process group and requests. Sourced, not run:
#
#   source "$here/e2e-lib.sh"
#
# Before sourcing, the script sets (the lib checks they are there):
#   E2E_NAME  the run's name: "[E2E_NAME] ..." progress lines and the last line
#             `E2E_NAME: N passed, M failed`
#   root      the repository root
#   work      the work dir (it exists); the lib writes response.body,
#             results.json and wrangler.pgid there
#   logs      the log dir (named in the last progress line; deploy logs are
#             $logs/deploy-*.log)
# Sourcing sets PASSED=0, FAILED=0, t_start=$SECONDS and PORT, LOG, PGID, WR_PID
# to "" (no wrangler yet). Nothing else happens at source time: no trap, no file.
#
# Bookkeeping
#   say TEXT...             "[E2E_NAME] TEXT"
#   pass NAME               "PASS  NAME"; PASSED += 1
#   fail NAME [DETAIL]      "FAIL  NAME  (DETAIL)"; FAILED += 1
#   check NAME ACTUAL EXPECTED
#                           pass when ACTUAL == EXPECTED, else fail with both
#   finish                  stops wrangler, prints the wall time and the last line,
#                           exits 1 when FAILED > 0, else 0
#   abort NAME [DETAIL]     a setup step that cannot go on: one FAIL, then finish
# Toolchain
#   toolchain LOCKFILE      scripts/wasm-env.sh for LOCKFILE's wasm-bindgen, its env
#                           file sourced (DS_NODE, DS_WRANGLER, ... exported); aborts
#                           when that fails or curl is missing
# Files
#   sync_file SRC DST       copies only when the content differs (an unchanged file
#                           keeps its mtime, so cargo does not rebuild)
# The e2e scenarios (scripts/e2e/, Node 22's built-in test runner; after toolchain)
#   harness_selftest        scripts/e2e/harness.test.mjs (the harness on a fake
#                           wrangler, seconds); aborts when it fails
#   node_suite FILE [NAME=VALUE...]
#                           runs FILE's scenarios with `node --test` (the harness
#                           starts, stops and kills wrangler/workerd itself) and
#                           adds its counted checks to PASSED/FAILED; installs the
#                           traps that stop a wrangler it left behind
# wrangler dev for the quickstart (one at a time; its process group in PGID, the
# subshell in WR_PID; needing DS_NODE, so after toolchain)
#   free_port               prints a free TCP port on 127.0.0.1
#   wrangler_traps          the traps: EXIT stops wrangler; INT and TERM say so and
#                           exit 130 / 143 (through EXIT). Installed where the script
#                           starts deploying, so an interrupted build dies as before
#   stop_wrangler           SIGTERM to the process group, SIGKILL after 10 s; reaps
#                           WR_PID; PGID and WR_PID back to ""
#   wrangler_up DIR PERSIST LABEL READY_PREFIX
#                           starts `wrangler dev --local` in DIR (setsid, pgid file
#                           $work/wrangler.pgid) on 127.0.0.1:$PORT with a fresh
#                           inspector port over state dir PERSIST, output to $LOG;
#                           polls GET / (up to 60 s) until the answer starts with
#                           READY_PREFIX, says "deploy $DEPLOY: ready in N s" and
#                           sets BANNER to that answer. Needs PORT, LOG and DEPLOY
#                           set (and the old wrangler stopped). When wrangler dies or
#                           never gets ready: the log's tail, then
#                           abort "LABEL: start wrangler" / "LABEL: wrangler ready"
#   http METHOD PATH [JSON] a request to 127.0.0.1:$PORT; sets CODE (000 when no
#                           answer) and BODY
#   check_deploy_logs       two checks over $logs/deploy-*.log: no panic or wasm
#                           trap, no unhandled rejection or uncaught exception
#                           (the e2e suites' own: scripts/e2e/harness.mjs)

: "${E2E_NAME:?e2e-lib.sh: set E2E_NAME before sourcing}" \
  "${root:?e2e-lib.sh: set root before sourcing}" \
  "${work:?e2e-lib.sh: set work before sourcing}" \
  "${logs:?e2e-lib.sh: set logs before sourcing}"

t_start=$SECONDS
PASSED=0
FAILED=0
PORT=""
LOG=""
PGID=""
WR_PID=""

# ---- bookkeeping --------------------------------------------------------------------
say() { printf '[%s] %s\n' "$E2E_NAME" "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s%s\n' "$1" "${2:+  ($2)}"; }
finish() {
  stop_wrangler
  say "total wall time: $((SECONDS - t_start)) s; logs in $logs"
  printf '%s: %d passed, %d failed\n' "$E2E_NAME" "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
  exit
}
# A setup step that cannot go on (toolchain, build, wrangler start): one FAIL, stop.
abort() { fail "$1" "${2:-}"; finish; }

# check NAME ACTUAL EXPECTED
check() {
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected [$3], got [$2]"; fi
}

# ---- toolchain ------------------------------------------------------------------------
# toolchain LOCKFILE: the wasm/workerd toolchain for LOCKFILE's wasm-bindgen.
toolchain() {
  say "toolchain (scripts/wasm-env.sh)"
  local env_file
  env_file="$("$root/scripts/wasm-env.sh" "$1")" || abort "toolchain install" "scripts/wasm-env.sh failed"
  # shellcheck disable=SC1090
  source "$env_file"
  command -v curl >/dev/null || abort "toolchain" "curl not found"
}

# sync_file SRC DST: copy only when the content differs, so an unchanged file keeps
# its mtime (no rebuild) and a changed one gets a new mtime (cargo rebuilds).
sync_file() {
  cmp -s "$1" "$2" 2>/dev/null || { mkdir -p "$(dirname "$2")" && cp "$1" "$2"; }
}

# ---- wrangler dev ----------------------------------------------------------------------
free_port() {
  "$DS_NODE" -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

stop_wrangler() {
  if [[ -n "${PGID:-}" ]]; then
    kill -TERM -- "-$PGID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
      pgrep -g "$PGID" >/dev/null 2>&1 || break
      sleep 0.1
    done
    if pgrep -g "$PGID" >/dev/null 2>&1; then
      say "wrangler (pgid $PGID) still running after 10 s: SIGKILL"
      kill -KILL -- "-$PGID" 2>/dev/null || true
    fi
    PGID=""
  fi
  if [[ -n "${WR_PID:-}" ]]; then
    wait "$WR_PID" 2>/dev/null || true
    WR_PID=""
  fi
}

wrangler_traps() {
  trap 'stop_wrangler' EXIT
  trap 'say "interrupted"; exit 130' INT
  trap 'say "terminated"; exit 143' TERM
}

# wrangler_up DIR PERSIST LABEL READY_PREFIX: wrangler dev in DIR over state dir
# PERSIST on 127.0.0.1:$PORT, output to $LOG, in a process group of its own
# (setsid; its id through $work/wrangler.pgid, so stop_wrangler gets workerd
# too); ready when GET / starts with READY_PREFIX (up to 60 s): BANNER = GET /.
wrangler_up() {
  local dir="$1" persist="$2" label="$3" prefix="$4"
  local inspector; inspector="$(free_port)"
  local pgid_file="$work/wrangler.pgid"
  rm -f "$pgid_file"
  local t=$SECONDS
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner bash
  (
    cd "$dir" || exit 1
    exec env WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false \
      CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_LOG_PATH="$logs/wrangler-debug" \
      PGID_FILE="$pgid_file" \
      setsid bash -c 'echo $$ >"$PGID_FILE"; exec "$@"' _ \
      "$DS_WRANGLER" dev --local --ip 127.0.0.1 --port "$PORT" \
      --inspector-ip 127.0.0.1 --inspector-port "$inspector" \
      --persist-to "$persist" --show-interactive-dev-session=false
  ) >"$LOG" 2>&1 </dev/null &
  WR_PID=$!
  local i
  for i in $(seq 1 50); do
    [[ -s "$pgid_file" ]] && break
    sleep 0.1
  done
  PGID="$(cat "$pgid_file" 2>/dev/null || true)"
  [[ -n "$PGID" ]] || abort "$label: start wrangler" "no process group recorded"
  for i in $(seq 1 300); do
    BANNER="$(curl -s --max-time 2 "http://127.0.0.1:$PORT/" 2>/dev/null)"
    if [[ "$BANNER" == "$prefix"* ]]; then
      say "deploy $DEPLOY: ready in $((SECONDS - t)) s"
      return 0
    fi
    if ! kill -0 "$WR_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  tail -n 30 "$LOG"
  abort "$label: wrangler ready" "see $LOG"
}

# http METHOD PATH [JSON]: sets CODE (000 when no answer) and BODY.
http() {
  local out="$work/response.body"
  local args=(-s -o "$out" -w '%{http_code}' --max-time 20 -X "$1")
  if [[ $# -ge 3 ]]; then args+=(-H 'content-type: application/json' --data "$3"); fi
  rm -f "$out"
  CODE="$(curl "${args[@]}" "http://127.0.0.1:$PORT$2" 2>/dev/null)" || true
  [[ -n "$CODE" ]] || CODE="000"
  BODY="$(cat "$out" 2>/dev/null || true)"
}

# ---- the scenarios under node --test ----------------------------------------------------
# node_suite FILE [NAME=VALUE...]: runs the scenarios of FILE (scripts/e2e/*.test.mjs,
# see scripts/e2e/harness.mjs) with `node --test` and the extra environment, and
# adds the checks it counted to PASSED and FAILED. --experimental-test-isolation=none
# runs the file in the runner's own process: a signal forwarded to it reaches the
# suite's handler, which kills workerd. Should node die with a wrangler up, the
# process group it recorded in $work/wrangler.pgid is stopped here.
SUITE_PID=""
SUITE_PGID_FILE=""
# harness_selftest: scripts/e2e/harness.test.mjs (the harness on a fake wrangler,
# a few seconds), before the builds; a failure aborts the run.
harness_selftest() {
  "$DS_NODE" --test "$root/scripts/e2e/harness.test.mjs" >"$logs/harness-test.log" 2>&1 \
    || { tail -n 40 "$logs/harness-test.log"; abort "harness self-test (scripts/e2e/harness.test.mjs)" "see $logs/harness-test.log"; }
  say "harness self-test: ok"
}
suite_cleanup() {
  if [[ -n "$SUITE_PID" ]]; then
    kill -TERM "$SUITE_PID" 2>/dev/null || true
    wait "$SUITE_PID" 2>/dev/null || true
    SUITE_PID=""
  fi
  if [[ -n "$SUITE_PGID_FILE" && -s "$SUITE_PGID_FILE" ]]; then
    PGID="$(cat "$SUITE_PGID_FILE")"
    rm -f "$SUITE_PGID_FILE"
    # a suite ended by a signal kills the group on its way out, but keeps the file
    if pgrep -g "$PGID" >/dev/null 2>&1; then
      say "stopping what is left of wrangler's process group $PGID"
      stop_wrangler
    else
      PGID=""
    fi
  fi
}
node_suite() {
  local file="$1"; shift
  local results="$work/results.json" status=0 counts
  SUITE_PGID_FILE="$work/wrangler.pgid"
  rm -f "$results" "$SUITE_PGID_FILE"
  trap 'suite_cleanup' EXIT
  trap 'say "interrupted"; exit 130' INT
  trap 'say "terminated"; exit 143' TERM
  say "scenarios: node --test scripts/e2e/$(basename "$file")"
  # in the background, so that a signal to this script runs its trap at once
  env "$@" E2E_NAME="$E2E_NAME" E2E_WORK="$work" E2E_LOGS="$logs" E2E_RESULTS="$results" \
    E2E_PGID_FILE="$SUITE_PGID_FILE" "$DS_NODE" --disable-warning=ExperimentalWarning \
    --test --experimental-test-isolation=none --test-reporter=spec "$file" </dev/null &
  SUITE_PID=$!
  wait "$SUITE_PID" || status=$?
  SUITE_PID=""
  suite_cleanup
  if [[ ! -s "$results" ]]; then
    fail "scenarios of $(basename "$file")" "node --test exited with status $status and counted nothing"
    return
  fi
  counts="$("$DS_NODE" -p 'const r = require(process.argv[1]); r.passed + " " + r.failed' "$results")"
  PASSED=$((PASSED + ${counts% *}))
  FAILED=$((FAILED + ${counts#* }))
  # a test that failed outside any check (the harness itself) is one more failure
  if [[ $status -ne 0 && ${counts#* } -eq 0 ]]; then
    fail "scenarios of $(basename "$file")" "node --test exited with status $status"
  fi
}

# ---- never a panic, never an unhandled rejection -------------------------------------
# A panic (panic = "abort") never answers its request and traps the wasm
# instance (the shim then logs "Reinitializing Wasm application"); a rejected
# promise nobody awaits, or an exception thrown out of an event, is a bug too
# (workerd logs "Uncaught (in promise) ...", "Uncaught ...").
check_deploy_logs() {
  local panicked unhandled
  panicked="$(grep -liE 'Rust panic|panicked|RuntimeError: unreachable|Reinitializing Wasm' "$logs"/deploy-*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')"
  # shellcheck disable=SC2012  # counts the deploy logs, names of our own making
  check "no Rust panic or wasm trap in any deploy's log ($(ls "$logs"/deploy-*.log | wc -l) logs)" "$panicked" ""
  unhandled="$(grep -liE 'unhandled|uncaught' "$logs"/deploy-*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')"
  check "no unhandled promise rejection or uncaught exception in any deploy's log" "$unhandled" ""
}
