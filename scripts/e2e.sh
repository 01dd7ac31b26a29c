#!/usr/bin/env bash
# e2e.sh — durable-schema end to end, in real workerd (wrangler dev --local).
#
# Builds examples/worker-chat in four variants (its migrations plus files from
# examples/worker-chat/variants/), then deploys them one after another over
# the SAME persisted Durable Object state, driving the Worker with curl on
# 127.0.0.1:
#
#   deploy  build   what it shows
#   1       v2      fresh objects migrate to version 2 (also 30 parallel requests
#                   at a fresh object)
#   2       v2      restart: nothing re-applied, data kept, the up-to-date check
#                   reads one row
#   3       v3      one more migration: existing objects upgrade on their next
#                   request (also 30 parallel requests at an object mid-upgrade)
#   4       bad     a migration failing on the object's data: requests fail, the
#                   error names the file, nothing is half-applied
#   5       v3      the previous good build again: data intact, still version 3
#   6       fixed   the corrected migration applies
#   7       v2      rollback: old code over a newer database keeps serving
#
# Usage: scripts/e2e.sh   installs the toolchain on first use (scripts/wasm-env.sh,
#                          ~14 min on a fresh machine). Then: ~5 min with a cold wasm
#                          target dir, ~1 min when the crate changed (4 x ~8 s
#                          builds + ~30 s of deploys), ~35 s when nothing changed.
# Env:   E2E_WORK   work dir (default examples/worker-chat/target/e2e)
#        E2E_KEEP=1 keep the state dir of the previous run (default: start fresh)
# Output: PASS/FAIL per check, and last a line `e2e: N passed, M failed`
#         (exit status 1 when M > 0). Logs: $E2E_WORK/logs/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
example="$root/examples/worker-chat"
work="${E2E_WORK:-$example/target/e2e}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
state="$work/state"
logs="$work/logs"
class="ChatRoom"

t_start=$SECONDS
PASSED=0
FAILED=0

say() { printf '[e2e] %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s%s\n' "$1" "${2:+  ($2)}"; }
finish() {
  if declare -F stop_wrangler >/dev/null; then stop_wrangler; fi
  say "total wall time: $((SECONDS - t_start)) s; logs in $logs"
  printf 'e2e: %d passed, %d failed\n' "$PASSED" "$FAILED"
  [[ $FAILED -eq 0 ]]
  exit
}
# A setup step that cannot go on (toolchain, build, wrangler start): one FAIL, stop.
abort() { fail "$1" "${2:-}"; finish; }

# ---- toolchain ------------------------------------------------------------------
say "toolchain (scripts/wasm-env.sh)"
env_file="$("$root/scripts/wasm-env.sh" "$example/Cargo.lock")" || abort "toolchain install" "scripts/wasm-env.sh failed"
# shellcheck disable=SC1090
source "$env_file"
command -v curl >/dev/null || abort "toolchain" "curl not found"

# JSON field of $BODY (a JS expression over `d`); prints "" when BODY is no JSON.
jget() {
  printf '%s' "$BODY" | "$DS_NODE" -e '
    let d; try { d = JSON.parse(require("fs").readFileSync(0, "utf8")); } catch { process.exit(0); }
    let v; try { v = eval(process.argv[1]); } catch { process.exit(0); }
    if (v !== undefined) process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));' "$1"
}

# check NAME ACTUAL EXPECTED
check() {
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected [$3], got [$2]"; fi
}

# ---- builds ---------------------------------------------------------------------
# One target dir for every variant: the dependencies (std, worker, durable-schema)
# build once; each variant recompiles only the example crate.
export CARGO_TARGET_DIR="$example/target"
mkdir -p "$logs"
rm -f "$logs"/*.log

# sync_file SRC DST: copy only when the content differs, so an unchanged file keeps
# its mtime (no rebuild) and a changed one gets a new mtime (cargo rebuilds).
sync_file() {
  cmp -s "$1" "$2" 2>/dev/null || { mkdir -p "$(dirname "$2")" && cp "$1" "$2"; }
}

# make_variant NAME VERSION [variant-subdir...]: a copy of the example crate plus
# the extra migration files, built into $work/crates/NAME/build.
# Each copy gets its own package name (worker-chat-e2e-NAME): with one shared
# target dir, same-named copies would share one cargo unit and fingerprint, and
# cargo could hand one variant's stale .wasm to another.
make_variant() {
  local name="$1" version="$2"; shift 2
  local dir="$work/crates/$name"
  local t=$SECONDS f
  mkdir -p "$dir/src" "$dir/migrations" "$dir/.cargo"
  local want=()
  for f in "$example"/migrations/*.sql; do want+=("$f"); done
  local v
  for v in "$@"; do
    for f in "$example/variants/$v"/*.sql; do want+=("$f"); done
  done
  # the migration set: exactly the wanted files
  for f in "$dir"/migrations/*; do
    [[ -e "$f" ]] || continue
    local keep=0 w
    for w in "${want[@]}"; do [[ "$(basename "$w")" == "$(basename "$f")" ]] && keep=1; done
    [[ $keep -eq 1 ]] || rm -f "$f"
  done
  for w in "${want[@]}"; do sync_file "$w" "$dir/migrations/$(basename "$w")"; done
  for f in "$example"/src/*.rs; do sync_file "$f" "$dir/src/$(basename "$f")"; done
  sync_file "$example/build.rs" "$dir/build.rs"
  sync_file "$example/wrangler.toml" "$dir/wrangler.toml"
  sync_file "$example/.cargo/config.toml" "$dir/.cargo/config.toml"
  # same dependency versions as the example (cargo renames the root package in it)
  [[ -f "$dir/Cargo.lock" ]] || cp "$example/Cargo.lock" "$dir/Cargo.lock"
  # own package name; the copy lives elsewhere: absolute path dependencies
  sed -e "s#^name = \"worker-chat\"#name = \"worker-chat-e2e-$name\"#" \
      -e "s#path = \"\\.\\./\\.\\./runtime\"#path = \"$root/runtime\"#" \
      -e "s#path = \"\\.\\./\\.\\.\"#path = \"$root\"#" "$example/Cargo.toml" >"$dir/Cargo.toml.new"
  sync_file "$dir/Cargo.toml.new" "$dir/Cargo.toml"; rm -f "$dir/Cargo.toml.new"
  say "build $name: migrations $(cd "$dir/migrations" && echo *.sql)"
  if ! bash "$root/scripts/build-worker.sh" "$dir" "$dir/build" "$class" >"$logs/build-$name.log" 2>&1; then
    tail -n 30 "$logs/build-$name.log"
    abort "build $name" "see $logs/build-$name.log"
  fi
  BUILD_VERSION[$name]="$version"
  say "build $name: ok ($((SECONDS - t)) s)"
}

declare -A BUILD_VERSION=()
t_build=$SECONDS
make_variant v2 2
make_variant v3 3 v3
make_variant bad 4 v3 bad
make_variant fixed 4 v3 fixed
say "builds done in $((SECONDS - t_build)) s"

# ---- wrangler dev ------------------------------------------------------------------
if [[ -z "${E2E_KEEP:-}" ]]; then rm -rf "$state"; fi
mkdir -p "$state"
PORT=""
LOG=""
PGID=""
WR_PID=""
DEPLOY=0

free_port() {
  "$DS_NODE" -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

stop_wrangler() {
  if [[ -n "$PGID" ]]; then
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
  if [[ -n "$WR_PID" ]]; then
    wait "$WR_PID" 2>/dev/null || true
    WR_PID=""
  fi
}
trap 'stop_wrangler' EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# deploy NAME: (re)start wrangler dev on build NAME over the shared state dir.
deploy() {
  local name="$1"
  local dir="$work/crates/$name"
  stop_wrangler
  DEPLOY=$((DEPLOY + 1))
  PORT="$(free_port)"
  local inspector; inspector="$(free_port)"
  LOG="$logs/deploy-$DEPLOY-$name.log"
  local pgid_file="$work/wrangler.pgid"
  rm -f "$pgid_file"
  say "deploy $DEPLOY: build $name on 127.0.0.1:$PORT (state $state)"
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
      --persist-to "$state" --show-interactive-dev-session=false
  ) >"$LOG" 2>&1 </dev/null &
  WR_PID=$!
  local i
  for i in $(seq 1 50); do
    [[ -s "$pgid_file" ]] && break
    sleep 0.1
  done
  PGID="$(cat "$pgid_file" 2>/dev/null || true)"
  [[ -n "$PGID" ]] || abort "deploy $DEPLOY ($name): start wrangler" "no process group recorded"
  # ready: GET / answers (up to 60 s)
  local banner
  for i in $(seq 1 300); do
    banner="$(curl -s --max-time 2 "http://127.0.0.1:$PORT/" 2>/dev/null)"
    if [[ "$banner" == "worker-chat ok"* ]]; then
      say "deploy $DEPLOY: ready in $((SECONDS - t)) s"
      # guards against serving a stale build: GET / reports the code's version
      check "deploy $DEPLOY serves build $name (code version ${BUILD_VERSION[$name]})" \
        "$banner" "worker-chat ok: schema version ${BUILD_VERSION[$name]}"
      return 0
    fi
    if ! kill -0 "$WR_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  tail -n 30 "$LOG"
  abort "deploy $DEPLOY ($name): wrangler ready" "see $LOG"
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

# parallel N METHOD PATH-PREFIX: N requests at once; sets PAR_OK (2xx count),
# PAR_DIR (bodies in $PAR_DIR/<i>.body, codes in <i>.code).
parallel() {
  local n="$1" method="$2" path="$3"
  PAR_DIR="$work/parallel-$DEPLOY"
  rm -rf "$PAR_DIR"; mkdir -p "$PAR_DIR"
  local pids=() i
  for i in $(seq 1 "$n"); do
    local data=()
    if [[ "$method" == POST ]]; then
      data=(-H 'content-type: application/json' --data "{\"author\":\"user$i\",\"body\":\"burst message $i\"}")
    fi
    curl -s -o "$PAR_DIR/$i.body" -w '%{http_code}' --max-time 30 -X "$method" "${data[@]}" \
      "http://127.0.0.1:$PORT$path" >"$PAR_DIR/$i.code" 2>/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}" 2>/dev/null
  PAR_OK=0
  for i in $(seq 1 "$n"); do
    [[ "$(cat "$PAR_DIR/$i.code" 2>/dev/null)" == 2* ]] && PAR_OK=$((PAR_OK + 1))
  done
}

# log_has TEXT: wrangler's output of this deploy mentions TEXT (waits up to 5 s).
log_has() {
  local i
  for i in $(seq 1 25); do
    grep -qF -- "$1" "$LOG" && return 0
    sleep 0.2
  done
  return 1
}

versions() { jget '(d.applied || []).map(a => a.version).join(",")'; }

# ---- 1. fresh objects ---------------------------------------------------------------
deploy v2
http GET /rooms/alpha/schema
check "fresh: GET /rooms/alpha/schema answers 200" "$CODE" 200
check "fresh: code version (CURRENT_SCHEMA_VERSION) is 2" "$(jget d.code_version)" 2
check "fresh: stored version is 2" "$(jget d.stored_version)" 2
check "fresh: state is current" "$(jget d.state)" current
check "fresh: tracking rows for versions 1,2" "$(versions)" "1,2"
check "fresh: tracking rows carry description and applied_at" \
  "$(jget 'd.applied.map(a => a.description + "@" + (a.applied_at.length > 0)).join(",")')" \
  "create_messages@true,index_messages_by_author@true"
check "fresh: the constructor's run applied 0001 and 0002 from version 0" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")].join(";")')" \
  "0;2;0001_create_messages.sql 0002_index_messages_by_author.sql"
applied_v2="$(jget 'JSON.stringify(d.applied)')"

http POST /rooms/alpha/messages '{"author":"alice","body":"hello"}'
check "fresh: POST a message (201)" "$CODE" 201
http POST /rooms/alpha/messages '{"author":"bob","body":"hi"}'
check "fresh: POST a second message (201)" "$CODE" 201
http POST /rooms/alpha/messages '{"author":"bob","body":"hi"}'
check "fresh: a double-post is accepted by schema v2 (201)" "$CODE" 201
http GET /rooms/alpha/messages
check "fresh: GET messages lists 3" "$CODE:$(jget d.count)" "200:3"

say "30 parallel POSTs at a fresh object (room burst)"
parallel 30 POST /rooms/burst/messages
check "concurrency (fresh object): 30 parallel POSTs all succeed" "$PAR_OK" 30
http GET /rooms/burst/messages
check "concurrency (fresh object): 30 messages stored" "$CODE:$(jget d.count)" "200:30"
http GET /rooms/burst/schema
check "concurrency (fresh object): migrated once (tracking rows 1,2; one run from 0)" \
  "$(versions);$(jget d.last_run.from_version)" "1,2;0"

# ---- 2. restart over the same state ----------------------------------------------------
deploy v2
http GET /rooms/alpha/schema
check "restart: GET schema answers 200" "$CODE" 200
check "restart: nothing re-applied (tracking rows and applied_at unchanged)" \
  "$(jget 'JSON.stringify(d.applied)')" "$applied_v2"
check "restart: the constructor's run applied nothing (2 -> 2)" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length].join(";")')" "2;2;0"
ROWS_READ="$(jget d.last_run.rows_read)"
check "restart: the up-to-date check read 1 row (rows_read)" "$ROWS_READ" 1
http GET /rooms/alpha/messages
check "restart: data kept (3 messages)" "$CODE:$(jget d.count)" "200:3"

# ---- 3. redeploy with one more migration -----------------------------------------------
deploy v3
http GET /rooms/alpha/messages
check "upgrade: existing object answers on its next request (200)" "$CODE" 200
check "upgrade: served by code version 3" "$(jget d.code_version)" 3
check "upgrade: old data kept, new column present (reactions 0)" \
  "$(jget 'd.messages.map(m => m.author + ":" + m.body + ":" + m.reactions).join(",")')" \
  "alice:hello:0,bob:hi:0,bob:hi:0"
http POST /rooms/alpha/messages/1/react
check "upgrade: the new column is usable (react -> reactions 1)" "$CODE:$(jget d.reactions)" "200:1"
http GET /rooms/alpha/schema
check "upgrade: stored version 3, tracking rows 1,2,3" "$(jget d.stored_version);$(versions)" "3;1,2,3"
check "upgrade: rows 1,2 untouched (applied_at unchanged)" \
  "$(jget 'JSON.stringify(d.applied.slice(0, 2))')" "$applied_v2"
check "upgrade: the constructor's run applied 0003 only (2 -> 3)" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")].join(";")')" \
  "2;3;0003_add_reactions.sql"

say "30 parallel GETs at an object that needs the upgrade (room burst)"
parallel 30 GET /rooms/burst/messages
check "concurrency (upgrade): 30 parallel GETs all succeed" "$PAR_OK" 30
new_schema=0
for i in $(seq 1 30); do
  BODY="$(cat "$PAR_DIR/$i.body" 2>/dev/null || true)"
  [[ "$(jget 'd.count + ":" + d.messages.every(m => m.reactions === 0)')" == "30:true" ]] \
    && new_schema=$((new_schema + 1))
done
check "concurrency (upgrade): all 30 saw the new schema (30 messages with reactions)" "$new_schema" 30
http GET /rooms/burst/schema
check "concurrency (upgrade): upgraded once (rows 1,2,3; one run 2 -> 3)" \
  "$(versions);$(jget '[d.last_run.from_version, d.last_run.to_version].join("->")')" "1,2,3;2->3"

# ---- 4. a migration that fails on the object's data --------------------------------------
deploy bad
http GET /rooms/alpha/messages
check "failing migration: the request fails (HTTP 500)" "$CODE" 500
say "  response: $(printf '%s' "$BODY" | head -c 300)"
if log_has "0004_unique_messages.sql"; then
  pass "failing migration: the error is logged with the file name (0004_unique_messages.sql)"
else
  fail "failing migration: the error is logged with the file name" "not in $LOG"
fi
if log_has "UNIQUE constraint failed"; then
  pass "failing migration: the log carries SQLite's message (UNIQUE constraint failed)"
else
  fail "failing migration: the log carries SQLite's message" "not in $LOG"
fi
http GET /rooms/alpha/schema
check "failing migration: every request to the object fails (schema route too)" "$CODE" 500
grep -F "0004_unique_messages.sql" "$LOG" | head -n 1 | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/[e2e]   log: /' \
  | cut -c 1-300

# ---- 5. the previous good build again -------------------------------------------------
deploy v3
http GET /rooms/alpha/messages
check "after the failure: previous build serves the object again (200)" "$CODE" 200
check "after the failure: data intact (3 messages, the double-post, reaction kept)" \
  "$(jget 'd.messages.map(m => m.author + ":" + m.body + ":" + m.reactions).join(",")')" \
  "alice:hello:1,bob:hi:0,bob:hi:0"
http GET /rooms/alpha/schema
check "after the failure: still version 3, 0004 not recorded" \
  "$(jget d.stored_version);$(versions)" "3;1,2,3"

# ---- 6. the fixed migration ------------------------------------------------------------
deploy fixed
http GET /rooms/alpha/schema
check "fixed migration: GET schema answers 200" "$CODE" 200
check "fixed migration: code 4, stored 4, tracking rows 1..4" \
  "$(jget d.code_version);$(jget d.stored_version);$(versions)" "4;4;1,2,3,4"
check "fixed migration: the constructor's run applied 0004 (3 -> 4)" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")].join(";")')" \
  "3;4;0004_unique_messages.sql"
http GET /rooms/alpha/messages
check "fixed migration: the duplicate was removed, the rest kept" \
  "$(jget 'd.messages.map(m => m.id + ":" + m.author + ":" + m.body).join(",")')" "1:alice:hello,2:bob:hi"
http POST /rooms/alpha/messages '{"author":"bob","body":"hi"}'
check "fixed migration: a double-post is now refused (409)" "$CODE" 409

# ---- 7. rollback ------------------------------------------------------------------------
deploy v2
http GET /rooms/alpha/messages
check "rollback: the v2 build over the v4 object keeps serving (200)" "$CODE" 200
check "rollback: served by code version 2, data there" \
  "$(jget d.code_version);$(jget d.count)" "2;2"
http POST /rooms/alpha/messages '{"author":"carol","body":"written by the old code"}'
check "rollback: the old code can still write (201)" "$CODE" 201
http GET /rooms/alpha/schema
check "rollback: schema shows stored version 4 > code version 2 (state ahead)" \
  "$(jget d.code_version);$(jget d.stored_version);$(jget d.state)" "2;4;ahead"
check "rollback: the constructor's run tolerated it (ahead = 4, nothing applied)" \
  "$(jget '[d.last_run.ahead, d.last_run.applied.length].join(";")')" "4;0"
if log_has "ahead of the code"; then
  pass "rollback: a warning is logged (ahead of the code)"
else
  fail "rollback: a warning is logged" "not in $LOG"
fi

stop_wrangler
# A panic (panic = "abort") never answers its request and resets the wasm
# instance: none of the deploys above may have hit one.
panicked="$(grep -lE 'Rust panic|RuntimeError: unreachable' "$logs"/deploy-*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')"
check "no Rust panic in any deploy's log" "$panicked" ""
say "measured rows_read of the up-to-date check: ${ROWS_READ:-?}"
finish
