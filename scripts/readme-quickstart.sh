#!/usr/bin/env bash
# readme-quickstart.sh — the quickstart the README links to ("Use it in a
# Durable Object", docs/quickstart.md), built from that page itself, so it
# cannot drift from what works.
#
# Every fenced block right after a `<!-- quickstart: PATH -->` line of
# docs/quickstart.md
# is written to PATH in a fresh crate, $QS_WORK/my-worker, beside a symlink
# $QS_WORK/durable-schema to this checkout: the page's dependency line
# `durable-schema = { path = "../durable-schema" }` then means this checkout,
# as it means a clone for a reader. Then:
#
#   host     `cargo check` for the host (what rust-analyzer runs): it must
#            pass with no warning at all (a workers-rs crate, no feature flag).
#   --run    also: the wasm32 build with scripts/build-worker.sh (as the
#            page says, no `.cargo/config.toml`), no warning in it either,
#            `wrangler dev --local`, and the page's `<!-- quickstart-curl -->`
#            request must answer exactly the line the page shows.
#
# Usage: scripts/readme-quickstart.sh [--run]
# Env:   QS_WORK         work dir (default ${TMPDIR:-/tmp}/durable-schema-quickstart;
#                        outside the repository, whose workspace would claim the crate)
#        QS_WASM_TARGET  CARGO_TARGET_DIR of the wasm build (default
#                        examples/worker-chat/target: after scripts/e2e.sh every
#                        dependency is built there, same versions, same profile)
# The crate starts from examples/worker-chat/Cargo.lock (the versions the
# e2e builds), so the check needs the registry only for what that lacks.
# Output: PASS/FAIL per check, last `quickstart: N passed, M failed`.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
run=0
case "${1:-}" in
  "") ;;
  --run) run=1 ;;
  *) echo "usage: $0 [--run]" >&2; exit 2 ;;
esac
work="${QS_WORK:-${TMPDIR:-/tmp}/durable-schema-quickstart}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
case "$work/" in
  "$root"/*) echo "QS_WORK must be outside the repository ($root)" >&2; exit 2 ;;
esac
crate="$work/my-worker"
logs="$work/logs"
mkdir -p "$logs"

page="$root/docs/quickstart.md"

E2E_NAME="quickstart"
# shellcheck source=scripts/e2e-lib.sh
source "$here/e2e-lib.sh"

# ---- the crate, from the page ---------------------------------------------------
# Prints "PATH" lines to stdout, writes each block to $1/PATH; fails on a marker
# without a fence right after it, an unclosed fence or a path leaving the crate.
extract() {
  awk -v out="$1" '
    function fail(msg) { print "docs/quickstart.md:" NR ": " msg > "/dev/stderr"; bad = 1; exit 1 }
    state == 0 && /^<!-- quickstart: [^ ]+ -->$/ {
      path = $3
      if (path ~ /^\// || path ~ /\.\./) fail("quickstart path leaves the crate: " path)
      if (seen[path]++) fail("quickstart path given twice: " path)
      state = 1; next
    }
    state == 1 {
      if ($0 !~ /^```/) fail("a quickstart marker must be followed by a fenced block")
      file = out "/" path
      dir = file; sub(/\/[^\/]*$/, "", dir)
      system("mkdir -p \"" dir "\"")
      printf "" > file
      print path
      state = 2; next
    }
    state == 2 {
      if ($0 ~ /^```$/) { close(file); state = 0; next }
      print $0 >> file
    }
    END { if (!bad && state != 0) fail("unclosed quickstart block at the end") }
  ' "$page"
}

staging="$work/staging"
rm -rf "$staging"
mkdir -p "$staging"
files="$(extract "$staging")" || abort "quickstart blocks" "see the message above"
for f in Cargo.toml wrangler.toml build.rs src/lib.rs; do
  grep -qxF "$f" <<<"$files" || abort "quickstart blocks" "no <!-- quickstart: $f --> block"
done
check "quickstart: $(wc -l <<<"$files") files" "$(grep -c '^migrations/' <<<"$files") migrations" "2 migrations"
# The generated crate is exactly the page's files (plus the lock and build
# outputs); unchanged files keep their mtime, so cargo does not rebuild them.
while IFS= read -r f; do sync_file "$staging/$f" "$crate/$f"; done <<<"$files"
while IFS= read -r f; do
  rel="${f#"$crate"/}"
  grep -qxF "$rel" <<<"$files" || rm -f "$f"
done < <(find "$crate" -path "$crate/target" -prune -o -path "$crate/build" -prune \
  -o -path "$crate/.wrangler" -prune -o -type f \( -name '*.rs' -o -name '*.sql' -o -name '*.toml' \) -print)
ln -sfn "$root" "$work/durable-schema"
[[ -f "$crate/Cargo.lock" ]] || cp "$root/examples/worker-chat/Cargo.lock" "$crate/Cargo.lock"

# ---- host check: the page's lines, no feature flag, no warning --------------------
say "cargo check on the host ($(rustc -vV | sed -n 's/^host: //p'))"
(cd "$crate" && CARGO_TARGET_DIR="$work/target" cargo check --color never) >"$logs/host-check.log" 2>&1
status=$?
check "host cargo check of the quickstart crate succeeds" "$status" "0"
warnings="$(grep -E '^(warning|error)' "$logs/host-check.log" || true)"
check "host cargo check prints no warning" "$warnings" ""
[[ $status -eq 0 ]] || tail -n 40 "$logs/host-check.log"

if [[ $run -eq 0 ]]; then finish; fi

# ---- the wasm build and a request in workerd --------------------------------------
toolchain "$crate/Cargo.lock"
wrangler_traps
t=$SECONDS
say "wasm build (scripts/build-worker.sh $crate build Chat)"
CARGO_TARGET_DIR="${QS_WASM_TARGET:-$root/examples/worker-chat/target}" \
  bash "$root/scripts/build-worker.sh" "$crate" "$crate/build" Chat >"$logs/wasm-build.log" 2>&1
status=$?
check "wasm build of the quickstart crate succeeds" "$status" "0"
[[ $status -eq 0 ]] || { tail -n 40 "$logs/wasm-build.log"; finish; }
say "wasm build: $((SECONDS - t)) s"
warnings="$(grep -E '^(warning|error)' "$logs/wasm-build.log" || true)"
check "wasm build prints no warning" "$warnings" ""

# The page's request and the answer it shows.
curl_block="$(awk '/^<!-- quickstart-curl -->$/ { on = 1; next }
  on == 1 && /^```/ { on = 2; next } on == 2 && /^```$/ { exit } on == 2 { print }' "$page")"
request="$(sed -n '1s/^\$ //p' <<<"$curl_block")"
expected="$(sed -n '2p' <<<"$curl_block")"
[[ "$request" == "curl "*"http://127.0.0.1:8787/"* && -n "$expected" ]] \
  || abort "quickstart request" "no '\$ curl ... http://127.0.0.1:8787/...' line and answer after <!-- quickstart-curl -->"

PORT="$(free_port)"
LOG="$logs/deploy-1.log"
DEPLOY=1
rm -rf "$work/state"
# serde_json's objects keep their keys sorted: the answer starts with
# "messages", whatever order the code writes them in.
wrangler_up "$crate" "$work/state" "quickstart" '{"messages":'
read -r -a args <<<"${request#curl }"
answer="$(curl --max-time 20 "${args[@]/8787/$PORT}" 2>/dev/null)"
check "quickstart request: $request" "$answer" "$expected"
check_deploy_logs
finish
