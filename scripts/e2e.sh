#!/usr/bin/env bash
# e2e.sh — durable-schema end to end, in real workerd (wrangler dev --local).
#
# Builds examples/worker-chat in eleven variants (its migrations plus files from
# examples/worker-chat/variants/), then runs four suites of scenarios with
# `node --test`, each over state dirs of its own: they deploy the builds one
# after another over persisted Durable Object state and drive the Worker with
# fetch on 127.0.0.1 (the table of deploys and what each proves is at the top
# of each file; the start, stop and kill of wrangler/workerd, the requests and
# the counted checks are scripts/e2e/harness.mjs).
#
#   suite (scripts/e2e/)  deploys  state     scenarios
#   interrupted.test.mjs  19-22    slow      a run SIGKILLed mid-migration: reported
#                                            interrupted, not re-run (issue 21)
#   queries.test.mjs      23       q         checked queries (issue 19)
#   batch.test.mjs        24-27    batch     a batched backfill over many budgets, served
#                                            meanwhile, a kill mid-way (issue 21)
#   worker-chat.test.mjs  1-18     main, fk, rollback  fresh objects ... a dangling foreign key;
#                                            last, every deploy's log of the run
#
# The three small suites run first so that worker-chat.test.mjs's last scenario,
# which searches every deploy-*.log for panics and unhandled rejections,
# covers their deploys too; their deploys are numbered after its eighteen.
#
#   build      migrations
#   v2         the example's 0001, 0002
#   v3         + variants/v3 (0003_add_reactions)
#   bad        + variants/bad (a 0004 that fails on a double-post)
#   fixed      + variants/fixed (the fixed 0004, a lock declaring it a replacement)
#   v2-strict  v2 with `strict = true`
#   edited     v2 with variants/edited's 0002 (edited after it was applied)
#   fk         + variants/fk (0003, 0004 leaving a deferred foreign key dangling)
#   additive   + variants/v3, variants/additive (an additive 0004: a new column)
#   breaking   + variants/v3, variants/breaking (a 0004 dropping reactions, acknowledged
#              with `-- durable-schema: breaking`; its src/lib.rs reads no reactions)
#   slow       + variants/slow (0003, a 30-million-row backfill to be killed)
#   batch      + variants/batch (0003 fills 500,000 rows, 0004 backfills them with
#              `-- durable-schema: batch`, 0005 with a range batch, `batch over
#              filler limit 1000`; its src/lib.rs sets budget_ms = 100)
#
# Before the deploys, durable_schema::testing's model of a Durable Object
# fails the bad 0004 natively (tests/testing.rs), for the suite to compare
# with workerd's error.
#
# Usage: scripts/e2e.sh   installs the toolchain on first use (scripts/wasm-env.sh,
#                          ~14 min on a fresh machine). Then: ~5 min with a cold wasm
#                          target dir, ~2 min when the crate changed (10 x ~8 s
#                          builds + ~1.5 min of deploys), ~1.5 min when nothing changed.
# Env:   E2E_WORK   work dir (default examples/worker-chat/target/e2e)
#        E2E_KEEP=1 keep the main state dir of the previous run (default: start
#                   fresh; the fk, rollback, slow and q state dirs always start fresh)
# Output: PASS/FAIL per check, node's report per scenario, and last a line
#         `e2e: N passed, M failed` over the four suites (exit status 1 when
#         M > 0). Logs: $E2E_WORK/logs/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
example="$root/examples/worker-chat"
work="${E2E_WORK:-$example/target/e2e}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
state="$work/state"
state_fk="$work/state-fk"
state_rollback="$work/state-rollback"
state_slow="$work/state-slow"
state_q="$work/state-q"
state_batch="$work/state-batch"
logs="$work/logs"
class="ChatRoom"

# say/fail/finish/abort, toolchain, sync_file, node_suite: scripts/e2e-lib.sh
# (shared with e2e-drizzle.sh)
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
harness_selftest

# make_variant NAME [--strict] [variant-subdir...]: a copy of the example
# crate plus the extra migration files, built into $work/crates/NAME/build.
# A variant file named like a base file (or like one of an earlier subdir)
# replaces it: variants/edited/0002_... stands in for migrations/0002_...
# A subdir's durable-schema.lock becomes the copy's history lock, and its
# lib.rs.sed (a sed script) edits the copy's src/lib.rs.
# --strict: the copy's attribute gets `strict = true`.
# Each copy gets its own package name (worker-chat-e2e-NAME): with one shared
# target dir, same-named copies would share one cargo unit and fingerprint, and
# cargo could hand one variant's stale .wasm to another.
make_variant() {
  local name="$1"; shift
  local strict=0
  if [[ "${1:-}" == --strict ]]; then strict=1; shift; fi
  local dir="$work/crates/$name"
  local t=$SECONDS f
  mkdir -p "$dir/src" "$dir/migrations" "$dir/.cargo"
  # basename -> source file; later sources win
  local -A pick=()
  local lock_src=""
  local -a seds=()
  for f in "$example"/migrations/*.sql; do pick[$(basename "$f")]="$f"; done
  local v
  for v in "$@"; do
    [[ -d "$example/variants/$v" ]] || abort "build $name" "no variants/$v"
    for f in "$example/variants/$v"/*.sql; do pick[$(basename "$f")]="$f"; done
    # a history lock (durable-schema.lock) travels with its variant
    [[ -f "$example/variants/$v/durable-schema.lock" ]] && lock_src="$example/variants/$v/durable-schema.lock"
    # so does a sed script for the copy's src/lib.rs (code that adapts to a
    # migration CURRENT_SCHEMA_VERSION cannot tell apart: a dropped column)
    [[ -f "$example/variants/$v/lib.rs.sed" ]] && seds+=("$example/variants/$v/lib.rs.sed")
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
  if [[ $strict -eq 1 || ${#seds[@]} -gt 0 ]]; then
    cp "$example/src/lib.rs" "$dir/lib.rs.new"
  fi
  if [[ $strict -eq 1 ]]; then
    local attr='#[durable_schema(dir = "migrations")]'
    grep -qF "$attr" "$example/src/lib.rs" || abort "build $name" "src/lib.rs has no $attr to make strict"
    sed -i -e 's/^#\[durable_schema(dir = "migrations")\]$/#[durable_schema(dir = "migrations", strict = true)]/' \
      "$dir/lib.rs.new"
    grep -qF 'strict = true' "$dir/lib.rs.new" || abort "build $name" "could not set strict = true"
  fi
  local script
  for script in "${seds[@]}"; do
    cp "$dir/lib.rs.new" "$dir/lib.rs.before"
    sed -i -f "$script" "$dir/lib.rs.new"
    # a script that no longer matches the example would build the unchanged code
    ! cmp -s "$dir/lib.rs.before" "$dir/lib.rs.new" || abort "build $name" "$script changed nothing in src/lib.rs"
    rm -f "$dir/lib.rs.before"
  done
  if [[ -f "$dir/lib.rs.new" ]]; then
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
  say "build $name: migrations $(cd "$dir/migrations" && echo *.sql)$([[ $strict -eq 1 ]] && echo ' (strict = true)')$([[ ${#seds[@]} -gt 0 ]] && echo ' (src/lib.rs edited by' "${seds[@]#"$example"/}"')')"
  if ! bash "$root/scripts/build-worker.sh" "$dir" "$dir/build" "$class" >"$logs/build-$name.log" 2>&1; then
    tail -n 30 "$logs/build-$name.log"
    abort "build $name" "see $logs/build-$name.log"
  fi
  say "build $name: ok ($((SECONDS - t)) s)"
}

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
make_variant v2
make_variant v3 v3
make_variant bad v3 bad
make_variant fixed v3 fixed
make_variant v2-strict --strict
make_variant edited edited
make_variant fk fk
make_variant additive v3 additive
make_variant breaking v3 breaking
make_variant slow slow
make_variant batch batch
say "builds done in $((SECONDS - t_build)) s"

# ---- the scenarios ------------------------------------------------------------------
if [[ -z "${E2E_KEEP:-}" ]]; then rm -rf "$state"; fi
rm -rf "$state_fk" "$state_rollback" "$state_slow" "$state_q" "$state_batch"
mkdir -p "$state" "$state_fk" "$state_rollback" "$state_slow" "$state_q" "$state_batch"
# node_suite adds each suite's counts to the last line's
node_suite "$here/e2e/interrupted.test.mjs"
node_suite "$here/e2e/queries.test.mjs"
node_suite "$here/e2e/batch.test.mjs"
node_suite "$here/e2e/worker-chat.test.mjs" E2E_CROSSCHECK="$crosscheck"
finish
