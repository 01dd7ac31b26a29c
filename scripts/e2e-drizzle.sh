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
# Then the scenarios of scripts/e2e/drizzle-chat.test.mjs run with `node --test`:
# they deploy the builds over persisted Durable Object state (scenario A: drizzle's
# history adopted; B: drizzle skipped an older migration, the Rust build refuses)
# and drive them with fetch on 127.0.0.1 (the table of deploys is at the top of
# that file; wrangler/workerd, the requests and the counted checks are
# scripts/e2e/harness.mjs).
#
# Usage: scripts/e2e-drizzle.sh   toolchain from scripts/wasm-env.sh (as e2e.sh);
#          drizzle-orm from examples/drizzle-chat/ts/package-lock.json (`npm ci`,
#          skipped while node_modules matches the lockfile). The wasm target dir
#          is e2e.sh's (examples/worker-chat/target), so after e2e.sh the two Rust
#          builds take ~10 s each. Warm total: ~1 min.
# Env:   E2E_WORK  work dir (default examples/drizzle-chat/target/e2e); state dirs
#                  always start fresh.
# Output: PASS/FAIL per check, node's report per scenario, and last a line
#         `e2e-drizzle: N passed, M failed`
#         (exit status 1 when M > 0). Logs: $E2E_WORK/logs/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
example="$root/examples/drizzle-chat"
work="${E2E_WORK:-$example/target/e2e}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
logs="$work/logs"
class="ChatRoom"

# say/fail/finish/abort, toolchain, sync_file, node_suite: scripts/e2e-lib.sh
# (shared with e2e.sh)
E2E_NAME="e2e-drizzle"
# shellcheck source=scripts/e2e-lib.sh
source "$here/e2e-lib.sh"

# ---- toolchain ------------------------------------------------------------------
toolchain "$example/rust/Cargo.lock"
mkdir -p "$logs"
rm -f "$logs"/*.log
harness_selftest

# drizzle-orm, exactly as the committed lockfile says. npm ci replaces
# node_modules, so it runs only when the lockfile changed since the last one.
ts_modules="$example/ts/node_modules"
if ! cmp -s "$example/ts/package-lock.json" "$ts_modules/.e2e-drizzle-lock" 2>/dev/null; then
  say "npm ci in examples/drizzle-chat/ts (drizzle-orm from the npm registry)"
  (cd "$example/ts" && PATH="$DS_NODE_BIN:$PATH" npm ci --no-audit --no-fund --loglevel=error) \
    >"$logs/npm-ci.log" 2>&1 || { tail -n 20 "$logs/npm-ci.log"; abort "npm ci" "see $logs/npm-ci.log"; }
  cp "$example/ts/package-lock.json" "$ts_modules/.e2e-drizzle-lock"
fi
# (the installed version and drizzle/migrations.js are the suite's first checks)

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

# ---- the scenarios ------------------------------------------------------------------
rm -rf "$work/state-a" "$work/state-b"
mkdir -p "$work/state-a" "$work/state-b"
node_suite "$here/e2e/drizzle-chat.test.mjs" E2E_EXAMPLE="$example"
finish
