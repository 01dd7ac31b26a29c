#!/usr/bin/env bash
# e2e-drizzle.sh — taking over drizzle-orm Durable Objects, end to end in real
# workerd (wrangler dev --local).
#
# examples/drizzle-chat holds one chat room Durable Object (`ChatRoom`, binding
# CHAT, script drizzle-chat) twice: in TypeScript (ts/), migrated by
# drizzle-orm 0.45.4's own `durable-sqlite` migrator, and in Rust (rust/),
# reading the same drizzle-kit directory (drizzle/: journal + .sql files) with
# `#[durable_schema(dir = "../drizzle")]`. Builds are assembled in "trees"
# ($E2E_WORK/trees/NAME/{drizzle,ts,rust}, laid out like the example): drizzle/
# is the example's directory with the files of variants/NAME/ on top, the
# variant's meta/_journal.json deciding which files are in it.
#
#   tree       journal (idx: tag @ when)                               built as
#   base       0: create_messages @T0, 1: index_by_author @T2          ts
#   reactions  base + 2: add_reactions @T3                             rust (version 3)
#   merged     0: create_messages @T0, 1: add_reactions @T1 (a merged  ts, rust
#              branch's older migration), 2: index_by_author @T2
#   (T0 < T1 < T2 < T3)
#
#   deploy  build           state  what it shows
#   A1      ts base         a      drizzle migrates rooms alpha, beta: its table
#                                  has 2 rows, created_at = the journal whens
#   A2      rust reactions  a      each room adopts drizzle's history (versions 1, 2,
#                                  applied_at = when) and applies 0002 once, in one
#                                  transaction; data kept, drizzle's table unchanged,
#                                  one "adopted" log line per room; a room drizzle
#                                  never saw migrates 0 -> 3 normally
#   A3      rust reactions  a      restart: the up-to-date check reads 1 row,
#                                  nothing applied, nothing logged
#   B1      ts base         b      room delta migrated by drizzle (T0, T2)
#   B2      ts merged       b      drizzle skips 0001_add_reactions (T1 < T2): its
#                                  table keeps 2 rows, no reactions column; a new
#                                  room (epsilon) gets all three
#   B3      rust merged     b      delta: 503 ledger_mismatch naming version 2,
#                                  nothing written (no `migrations` table);
#                                  epsilon: adopted (versions 1..3, nothing to apply)
#
# Last, every deploy's log is searched for panics and unhandled rejections.
#
# Usage: scripts/e2e-drizzle.sh   toolchain from scripts/wasm-env.sh (as e2e.sh);
#          drizzle-orm from examples/drizzle-chat/ts/package-lock.json (`npm ci`,
#          skipped while node_modules matches the lockfile). The wasm target dir
#          is e2e.sh's (examples/worker-chat/target), so after e2e.sh the two Rust
#          builds take ~10 s each. Warm total: ~1 min.
# Env:   E2E_WORK  work dir (default examples/drizzle-chat/target/e2e); state dirs
#                  always start fresh.
# Output: PASS/FAIL per check, and last a line `e2e-drizzle: N passed, M failed`
#         (exit status 1 when M > 0). Logs: $E2E_WORK/logs/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
example="$root/examples/drizzle-chat"
work="${E2E_WORK:-$example/target/e2e}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
state_a="$work/state-a"
state_b="$work/state-b"
logs="$work/logs"
class="ChatRoom"

# The journal `when`s (see the table above).
T0=1767261843512 # 0000_create_messages
T1=1767538817096 # add_reactions, as merged from an older branch
T2=1767866404871 # index_by_author
T3=1768471205230 # 0002_add_reactions, drizzle-kit's next migration

# say/pass/fail/check/finish/abort, toolchain, jget, sync_file, wrangler_up, http,
# ds_log, check_deploy_logs: scripts/e2e-lib.sh (shared with e2e.sh)
E2E_NAME="e2e-drizzle"
# shellcheck source=scripts/e2e-lib.sh
source "$here/e2e-lib.sh"

# ---- toolchain ------------------------------------------------------------------
toolchain "$example/rust/Cargo.lock"
mkdir -p "$logs"
rm -f "$logs"/*.log

# drizzle-orm, exactly as the committed lockfile says. npm ci replaces
# node_modules, so it runs only when the lockfile changed since the last one.
ts_modules="$example/ts/node_modules"
if ! cmp -s "$example/ts/package-lock.json" "$ts_modules/.e2e-drizzle-lock" 2>/dev/null; then
  say "npm ci in examples/drizzle-chat/ts (drizzle-orm from the npm registry)"
  (cd "$example/ts" && PATH="$DS_NODE_BIN:$PATH" npm ci --no-audit --no-fund --loglevel=error) \
    >"$logs/npm-ci.log" 2>&1 || { tail -n 20 "$logs/npm-ci.log"; abort "npm ci" "see $logs/npm-ci.log"; }
  cp "$example/ts/package-lock.json" "$ts_modules/.e2e-drizzle-lock"
fi
check "drizzle-orm 0.45.4 installed from the lockfile" \
  "$("$DS_NODE" -p 'require(process.argv[1]).version' "$ts_modules/drizzle-orm/package.json" 2>&1)" "0.45.4"
if "$DS_NODE" "$example/ts/gen-migrations.mjs" "$example/drizzle" --check >"$logs/gen-check.log" 2>&1; then
  pass "drizzle/migrations.js is what drizzle-kit writes for the journal (ts/gen-migrations.mjs --check)"
else
  fail "drizzle/migrations.js is up to date" "$(cat "$logs/gen-check.log")"
fi

# ---- trees and builds -----------------------------------------------------------
# One target dir with e2e.sh: std, worker and durable-schema build once for both.
export CARGO_TARGET_DIR="$root/examples/worker-chat/target"

# tree NAME [VARIANT]: $work/trees/NAME/drizzle = the example's drizzle/ with
# variants/VARIANT/ on top: the variant's journal (if any) replaces the base's,
# and the .sql files are exactly the journal's tags, each taken from the
# variant if it has it, else from the base. Then migrations.js is generated
# (drizzle-kit's form) by ts/gen-migrations.mjs.
tree() {
  local name="$1" variant="${2:-}"
  local dir="$work/trees/$name/drizzle" f
  mkdir -p "$dir/meta"
  local journal="$example/drizzle/meta/_journal.json"
  if [[ -n "$variant" ]]; then
    [[ -d "$example/variants/$variant" ]] || abort "tree $name" "no variants/$variant"
    [[ -f "$example/variants/$variant/meta/_journal.json" ]] && journal="$example/variants/$variant/meta/_journal.json"
  fi
  sync_file "$journal" "$dir/meta/_journal.json"
  local tags
  tags="$("$DS_NODE" -e 'for (const e of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).entries) console.log(e.tag)' "$journal")" \
    || abort "tree $name" "cannot read $journal"
  local -A keep=()
  local tag src
  for tag in $tags; do
    src="$example/drizzle/$tag.sql"
    [[ -n "$variant" && -f "$example/variants/$variant/$tag.sql" ]] && src="$example/variants/$variant/$tag.sql"
    [[ -f "$src" ]] || abort "tree $name" "no file for journal tag $tag"
    sync_file "$src" "$dir/$tag.sql"
    keep[$tag.sql]=1
  done
  for f in "$dir"/*.sql; do
    [[ -e "$f" ]] || continue
    [[ -n "${keep[$(basename "$f")]:-}" ]] || rm -f "$f"
  done
  "$DS_NODE" "$example/ts/gen-migrations.mjs" "$dir" || abort "tree $name" "gen-migrations.mjs failed"
  say "tree $name: drizzle/ $(cd "$dir" && echo *.sql)"
}

# tree_ts NAME: the TypeScript worker in tree NAME (wrangler bundles it at deploy).
tree_ts() {
  local dir="$work/trees/$1/ts" f
  mkdir -p "$dir/src"
  for f in "$example"/ts/src/*.ts; do sync_file "$f" "$dir/src/$(basename "$f")"; done
  sync_file "$example/ts/wrangler.toml" "$dir/wrangler.toml"
  ln -sfn "$ts_modules" "$dir/node_modules"
}

# tree_rust NAME: the Rust crate in tree NAME, built into its build/. Own package
# name (drizzle-chat-e2e-NAME): with one shared target dir, same-named copies
# would share one cargo unit and fingerprint.
declare -A BUILD_VERSION=()
tree_rust() {
  local name="$1" dir="$work/trees/$1/rust" t=$SECONDS
  mkdir -p "$dir/src" "$dir/.cargo"
  sync_file "$example/rust/src/lib.rs" "$dir/src/lib.rs"
  sync_file "$example/rust/build.rs" "$dir/build.rs"
  sync_file "$example/rust/wrangler.toml" "$dir/wrangler.toml"
  sync_file "$example/rust/.cargo/config.toml" "$dir/.cargo/config.toml"
  [[ -f "$dir/Cargo.lock" ]] || cp "$example/rust/Cargo.lock" "$dir/Cargo.lock"
  sed -e "s#^name = \"drizzle-chat\"#name = \"drizzle-chat-e2e-$name\"#" \
      -e "s#path = \"\\.\\./\\.\\./\\.\\.\"#path = \"$root\"#" "$example/rust/Cargo.toml" >"$dir/Cargo.toml.new"
  grep -q "drizzle-chat-e2e-$name" "$dir/Cargo.toml.new" && grep -qF "path = \"$root\"" "$dir/Cargo.toml.new" \
    || abort "build $name" "could not rewrite rust/Cargo.toml"
  sync_file "$dir/Cargo.toml.new" "$dir/Cargo.toml"; rm -f "$dir/Cargo.toml.new"
  if ! bash "$root/scripts/build-worker.sh" "$dir" "$dir/build" "$class" >"$logs/build-$name.log" 2>&1; then
    tail -n 30 "$logs/build-$name.log"
    abort "build rust $name" "see $logs/build-$name.log"
  fi
  BUILD_VERSION[$name]="$("$DS_NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).entries.length)' \
    "$work/trees/$name/drizzle/meta/_journal.json")"
  say "build rust $name: ok ($((SECONDS - t)) s)"
}

t_build=$SECONDS
tree base
tree reactions reactions
tree merged merged
tree_ts base
tree_ts merged
tree_rust reactions
tree_rust merged
say "trees and builds done in $((SECONDS - t_build)) s"

# ---- wrangler dev ------------------------------------------------------------------
rm -rf "$state_a" "$state_b"
mkdir -p "$state_a" "$state_b"
DEPLOY=""
wrangler_traps

# deploy LABEL TREE SIDE STATE_DIR: (re)start wrangler dev on TREE's ts or rust
# build over the persisted state; waits for GET / and checks it is that build.
deploy() {
  local label="$1" name="$2" side="$3" persist="$4"
  stop_wrangler
  DEPLOY="$label"
  PORT="$(free_port)"
  LOG="$logs/deploy-$label-$side-$name.log"
  say "deploy $label: $side build of tree $name on 127.0.0.1:$PORT (state $(basename "$persist"))"
  wrangler_up "$work/trees/$name/$side" "$persist" "deploy $label" "drizzle-chat ok"
  local expected
  if [[ "$side" == ts ]]; then
    expected="drizzle-chat ok (ts): journal entries $("$DS_NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).entries.length)' "$work/trees/$name/drizzle/meta/_journal.json")"
  else
    expected="drizzle-chat ok (rust): schema version ${BUILD_VERSION[$name]}"
  fi
  check "deploy $label serves the $side build of tree $name" "$BANNER" "$expected"
}

# drizzle's table as /export shows it: "created_at|hash" per row, in order.
ledger_rows() { jget '(d.__drizzle_migrations ? d.__drizzle_migrations.rows : []).map(r => r.created_at + "|" + r.hash).sort().join(",")'; }
# drizzle's table from /export, key order normalized (serde_json sorts keys, JS
# keeps the column order): "columns;id|hash|created_at,..."
ledger_snapshot() { jget 'const t = d.__drizzle_migrations; t ? t.columns.join(",") + ";" + t.rows.map(r => [r.id, JSON.stringify(r.hash), r.created_at].join("|")).join(",") : "none"'; }
# the /export route's table names (miniflare's own left out), comma-separated
tables() { jget 'Object.keys(d).filter(t => !t.startsWith("__miniflare")).sort().join(",")'; }

# ==== Scenario A: drizzle's history adopted ==========================================
deploy A1 base ts "$state_a"
http POST /rooms/alpha/messages '{"author":"alice","body":"hello"}'
c1="$CODE"
http POST /rooms/alpha/messages '{"author":"bob","body":"hi"}'
c2="$CODE"
http POST /rooms/beta/messages '{"author":"carol","body":"hey"}'
check "A1 drizzle: two rooms written (201 x 3)" "$c1,$c2,$CODE" "201,201,201"
http GET /rooms/alpha/messages
check "A1 drizzle: alpha lists 2 messages" "$CODE:$(jget 'd.messages.map(m => m.author).join(",")')" "200:alice,bob"
http GET /rooms/alpha/drizzle-migrations
check "A1 drizzle: __drizzle_migrations has 2 rows, created_at = the journal whens (integers), hash ''" \
  "$(jget 'd.rows.map(r => r.created_at + ":" + r.created_at_type + ":" + JSON.stringify(r.hash)).join(",")')" \
  "$T0:integer:\"\",$T2:integer:\"\""
check "A1 drizzle: the journal it ran has entries 0000, 0001" \
  "$(jget 'd.journal.map(e => e.idx + ":" + e.tag + "@" + e.when).join(",")')" \
  "0:0000_create_messages@$T0,1:0001_index_by_author@$T2"
http GET /rooms/alpha/export
ledger_alpha="$(ledger_snapshot)"
check "A1 drizzle: /export shows drizzle's table as its migrator wrote it (id SERIAL stays NULL)" \
  "$ledger_alpha" "id,hash,created_at;|\"\"|$T0,|\"\"|$T2"
check "A1 drizzle: alpha's tables are drizzle's and messages" "$(tables)" "__drizzle_migrations,messages"
http GET /rooms/beta/export
ledger_beta="$(ledger_snapshot)"
check "A1 drizzle: beta migrated too (T0, T2)" "$(ledger_rows)" "$T0|,$T2|"

deploy A2 reactions rust "$state_a"
http GET /rooms/alpha/messages
check "A2 rust: alpha serves its old messages (200, alice + bob)" \
  "$CODE:$(jget 'd.messages.map(m => m.author + ":" + m.body).join(",")')" "200:alice:hello,bob:hi"
check "A2 rust: the new column is there (reactions 0, 0)" "$(jget 'd.messages.map(m => m.reactions).join(",")')" "0,0"
http GET /rooms/alpha/schema
alpha_id="$(jget d.object_id)"
check "A2 rust: last_run.adopted, from 2 to 3, applied [0002_add_reactions.sql]" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.join("+"), d.last_run.error].join(";")')" \
  "true;2;3;0002_add_reactions.sql;"
check "A2 rust: stored version 3, state current, nothing pending" \
  "$(jget '[d.code_version, d.stored_version, d.state, d.pending.length].join(";")')" "3;3;current;0"
check "A2 rust: tracking rows 1,2 (adopted) + 3, descriptions from the tags" \
  "$(jget 'd.applied.map(a => a.version + ":" + a.description).join(",")')" \
  "1:create_messages,2:index_by_author,3:add_reactions"
check "A2 rust: applied_at of 1 and 2 is drizzle's created_at" \
  "$(jget 'd.applied.slice(0, 2).map(a => a.applied_at).join(",")')" \
  "$("$DS_NODE" -p "[new Date($T0).toISOString(), new Date($T2).toISOString()].join(',')")"
check "A2 rust: every tracking row has a checksum" \
  "$(jget 'd.applied.every(a => /^[0-9a-f]{64}$/.test(a.checksum))')" true
http GET /rooms/alpha/export
check "A2 rust: drizzle's table unchanged (/export)" "$(ledger_snapshot)" "$ledger_alpha"
check "A2 rust: alpha's tables: drizzle's, messages, migrations (no failure record)" \
  "$(tables)" "__drizzle_migrations,messages,migrations"
check "A2 rust: the migrations table holds versions 1,2,3 once each" \
  "$(jget 'd.migrations.rows.map(r => r.version).join(",")')" "1,2,3"
ds_log "$alpha_id"
check "A2 rust: alpha's log: one line, 2 -> 3, applied [3]" \
  "$(jget 'd.map(l => [l.from, l.to, l.applied.join("+")].join(";")).join(" ")')" "2;3;3"
http GET /rooms/beta/messages
check "A2 rust: beta serves its message" "$CODE:$(jget 'd.messages.map(m => m.body).join(",")')" "200:hey"
http GET /rooms/beta/schema
beta_id="$(jget d.object_id)"
check "A2 rust: beta adopted too (1,2 adopted + 3 applied)" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.stored_version].join(";")');$(versions)" "true;2;3;1,2,3"
http GET /rooms/beta/export
check "A2 rust: beta's drizzle table unchanged" "$(ledger_snapshot)" "$ledger_beta"
ds_log "$beta_id"
check "A2 rust: beta's log: one line, 2 -> 3, applied [3]" \
  "$(jget 'd.map(l => [l.from, l.to, l.applied.join("+")].join(";")).join(" ")')" "2;3;3"
http POST /rooms/alpha/messages/1/react
check "A2 rust: the new column works (react: 200, reactions 1)" "$CODE:$(jget d.reactions)" "200:1"
http POST /rooms/alpha/messages '{"author":"dan","body":"written by rust"}'
check "A2 rust: the adopted room takes writes (201)" "$CODE" 201
http GET /rooms/gamma/schema
gamma_id="$(jget d.object_id)"
check "A2 rust: a room drizzle never saw migrates 0 -> 3 (not adopted)" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length].join(";")');$(versions)" \
  "false;0;3;3;1,2,3"
http GET /rooms/gamma/export
check "A2 rust: gamma has no drizzle table" "$(tables)" "messages,migrations"
ds_log "*"
rooms="{\"$alpha_id\": \"alpha\", \"$beta_id\": \"beta\", \"$gamma_id\": \"gamma\"}"
# The brief: an adoption logs one "adopted" line per room, also when the same
# run applies a pending migration (gamma, never adopted, logs "applied").
check "A2 rust: the deploy's log: outcome adopted once per drizzle room, applied once for gamma" \
  "$(jget "const rooms = $rooms; d.map(l => l.outcome + \":\" + (rooms[l.object] || l.object)).sort().join(\",\")")" \
  "adopted:alpha,adopted:beta,applied:gamma"

deploy A3 reactions rust "$state_a"
http GET /rooms/alpha/schema
check "A3 restart: nothing applied (3 -> 3), not adopted again" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length].join(";")')" "false;3;3;0"
ROWS_READ="$(jget d.last_run.rows_read)"
check "A3 restart: the up-to-date check read 1 row (last_run.rows_read)" "$ROWS_READ" 1
check "A3 restart: tracking rows 1,2,3" "$(versions)" "1,2,3"
http GET /rooms/alpha/messages
check "A3 restart: data kept (alice, bob, dan; reactions 1,0,0)" \
  "$CODE:$(jget 'd.messages.map(m => m.author + m.reactions).join(",")')" "200:alice1,bob0,dan0"
http GET /rooms/alpha/export
check "A3 restart: drizzle's table still unchanged" "$(ledger_snapshot)" "$ledger_alpha"
http GET /rooms/beta/schema
check "A3 restart: beta reads 1 row too, applies nothing" \
  "$(jget '[d.last_run.rows_read, d.last_run.applied.length, d.stored_version].join(";")')" "1;0;3"
DS_WAIT=0 ds_log "*"
check "A3 restart: no durable-schema log line" "$(jget d.length)" 0

# ==== Scenario B: drizzle skipped an older migration ===================================
deploy B1 base ts "$state_b"
http POST /rooms/delta/messages '{"author":"erin","body":"before the merge"}'
check "B1 drizzle: room delta written (201)" "$CODE" 201
http GET /rooms/delta/drizzle-migrations
check "B1 drizzle: delta's table records T0, T2" "$(jget 'd.rows.map(r => r.created_at).join(",")')" "$T0,$T2"

deploy B2 merged ts "$state_b"
http GET /rooms/delta/messages
check "B2 drizzle: with the merged journal delta still serves (200, 1 message)" "$CODE:$(jget d.count)" "200:1"
http GET /rooms/delta/drizzle-migrations
check "B2 drizzle: the journal now has 0001_add_reactions @T1 (T0 < T1 < T2) as idx 1" \
  "$(jget 'd.journal.map(e => e.idx + ":" + e.tag + "@" + e.when).join(",")')" \
  "0:0000_create_messages@$T0,1:0001_add_reactions@$T1,2:0002_index_by_author@$T2"
check "B2 drizzle: it skipped 0001_add_reactions silently (still 2 rows: T0, T2)" \
  "$(jget 'd.rows.map(r => r.created_at).join(",")')" "$T0,$T2"
http GET /rooms/delta/export
ledger_delta="$(ledger_snapshot)"
check "B2 drizzle: delta has no reactions column" "$(jget 'd.messages.columns.join(",")')" "id,author,body,sent_at"
http POST /rooms/epsilon/messages '{"author":"fay","body":"after the merge"}'
check "B2 drizzle: a new room epsilon (201)" "$CODE" 201
http GET /rooms/epsilon/export
check "B2 drizzle: epsilon got all three (T0, T1, T2; reactions column)" \
  "$(ledger_rows);$(jget 'd.messages.columns.join(",")')" "$T0|,$T1|,$T2|;id,author,body,sent_at,reactions"

deploy B3 merged rust "$state_b"
http GET /rooms/delta/messages
check "B3 rust: delta answers 503, kind ledger_mismatch" "$CODE:$(jget d.migration.kind)" "503:ledger_mismatch"
say "  response: $(printf '%s' "$BODY" | head -c 400)"
check "B3 rust: the error names the skipped version 2" \
  "$(jget '/skipped by drizzle: version 2\)/.test(d.migration.message)')" true
http POST /rooms/delta/messages '{"author":"erin","body":"refused"}'
check "B3 rust: writes refused too (503)" "$CODE:$(jget d.migration.kind)" "503:ledger_mismatch"
http GET /rooms/delta/schema
delta_id="$(jget d.object_id)"
check "B3 rust: /schema answers with the same error (status and last_run)" \
  "$CODE;$(jget d.status_error.kind);$(jget d.last_run.error.kind)" "200;ledger_mismatch;ledger_mismatch"
http GET /rooms/delta/export
check "B3 rust: nothing written (no migrations table, no failure record)" "$(tables)" "__drizzle_migrations,messages"
check "B3 rust: drizzle's table and delta's data unchanged" \
  "$(ledger_snapshot);$(jget 'd.messages.rows.map(r => r.body).join(",")')" \
  "$ledger_delta;before the merge"
ds_log "$delta_id"
check "B3 rust: delta's log: one failed line, ledger_mismatch" \
  "$(jget 'd.map(l => l.outcome + ":" + l.error.kind).join(",")')" "failed:ledger_mismatch"
http GET /rooms/epsilon/messages
check "B3 rust: epsilon (all three applied by drizzle) serves (200)" "$CODE:$(jget 'd.messages.map(m => m.body).join(",")')" "200:after the merge"
http GET /rooms/epsilon/schema
epsilon_id="$(jget d.object_id)"
check "B3 rust: epsilon adopted at 3, nothing to apply" \
  "$(jget '[d.last_run.adopted, d.last_run.from_version, d.last_run.to_version, d.last_run.applied.length, d.stored_version].join(";")');$(versions)" \
  "true;3;3;0;3;1,2,3"
ds_log "$epsilon_id"
check "B3 rust: epsilon's log: one adopted line, 3 -> 3" \
  "$(jget 'd.map(l => [l.outcome, l.from, l.to, l.applied.length].join(";")).join(" ")')" "adopted;3;3;0"

stop_wrangler

# ---- never a panic, never an unhandled rejection -------------------------------------
check_deploy_logs
finish
