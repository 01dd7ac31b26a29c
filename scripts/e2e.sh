#!/usr/bin/env bash
# e2e.sh — durable-schema end to end, in real workerd (wrangler dev --local).
#
# Builds examples/worker-chat in seven variants (its migrations plus files from
# examples/worker-chat/variants/), then deploys them one after another over
# persisted Durable Object state, driving the Worker with curl on 127.0.0.1.
# Deploys 1-10 share one state dir ("main"); 11-12 use a second one ("fk"),
# whose version numbers must not meet the main sequence's.
#
#   deploy  build      state  what it shows
#   1       v2         main   fresh objects migrate to version 2 from the compile-time
#                             baseline, in one transaction (also 30 parallel
#                             requests at a fresh object); rooms for later: lagging
#                             (a double-post), legacy and legacy-bad
#   -       (stopped)  main   node:sqlite rewrites the tracking table of legacy and
#                             legacy-bad into a hand-rolled (version, applied_at,
#                             description) table
#   2       v2         main   restart: nothing re-applied, data kept, the up-to-date
#                             check reads one row; legacy's table is adopted (original
#                             applied_at kept, one "adopted" log line), legacy-bad's
#                             (a wrong description) is refused untouched: 503
#                             adoption_mismatch
#   3       v3         main   one more migration: existing objects upgrade on their next
#                             request by the chain (also 30 parallel requests at an object
#                             mid-upgrade); a new room (gamma) comes from v3's baseline
#                             with the same tracking rows, and upgrades at deploy 7
#   4       bad        main   a two-statement migration failing on the object's data:
#                             503 with the typed error (file, statement 2, SQLite's
#                             message), /schema and /export still answer, nothing of
#                             0004 left (no `moderation` table), one "failed" JSON log
#                             line; 30 more requests: all 503, the migration not re-run;
#                             lagging (at v2) keeps 0003 and rolls 0004 back
#   5       bad        main   restart within retry_after: the same code does not re-run
#                             the migration (503 "deferred", one "deferred" log line)
#   6       v3         main   the previous good build again: data intact, version 3,
#                             the failure record still there; lagging serves at 3
#   7       fixed      main   new code tries at once despite the record (inside
#                             retry_after): 0004 applies, the record is cleared; the
#                             lock declares the fixed 0004 a replacement of the bad
#                             one, so "clean" (which applied the bad text) keeps it
#   8       v2-strict  main   `strict = true` over a version-4 object: 503 "ahead"
#   9       v2         main   rollback: old code over a newer database keeps serving
#   10      edited     main   0002 edited after it was applied: 503 "edited", data intact
#   11      v2         fk     a room where alice posted once and bob twice
#   12      fk         fk     0003 creates authors/author_stats, 0004 rebuilds authors
#                             with deferred keys and loses alice: 503 "foreign_key"
#                             (author_stats -> authors), 0003 kept, 0004 rolled back
#   13      v2         q      checked queries (issue 19; a separate block at the end):
#                             fetch_all/fetch_one/no_rows/execute counts, a round trip
#                             of i64/f64/text/blob/NULL, and unsafe_integer for an
#                             integer beyond 2^53 read or bound
#
# Last, every deploy's log is searched for panics and unhandled rejections.
#
# Usage: scripts/e2e.sh   installs the toolchain on first use (scripts/wasm-env.sh,
#                          ~14 min on a fresh machine). Then: ~5 min with a cold wasm
#                          target dir, ~2 min when the crate changed (7 x ~8 s
#                          builds + ~1 min of deploys), ~1.5 min when nothing changed.
# Env:   E2E_WORK   work dir (default examples/worker-chat/target/e2e)
#        E2E_KEEP=1 keep the main state dir of the previous run (default: start
#                   fresh; the fk state dir always starts fresh)
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
state_fk="$work/state-fk"
logs="$work/logs"
class="ChatRoom"
script_name="worker-chat" # `name` in wrangler.toml: the DO state lives in <script>-<class>/

# say/pass/fail/check/finish/abort, toolchain, jget, sync_file, wrangler_up, http,
# log_has, ds_log, check_deploy_logs: scripts/e2e-lib.sh (shared with e2e-drizzle.sh)
E2E_NAME="e2e"
# shellcheck source=scripts/e2e-lib.sh
source "$here/e2e-lib.sh"

# ---- toolchain ------------------------------------------------------------------
toolchain "$example/Cargo.lock"

# ---- builds ---------------------------------------------------------------------
# One target dir for every variant: the dependencies (std, worker, durable-schema)
# build once; each variant recompiles only the example crate.
export CARGO_TARGET_DIR="$example/target"
mkdir -p "$logs"
rm -f "$logs"/*.log

# make_variant NAME VERSION [--strict] [variant-subdir...]: a copy of the example
# crate plus the extra migration files, built into $work/crates/NAME/build.
# A variant file named like a base file (or like one of an earlier subdir)
# replaces it: variants/edited/0002_... stands in for migrations/0002_...
# --strict: the copy's attribute gets `strict = true`.
# Each copy gets its own package name (worker-chat-e2e-NAME): with one shared
# target dir, same-named copies would share one cargo unit and fingerprint, and
# cargo could hand one variant's stale .wasm to another.
make_variant() {
  local name="$1" version="$2"; shift 2
  local strict=0
  if [[ "${1:-}" == --strict ]]; then strict=1; shift; fi
  local dir="$work/crates/$name"
  local t=$SECONDS f
  mkdir -p "$dir/src" "$dir/migrations" "$dir/.cargo"
  # basename -> source file; later sources win
  local -A pick=()
  local lock_src=""
  for f in "$example"/migrations/*.sql; do pick[$(basename "$f")]="$f"; done
  local v
  for v in "$@"; do
    [[ -d "$example/variants/$v" ]] || abort "build $name" "no variants/$v"
    for f in "$example/variants/$v"/*.sql; do pick[$(basename "$f")]="$f"; done
    # a history lock (durable-schema.lock) travels with its variant
    [[ -f "$example/variants/$v/durable-schema.lock" ]] && lock_src="$example/variants/$v/durable-schema.lock"
  done
  # the migration set: exactly the picked files
  for f in "$dir"/migrations/*; do
    [[ -e "$f" ]] || continue
    [[ -n "${pick[$(basename "$f")]:-}" ]] || rm -f "$f"
  done
  local b
  for b in "${!pick[@]}"; do sync_file "${pick[$b]}" "$dir/migrations/$b"; done
  if [[ -n "$lock_src" ]]; then
    sync_file "$lock_src" "$dir/migrations/durable-schema.lock"
  else
    rm -f "$dir/migrations/durable-schema.lock"
  fi
  for f in "$example"/src/*.rs; do sync_file "$f" "$dir/src/$(basename "$f")"; done
  if [[ $strict -eq 1 ]]; then
    local attr='#[durable_schema(dir = "migrations")]'
    grep -qF "$attr" "$example/src/lib.rs" || abort "build $name" "src/lib.rs has no $attr to make strict"
    sed -e 's/^#\[durable_schema(dir = "migrations")\]$/#[durable_schema(dir = "migrations", strict = true)]/' \
      "$example/src/lib.rs" >"$dir/lib.rs.new"
    grep -qF 'strict = true' "$dir/lib.rs.new" || abort "build $name" "could not set strict = true"
    sync_file "$dir/lib.rs.new" "$dir/src/lib.rs"; rm -f "$dir/lib.rs.new"
  fi
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
  say "build $name: migrations $(cd "$dir/migrations" && echo *.sql)$([[ $strict -eq 1 ]] && echo ' (strict = true)')"
  if ! bash "$root/scripts/build-worker.sh" "$dir" "$dir/build" "$class" >"$logs/build-$name.log" 2>&1; then
    tail -n 30 "$logs/build-$name.log"
    abort "build $name" "see $logs/build-$name.log"
  fi
  BUILD_VERSION[$name]="$version"
  say "build $name: ok ($((SECONDS - t)) s)"
}

declare -A BUILD_VERSION=()
# The bad build's failure in durable_schema::testing's model of a Durable
# Object (tests/testing.rs: the same migrations, alpha's rows), compared with
# workerd's at deploy 4. rustup's cargo and the workspace's own target dir,
# as for the workspace's tests (warm in CI).
crosscheck="$work/crosscheck.json"
rm -f "$crosscheck"
host_cargo="${CARGO:-$HOME/.cargo/bin/cargo}"
[[ -x "$host_cargo" ]] || host_cargo=cargo
(cd "$root" && CARGO_TARGET_DIR="$root/target" DS_CROSSCHECK_OUT="$crosscheck" "$host_cargo" test -q \
  -p durable-schema --test testing crosscheck_the_bad_0004_on_alpha) >"$logs/crosscheck.log" 2>&1 \
  || say "crosscheck: the native run failed (see $logs/crosscheck.log)"
t_build=$SECONDS
make_variant v2 2
make_variant v3 3 v3
make_variant bad 4 v3 bad
make_variant fixed 4 v3 fixed
make_variant v2-strict 2 --strict
make_variant edited 2 edited
make_variant fk 4 fk
say "builds done in $((SECONDS - t_build)) s"

# ---- wrangler dev ------------------------------------------------------------------
if [[ -z "${E2E_KEEP:-}" ]]; then rm -rf "$state"; fi
rm -rf "$state_fk"
mkdir -p "$state" "$state_fk"
DEPLOY=0
wrangler_traps

# deploy NAME [STATE_DIR]: (re)start wrangler dev on build NAME over the
# persisted state (default: the main state dir).
deploy() {
  local name="$1" persist="${2:-$state}"
  stop_wrangler
  DEPLOY=$((DEPLOY + 1))
  PORT="$(free_port)"
  LOG="$logs/deploy-$DEPLOY-$name.log"
  say "deploy $DEPLOY: build $name on 127.0.0.1:$PORT (state $persist)"
  wrangler_up "$work/crates/$name" "$persist" "deploy $DEPLOY ($name)" "worker-chat ok"
  # guards against serving a stale build: GET / reports the code's version
  check "deploy $DEPLOY serves build $name (code version ${BUILD_VERSION[$name]})" \
    "$BANNER" "worker-chat ok: schema version ${BUILD_VERSION[$name]}"
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

# the object id of room $1, from its /schema route
object_id() { http GET "/rooms/$1/schema"; jget d.object_id; }
# the /export route's table names, comma-separated
tables() { jget 'Object.keys(d).filter(t => !t.startsWith("__")).sort().join(",")'; }

# ---- 1. fresh objects ---------------------------------------------------------------
deploy v2
http GET /rooms/alpha/schema
check "fresh: GET /rooms/alpha/schema answers 200" "$CODE" 200
check "fresh: code version (CURRENT_SCHEMA_VERSION) is 2" "$(jget d.code_version)" 2
check "fresh: stored version is 2" "$(jget d.stored_version)" 2
check "fresh: state is current" "$(jget d.state)" current
check "fresh: tracking rows for versions 1,2" "$(versions)" "1,2"
check "fresh: tracking rows carry description, applied_at and checksum" \
  "$(jget 'd.applied.map(a => a.description + "@" + (a.applied_at.length > 0) + "@" + /^[0-9a-f]{64}$/.test(a.checksum)).join(",")')" \
  "create_messages@true@true,index_messages_by_author@true@true"
check "fresh: the constructor's run applied 0001 and 0002 from version 0" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")].join(";")')" \
  "0;2;0001_create_messages.sql 0002_index_messages_by_author.sql"
applied_v2="$(jget 'JSON.stringify(d.applied)')"
alpha_id="$(jget d.object_id)"
ds_log "$alpha_id" applied
check "fresh: one \"applied\" log line for alpha (0 -> 2, applied [1,2])" \
  "$(jget 'd.map(l => [l.from, l.to, l.applied.join("+")].join(";")).join(" ")')" "0;2;1+2"
check "fresh (baseline): created from the compile-time baseline (log path, no baseline_error)" \
  "$(jget 'd.map(l => l.path + ";" + (l.baseline_error === undefined)).join(" ")')" "baseline;true"
http GET /rooms/alpha/schema
check "fresh (baseline): last_run.baseline, rows_written > 0" \
  "$(jget 'd.last_run.baseline + ";" + d.last_run.baseline_error + ";" + (d.last_run.rows_written > 0)')" "true;null;true"

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

# Rooms for later scenarios, created at version 2.
# lagging: a double-post, then not visited until the bad build (two versions behind).
http POST /rooms/lagging/messages '{"author":"dan","body":"twice"}'
code1="$CODE"
http POST /rooms/lagging/messages '{"author":"dan","body":"twice"}'
check "lagging (v2): a room with a double-post (201, 201)" "$code1,$CODE" "201,201"
# legacy, legacy-bad: their tracking tables get rewritten by hand below.
http POST /rooms/legacy/messages '{"author":"erin","body":"before adoption"}'
code1="$CODE"
http POST /rooms/legacy-bad/messages '{"author":"erin","body":"before adoption"}'
check "adoption (v2): rooms legacy and legacy-bad hold a message (201, 201)" "$code1,$CODE" "201,201"
legacy_id="$(object_id legacy)"
legacy_bad_id="$(object_id legacy-bad)"

# ---- 7a. a hand-rolled tracking table, written while wrangler is stopped --------------
stop_wrangler
do_dir="$state/v3/do/$script_name-$class"
say "DO state: $do_dir: $(ls "$do_dir" 2>/dev/null | sed -e 's/\([0-9a-f]\{12\}\)[0-9a-f]*/\1…/' | tr '\n' ' ')"
# hand_roll ID DESCRIPTION_OF_2: replaces the room's tracking table with the
# 3-column one a project might have written itself; prints the new rows.
hand_roll() {
  "$DS_NODE" --disable-warning=ExperimentalWarning -e '
    const { DatabaseSync } = require("node:sqlite");
    const [file, d2] = process.argv.slice(1);
    const db = new DatabaseSync(file);
    db.exec("BEGIN");
    db.exec("DROP TABLE migrations");
    db.exec("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, description TEXT NOT NULL)");
    const ins = db.prepare("INSERT INTO migrations (version, applied_at, description) VALUES (?, ?, ?)");
    ins.run(1, "2024-01-01", "create_messages");
    ins.run(2, "2024-01-02", d2);
    db.exec("COMMIT");
    const rows = db.prepare("SELECT version, applied_at, description FROM migrations ORDER BY version").all();
    db.close();
    process.stdout.write(rows.map(r => [r.version, r.applied_at, r.description].join("|")).join(","));' \
    "$do_dir/$1.sqlite" "$2" 2>&1
}
if [[ -n "$legacy_id" && -f "$do_dir/$legacy_id.sqlite" && -n "$legacy_bad_id" && -f "$do_dir/$legacy_bad_id.sqlite" ]]; then
  pass "adoption: the rooms' SQLite files found (<state>/v3/do/$script_name-$class/<object_id>.sqlite)"
else
  fail "adoption: the rooms' SQLite files found" "ids [$legacy_id] [$legacy_bad_id] in $do_dir"
fi
check "adoption: legacy's tracking table rewritten by hand (node:sqlite)" \
  "$(hand_roll "$legacy_id" index_messages_by_author)" \
  "1|2024-01-01|create_messages,2|2024-01-02|index_messages_by_author"
check "adoption: legacy-bad's too, with a wrong description for version 2" \
  "$(hand_roll "$legacy_bad_id" price_to_cents)" \
  "1|2024-01-01|create_messages,2|2024-01-02|price_to_cents"

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
DS_WAIT=0 ds_log "$alpha_id"
check "restart: no log line for an up-to-date object" "$(jget d.length)" 0

# ---- 7b. adoption on a Durable Object ------------------------------------------------
http GET /rooms/legacy/messages
check "adoption: the hand-rolled room serves (200, its message kept)" \
  "$CODE:$(jget 'd.messages.map(m => m.body).join(",")')" "200:before adoption"
http GET /rooms/legacy/schema
check "adoption: last_run.adopted, nothing applied (2 -> 2)" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length].join(";")')" \
  "true;2;2;0"
check "adoption: tracking rows 1,2 keep their original applied_at and gain checksums" \
  "$(jget 'd.stored_version + ";" + d.applied.map(a => a.version + "@" + a.applied_at + "@" + /^[0-9a-f]{64}$/.test(a.checksum)).join(",")')" \
  "2;1@2024-01-01@true,2@2024-01-02@true"
ds_log "$legacy_id"
check "adoption: exactly one log line for the room, outcome \"adopted\"" \
  "$(jget 'd.map(l => l.outcome).join(",")')" "adopted"
http GET /rooms/legacy-bad/messages
check "adoption mismatch: the room answers 503 adoption_mismatch" \
  "$CODE:$(jget d.migration.kind)" "503:adoption_mismatch"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
check "adoption mismatch: the error names version 2's recorded description" \
  "$(jget '/price_to_cents/.test(d.migration.message)')" "true"
http GET /rooms/legacy-bad/export
check "adoption mismatch: the table is left untouched (3 columns, same rows; /export)" \
  "$CODE:$(jget 'd.migrations.columns.join(",") + ";" + d.migrations.rows.map(r => [r.version, r.applied_at, r.description].join("|")).join(",")')" \
  "200:version,applied_at,description;1|2024-01-01|create_messages,2|2024-01-02|price_to_cents"
check "adoption mismatch: the room's data kept, no failure record (/export)" \
  "$(jget 'd.messages.rows.map(r => r.body).join(",") + ";" + ("migrations_failure" in d)')" "before adoption;false"
ds_log "$legacy_bad_id"
check "adoption mismatch: one \"failed\" log line (adoption_mismatch)" \
  "$(jget 'd.map(l => l.outcome + ":" + (l.error && l.error.kind)).join(",")')" "failed:adoption_mismatch"

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
ds_log "$alpha_id"
check "upgrade: one log line for alpha: applied, 2 -> 3, rows_written > 0" \
  "$(jget 'd.map(l => [l.outcome, l.from, l.to, l.applied.join("+"), l.rows_written > 0].join(";")).join(" ")')" \
  "applied;2;3;3;true"

check "upgrade: the constructor's run went migration by migration (log path chain)" \
  "$(jget 'd.map(l => l.path).join(" ")')" "chain"

# A new object on this build: the baseline of three migrations, with the
# tracking rows a full run records (alpha's: 1,2 from v2's baseline, 3 by the chain).
http GET /rooms/alpha/schema
rows_alpha="$(jget 'JSON.stringify(d.applied.map(a => [a.description, a.checksum]))')"
http POST /rooms/gamma/messages '{"author":"gus","body":"new here"}'
check "fresh at v3 (baseline): POST to a new room (201)" "$CODE" 201
http GET /rooms/gamma/schema
gamma_id="$(jget d.object_id)"
check "fresh at v3 (baseline): version 3 in one run from 0, from the baseline" \
  "$(jget '[d.stored_version, d.last_run.from_version, d.last_run.applied.length, d.last_run.baseline].join(";")')" \
  "3;0;3;true"
check "fresh at v3 (baseline): the same tracking rows (description, checksum) as alpha's" \
  "$(jget 'JSON.stringify(d.applied.map(a => [a.description, a.checksum]))')" "$rows_alpha"
http GET /rooms/gamma/export
check "fresh at v3 (baseline): the schema of v3 (reactions column), the message stored" \
  "$(jget 'd.messages.columns.includes("reactions") + ";" + d.messages.rows.length')" "true;1"

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
t_failure=$SECONDS
check "failing migration: the request answers 503 \"schema unavailable\"" \
  "$CODE:$(jget d.error)" "503:schema unavailable"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
check "failing migration: typed error: kind statement, 0004_unique_messages.sql, version 4, statement 2" \
  "$(jget '[d.migration.kind, d.migration.file, d.migration.version, d.migration.statement].join(";")')" \
  "statement;0004_unique_messages.sql;4;2"
check "failing migration: the error carries SQLite's message (UNIQUE constraint failed)" \
  "$(jget '/UNIQUE constraint failed/.test(d.migration.sqlite)')" "true"
check "failing migration: the error locates the statement (0004_unique_messages.sql:9:1)" \
  "$(jget '[d.migration.line, d.migration.column].join(":")')" "9:1"
# The same failure in durable_schema::testing's model (computed before the deploys).
workerd_error="$(jget 'JSON.stringify(d.migration)')"
if [[ -s "$crosscheck" ]]; then
  BODY="$(cat "$crosscheck")"
  native="$(jget 'JSON.stringify(["kind","version","file","statement","line","column","sqlite","message"].map(k => d[k]))')"
  BODY="$workerd_error"
  in_workerd="$(jget 'JSON.stringify(["kind","version","file","statement","line","column","sqlite","message"].map(k => d[k]))')"
  check "model cross-check: workerd and durable_schema::testing give the same error (kind, file, statement, line, SQLite's message, text)" \
    "$in_workerd" "$native"
else
  fail "model cross-check: the native run" "see $logs/crosscheck.log"
fi
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
check "failing migration: /schema keeps answering (200), stored version 3, rows 1,2,3" \
  "$CODE;$(jget d.stored_version);$(versions)" "200;3;1,2,3"
check "failing migration: /schema's last_run.error names 0004_unique_messages.sql" \
  "$(jget '[d.last_run.error.kind, d.last_run.error.file].join(";")')" "statement;0004_unique_messages.sql"
check "failing migration: /schema's object_id is alpha's" "$(jget d.object_id)" "$alpha_id"
http GET /rooms/alpha/export
check "failing migration: /export answers on the stuck object (200)" "$CODE" 200
check "failing migration: the two-statement migration left no trace (no moderation table, no unique index effect)" \
  "$(tables)" "messages,migrations,migrations_failure"
check "failing migration: data intact (/export: 3 messages, the double-post; tracking rows 1,2,3)" \
  "$(jget 'd.messages.rows.map(r => r.author + ":" + r.body).join(",") + ";" + d.migrations.rows.map(r => r.version).join(",")')" \
  "alice:hello,bob:hi,bob:hi;1,2,3"
check "failing migration: the failure record (version 4, 1 attempt, the error)" \
  "$(jget 'd.migrations_failure.rows.map(r => [r.version, r.attempts, /0004_unique_messages.sql/.test(r.error)].join(";")).join(",")')" \
  "4;1;true"

# ---- 2'. the structured log line ---------------------------------------------------
ds_log "$alpha_id" failed
check "structured log: exactly one \"failed\" line for alpha's object" "$(jget d.length)" 1
say "  log line: $(jget 'JSON.stringify(d[0])' | head -c 400)"
check "structured log: event, object, outcome, from 3, to 3, applied []" \
  "$(jget 'const l = d[0]; [l.event, l.object, l.outcome, l.from, l.to, JSON.stringify(l.applied)].join(";")')" \
  "durable-schema;$alpha_id;failed;3;3;[]"
check "structured log: duration_ms and rows_written are numbers (rows_written 0)" \
  "$(jget 'const l = d[0]; [typeof l.duration_ms, l.duration_ms >= 0, typeof l.rows_written, l.rows_written].join(";")')" \
  "number;true;number;0"
check "structured log: error kind/file/statement/line/column" \
  "$(jget 'const e = d[0].error; [e.kind, e.file, e.version, e.statement, e.line, e.column].join(";")')" \
  "statement;0004_unique_messages.sql;4;2;9;1"
check "structured log: error.sqlite has SQLite's message" \
  "$(jget '/UNIQUE constraint failed: messages.author, messages.body/.test(d[0].error.sqlite)')" "true"

# ---- 3'. the failing migration is not re-run ------------------------------------------
say "30 parallel GETs at the failed object (room alpha)"
parallel 30 GET /rooms/alpha/messages
n503=0; typed=0
for i in $(seq 1 30); do
  [[ "$(cat "$PAR_DIR/$i.code" 2>/dev/null)" == 503 ]] && n503=$((n503 + 1))
  BODY="$(cat "$PAR_DIR/$i.body" 2>/dev/null || true)"
  [[ "$(jget '[d.migration.kind, d.migration.file].join(";")')" == "statement;0004_unique_messages.sql" ]] \
    && typed=$((typed + 1))
done
check "not re-run: 30 more requests all answer 503" "$n503" 30
check "not re-run: all 30 carry the typed error (statement, 0004)" "$typed" 30
sleep 1
ds_log "$alpha_id" failed
FAILED_LINES="$(jget d.length)"
DS_WAIT=0 ds_log "$alpha_id" deferred
DEFERRED_LINES="$(jget d.length)"
check "not re-run: after the 30 more requests still exactly one \"failed\" line for alpha (deferred lines: $DEFERRED_LINES)" \
  "$FAILED_LINES" 1
http GET /rooms/alpha/export
check "not re-run: the failure record still says 1 attempt" \
  "$(jget 'd.migrations_failure.rows.map(r => r.attempts).join(",")')" 1

# ---- 4'. an object two versions behind meets the failing build ------------------------
http GET /rooms/lagging/messages
check "lagging: a v2 room with a double-post answers 503 (statement, 0004)" \
  "$CODE:$(jget '[d.migration.kind, d.migration.file].join(";")')" "503:statement;0004_unique_messages.sql"
http GET /rooms/lagging/schema
lagging_id="$(jget d.object_id)"
check "lagging: 0003 kept, 0004 rolled back (stored version 3, tracking rows 1,2,3)" \
  "$(jget d.stored_version);$(versions)" "3;1,2,3"
check "lagging: last_run 2 -> 3 applied [0003_add_reactions.sql], error in 0004" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, JSON.stringify(d.last_run.applied), d.last_run.error.file].join(";")')" \
  '2;3;["0003_add_reactions.sql"];0004_unique_messages.sql'
http GET /rooms/lagging/export
check "lagging: /export shows 0003's reactions column, no moderation table" \
  "$(jget 'd.messages.columns.includes("reactions") + ";" + ("moderation" in d) + ";" + d.messages.rows.length')" \
  "true;false;2"
ds_log "$lagging_id"
check "lagging: one log line: failed, from 2, to 3, applied [3], rows_written > 0" \
  "$(jget 'd.map(l => [l.outcome, l.from, l.to, l.applied.join("+"), l.rows_written > 0, l.error.file].join(";")).join(" ")')" \
  "failed;2;3;3;true;0004_unique_messages.sql"

# ---- 5. the same failing code again, within retry_after --------------------------------
# A room without double-posts applies the first 0004: the fixed build will
# declare it replaced (variants/fixed/durable-schema.lock) and keep this room
# as it is, on the one-row fast path.
http POST /rooms/clean/messages '{"author":"erin","body":"only once"}'
check "replaced release: a room without double-posts applies the first 0004 (201)" "$CODE" 201
http GET /rooms/clean/schema
check "replaced release: that room is at version 4 with the first 0004" \
  "$(jget d.stored_version);$(versions)" "4;1,2,3,4"
clean_row4="$(jget 'JSON.stringify(d.applied[3])')"

deploy bad
http GET /rooms/alpha/messages
check "deferred: the bad build restarted: 503, kind deferred (version 4, 1 attempt)" \
  "$CODE:$(jget '[d.migration.kind, d.migration.version, d.migration.attempts, d.migration.retry_in_secs > 0].join(";")')" \
  "503:deferred;4;1;true"
ds_log "$alpha_id" deferred
DEFERRED_LINES2="$(jget d.length)"
check "deferred: one \"deferred\" log line for alpha" "$DEFERRED_LINES2" 1
DS_WAIT=0 ds_log "$alpha_id" failed
check "deferred: no \"failed\" line: the migration was not executed again" "$(jget d.length)" 0
http GET /rooms/alpha/export
check "deferred: still no moderation table, record still 1 attempt" \
  "$(tables);$(jget 'd.migrations_failure.rows.map(r => r.attempts).join(",")')" \
  "messages,migrations,migrations_failure;1"

# ---- 6. the previous good build again -------------------------------------------------
deploy v3
http GET /rooms/alpha/messages
check "after the failure: previous build serves the object again (200)" "$CODE" 200
check "after the failure: data intact (3 messages, the double-post, reaction kept)" \
  "$(jget 'd.messages.map(m => m.author + ":" + m.body + ":" + m.reactions).join(",")')" \
  "alice:hello:1,bob:hi:0,bob:hi:0"
http GET /rooms/alpha/schema
check "after the failure: still version 3, 0004 not recorded" \
  "$(jget d.stored_version);$(versions)" "3;1,2,3"
http GET /rooms/alpha/export
check "after the failure: the failure record is still there (for the fixed build to ignore)" \
  "$(jget 'd.migrations_failure.rows.map(r => r.version).join(",")')" 4
http GET /rooms/lagging/messages
check "lagging: on the previous good build it serves at version 3 (200, 2 messages)" \
  "$CODE:$(jget d.code_version):$(jget d.count)" "200:3:2"
http GET /rooms/lagging/schema
check "lagging: stored version 3, tracking rows 1,2,3, nothing to apply" \
  "$(jget d.stored_version);$(versions);$(jget 'd.last_run.applied.length + ":" + d.last_run.error')" "3;1,2,3;0:null"

# ---- 7. the fixed migration ------------------------------------------------------------
deploy fixed
http GET /rooms/alpha/schema
since_failure=$((SECONDS - t_failure))
check "fixed migration: GET schema answers 200" "$CODE" 200
check "fixed migration: code 4, stored 4, tracking rows 1..4" \
  "$(jget d.code_version);$(jget d.stored_version);$(versions)" "4;4;1,2,3,4"
check "fixed migration: the constructor's run applied 0004 (3 -> 4)" \
  "$(jget '[d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join(" ")].join(";")')" \
  "3;4;0004_unique_messages.sql"
http GET /rooms/gamma/schema
check "fixed migration: the room created from v3's baseline upgrades by the chain (3 -> 4)" \
  "$(jget '[d.stored_version, d.last_run.from_version, d.last_run.applied.join(" "), d.last_run.baseline].join(";")')" \
  "4;3;0004_unique_messages.sql;false"
http GET /rooms/gamma/messages
check "fixed migration: that room's message kept" "$CODE:$(jget d.count)" "200:1"
if [[ $since_failure -lt 60 ]]; then
  pass "fixed migration: new code tried at once, ${since_failure} s after the failure (inside retry_after = 60 s)"
else
  fail "fixed migration: new code tried inside retry_after" "${since_failure} s after the failure: not inside 60 s, proves nothing"
fi
ds_log "$alpha_id"
check "fixed migration: one log line for alpha: applied 3 -> 4" \
  "$(jget 'd.map(l => [l.outcome, l.from, l.to, l.applied.join("+")].join(";")).join(" ")')" "applied;3;4;4"
http GET /rooms/alpha/export
check "fixed migration: the failure record is cleared" \
  "$(jget '"migrations_failure" in d ? d.migrations_failure.rows.length : "absent"')" 0
http GET /rooms/alpha/messages
check "fixed migration: the duplicate was removed, the rest kept" \
  "$(jget 'd.messages.map(m => m.id + ":" + m.author + ":" + m.body).join(",")')" "1:alice:hello,2:bob:hi"
http POST /rooms/alpha/messages '{"author":"bob","body":"hi"}'
check "fixed migration: a double-post is now refused (409)" "$CODE" 409
http GET /rooms/lagging/messages
check "lagging: the fixed build migrates it to 4 (200, duplicate removed)" \
  "$CODE:$(jget 'd.messages.map(m => m.author + ":" + m.body).join(",")')" "200:dan:twice"
http GET /rooms/lagging/schema
check "lagging: stored version 4, tracking rows 1..4" "$(jget d.stored_version);$(versions)" "4;1,2,3,4"
http GET /rooms/clean/messages
check "replaced release: the room that applied the first 0004 serves the fixed build (200, 1 message)" \
  "$CODE:$(jget d.count)" "200:1"
http GET /rooms/clean/schema
check "replaced release: nothing re-run there: row 4 unchanged (first text's checksum, applied_at)" \
  "$(jget 'JSON.stringify(d.applied[3])')" "$clean_row4"
check "replaced release: its up-to-date check read one row and applied nothing" \
  "$(jget '[d.last_run.rows_read, d.last_run.applied.length, d.last_run.error].join(";")')" "1;0;"

# ---- 9. strict = true over a newer database -------------------------------------------
deploy v2-strict
http GET /rooms/alpha/messages
check "strict: a strict v2 build over the v4 object answers 503 ahead" \
  "$CODE:$(jget d.migration.kind)" "503:ahead"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
http GET /rooms/alpha/schema
check "strict: /schema answers (200), stored 4, last_run.error ahead" \
  "$CODE;$(jget d.stored_version);$(jget d.last_run.error.kind)" "200;4;ahead"
ds_log "$alpha_id"
check "strict: one \"failed\" log line (ahead)" \
  "$(jget 'd.map(l => l.outcome + ":" + l.error.kind).join(",")')" "failed:ahead"

# ---- 9'. rollback ------------------------------------------------------------------------
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

# ---- 8. an applied migration edited -------------------------------------------------
deploy edited
http GET /rooms/alpha/messages
check "edited: a build whose 0002 differs from the applied one answers 503 edited" \
  "$CODE:$(jget '[d.migration.kind, d.migration.file, d.migration.version].join(";")')" \
  "503:edited;0002_index_messages_by_author.sql;2"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
http GET /rooms/alpha/export
check "edited: data intact, tracking rows 1..4 unchanged (/export)" \
  "$CODE;$(jget 'd.messages.rows.map(r => r.author).join(",") + ";" + d.migrations.rows.map(r => r.version).join(",")')" \
  "200;alice,bob,carol;1,2,3,4"
ds_log "$alpha_id"
check "edited: one \"failed\" log line (edited)" \
  "$(jget 'd.map(l => l.outcome + ":" + l.error.kind).join(",")')" "failed:edited"

# ---- 6. a deferred foreign key left dangling (separate state) -------------------------
deploy v2 "$state_fk"
http POST /rooms/fkroom/messages '{"author":"alice","body":"one"}'
c1="$CODE"
http POST /rooms/fkroom/messages '{"author":"bob","body":"one"}'
c2="$CODE"
http POST /rooms/fkroom/messages '{"author":"bob","body":"two"}'
check "foreign key (v2): alice posts once, bob twice (201 x 3)" "$c1,$c2,$CODE" "201,201,201"
deploy fk "$state_fk"
http GET /rooms/fkroom/messages
check "foreign key: the room answers 503, kind foreign_key" "$CODE:$(jget d.migration.kind)" "503:foreign_key"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
check "foreign key: 0004_rebuild_authors.sql (version 4) left author_stats -> authors dangling" \
  "$(jget '[d.migration.file, d.migration.version, d.migration.table, d.migration.parent, typeof d.migration.rowid].join(";")')" \
  "0004_rebuild_authors.sql;4;author_stats;authors;number"
http GET /rooms/fkroom/schema
fk_id="$(jget d.object_id)"
check "foreign key: stored version 3 (0003 kept, 0004 rolled back)" \
  "$(jget d.stored_version);$(versions);$(jget d.last_run.error.kind)" "3;1,2,3;foreign_key"
http GET /rooms/fkroom/export
check "foreign key: data intact (/export: authors alice, bob; author_stats 2 rows; no authors_new)" \
  "$(jget '[d.authors.columns.join(","), d.authors.rows.map(r => r.name).sort().join(","), d.author_stats.rows.map(r => r.author + ":" + r.posts).sort().join(","), "authors_new" in d].join(";")')" \
  "name;alice,bob;alice:1,bob:2;false"
ds_log "$fk_id"
check "foreign key: one log line: failed, 2 -> 3, applied [3], foreign_key" \
  "$(jget 'd.map(l => [l.outcome, l.from, l.to, l.applied.join("+"), l.error.kind, l.error.table, l.error.parent].join(";")).join(" ")')" \
  "failed;2;3;3;foreign_key;author_stats;authors"

# ==== checked queries (issue 19, run-time half) ======================================
# A separate block, to be ported as a unit. The example's `/rooms/:room/q/*` routes run
# `durable_schema::query::Query`s written as `query!` generates them, through
# `worker::SqlStorage` (the raw cursor, no serde), on the v2 build over a fresh state.
state_q="$work/state-q"
rm -rf "$state_q"
mkdir -p "$state_q"
deploy v2 "$state_q"
http POST /rooms/qroom/messages '{"author":"alice","body":"one"}'
q1="$CODE"
http POST /rooms/qroom/messages '{"author":"alice","body":"two"}'
q2="$CODE"
http POST /rooms/qroom/messages '{"author":"bob","body":"hi"}'
check "query: three messages posted (201 x 3)" "$q1,$q2,$CODE" "201,201,201"
http GET /rooms/qroom/q/by-author/alice
check "query: fetch_all binds a text argument and decodes i64 and text columns" \
  "$CODE;$(jget 'd.map(m => [typeof m.id, m.author, m.body].join(":")).join(",")')" \
  "200;number:alice:one,number:alice:two"
http GET /rooms/qroom/q/first/bob
check "query: fetch_one returns the row" "$CODE;$(jget 'd.author + ":" + d.body')" "200;bob:hi"
http GET /rooms/qroom/q/first/nobody
check "query: fetch_one with no row answers kind no_rows" "$CODE;$(jget d.kind)" "404;no_rows"
http POST /rooms/qroom/q/rename/alice/carol
check "query: execute counts the rows changed (2, not workerd's rowsWritten with the index)" \
  "$CODE;$(jget d.changed)" "200;2"
http POST /rooms/qroom/q/rename/alice/carol
check "query: execute again changes nothing (0)" "$CODE;$(jget d.changed)" "200;0"
http GET /rooms/qroom/q/by-author/carol
check "query: the update is visible (carol has 2 messages)" "$CODE;$(jget d.length)" "200;2"
http GET /rooms/qroom/q/roundtrip
check "query: i64 (-(2^53 - 1)), f64, text, blob and NULL round-trip through workerd" \
  "$CODE;$(jget '[d.equal, d.i, d.f, d.t === "\u00e9 \u{1F600} \u0000 end", d.b.join("."), d.n].join(";")')" \
  "200;true;-9007199254740991;-0.1;true;0.159.255;"
http GET /rooms/qroom/q/big
check "query: SELECT 9007199254740993 into i64 is an unsafe_integer error, not a rounded value" \
  "$CODE;$(jget '[d.kind, d.column, d.error.includes("holds 9007199254740992,")].join(";")')" \
  "500;unsafe_integer;n;true"
say "  response: $(printf '%s' "$BODY" | head -c 300)"
http GET /rooms/qroom/q/bind-big
check "query: binding 2^53 is refused with unsafe_integer before the statement runs" \
  "$CODE;$(jget '[d.kind, d.error.includes("argument 1 is 9007199254740992")].join(";")')" \
  "500;unsafe_integer;true"
http GET /rooms/qroom/q/by-author/bob
check "query: the object still serves after the errors" "$CODE;$(jget d.length)" "200;1"
# ==== end of checked queries ==========================================================

stop_wrangler

# ---- 10. never a panic, never an unhandled rejection -------------------------------
check_deploy_logs
say "measured rows_read of the up-to-date check: ${ROWS_READ:-?}"
say "measured after the failure (deploy bad, 31 requests to alpha through the guard): failed lines ${FAILED_LINES:-?}, deferred lines ${DEFERRED_LINES:-?}; after the restart of the bad build: deferred lines ${DEFERRED_LINES2:-?}"
finish
