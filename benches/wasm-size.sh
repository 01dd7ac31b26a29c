#!/usr/bin/env bash
# wasm-size.sh — what durable-schema adds to a Worker's wasm, which every
# Worker pays on every cold start (issue 18, item 8).
#
# Generates two minimal workers-rs crates, each a SQLite-backed Durable Object
# with one table and one route (the Worker's fetch forwards to the object,
# which inserts a row and answers the row count):
#
#   plain   the table created with `sql.exec("CREATE TABLE IF NOT EXISTS ...")`
#   schema  `#[durable_schema(dir = "migrations")]`, `Self::migrate(&state)` in
#           `new` and `durable_schema::worker::sql(&self.state, &Self::SCHEMA)`
#           in `fetch` (the README's quickstart pattern)
#
# Both use `opt-level = "s"`, `lto = true`, `panic = "abort"` and are built with
# scripts/build-worker.sh into one CARGO_TARGET_DIR. Prints the raw and gzipped
# (-9) size of each index_bg.wasm (what wrangler uploads), their difference,
# and the largest contributors to the difference, by crate (from the wasm name
# section: each function's code size, attributed to the first path segment of
# its demangled name) and by function. No threshold: a report, not a check.
#
# Usage: benches/wasm-size.sh
# Env:   WS_WORK        work dir (default ${TMPDIR:-/tmp}/durable-schema-wasm-size;
#                       outside the repository, whose workspace would claim the crates)
#        WS_WASM_TARGET CARGO_TARGET_DIR (default examples/worker-chat/target: after
#                       scripts/e2e.sh every dependency is built there, same profile)
#        WS_TOP         how many rows in each breakdown (default 15)
#        WS_WASM_OPT    a binaryen wasm-opt (e.g. npm binaryen@132's): also
#                       reports both modules after what workers-rs's
#                       worker-build runs on a release build (`wasm-opt -O
#                       --all-features --debuginfo`, names kept), what ships
#                       from a worker-build project. Both reports, never one.
# The crates start from examples/worker-chat/Cargo.lock (the versions e2e builds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="${WS_WORK:-${TMPDIR:-/tmp}/durable-schema-wasm-size}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
case "$work/" in
  "$root"/*) echo "WS_WORK must be outside the repository ($root)" >&2; exit 2 ;;
esac
target="${WS_WASM_TARGET:-$root/examples/worker-chat/target}"
top="${WS_TOP:-15}"

# Writes $2 only when its content differs from stdin (an unchanged file keeps
# its mtime, so cargo does not rebuild the crate).
put() {
  local tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  mkdir -p "$(dirname "$1")"
  if cmp -s "$tmp" "$1" 2>/dev/null; then rm -f "$tmp"; else mv -f "$tmp" "$1"; fi
}

# ---- the two crates ------------------------------------------------------------
gen() { # NAME: writes $work/NAME
  local name="$1" dir="$work/$1" dep=""
  if [[ "$name" == schema ]]; then
    dep="durable-schema = { path = \"$root\" }"
  fi
  put "$dir/Cargo.toml" <<EOF
[package]
name = "wasm-size-$name"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
$dep
worker = "=0.8.7"
wasm-bindgen = "=0.2.130"

[profile.release]
panic = "abort"
opt-level = "s"
lto = true

[profile.release.build-override]
opt-level = 3

[workspace]
EOF
  [[ -f "$dir/Cargo.lock" ]] || cp "$root/examples/worker-chat/Cargo.lock" "$dir/Cargo.lock"
  put "$dir/migrations/0001_create_hits.sql" <<'EOF'
CREATE TABLE hits (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
EOF
  # The object differs (how the table comes to be), the route does not.
  if [[ "$name" == schema ]]; then
    put "$dir/src/lib.rs" <<'EOF'
use worker::*;

mod route;

#[durable_object]
#[durable_schema::durable_schema(dir = "migrations")]
pub struct Hits {
    state: State,
}

impl DurableObject for Hits {
    fn new(state: State, _env: Env) -> Self {
        Self::migrate(&state);
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let sql = match durable_schema::worker::sql(&self.state, &Self::SCHEMA) {
            Ok(sql) => sql,
            Err(e) => return Response::error(e.to_string(), 503),
        };
        route::hit(&sql, &req)
    }
}
EOF
  else
    put "$dir/src/lib.rs" <<'EOF'
use worker::*;

mod route;

#[durable_object]
pub struct Hits {
    state: State,
}

impl DurableObject for Hits {
    fn new(state: State, _env: Env) -> Self {
        let created = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT NOT NULL)",
            None,
        );
        if let Err(e) = created {
            console_error!("create table: {e}");
        }
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        route::hit(&self.state.storage().sql(), &req)
    }
}
EOF
  fi
  put "$dir/src/route.rs" <<'EOF'
use worker::*;

/// The one route: records the request's path, answers the row count.
pub fn hit(sql: &SqlStorage, req: &Request) -> Result<Response> {
    sql.exec("INSERT INTO hits (path) VALUES (?)", vec![req.path().into()])?;
    let row = sql.exec("SELECT count(*) FROM hits", None)?.raw().next().transpose()?;
    let n = match row.as_deref() {
        Some([SqlStorageValue::Integer(n)]) => *n,
        _ => 0,
    };
    Response::ok(n.to_string())
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let stub = env.durable_object("HITS")?.id_from_name("hits")?.get_stub()?;
    stub.fetch_with_request(req).await
}
EOF
}

for v in plain schema; do
  gen "$v"
  printf '[wasm-size] building %s (CARGO_TARGET_DIR=%s)\n' "$v" "$target" >&2
  if ! CARGO_TARGET_DIR="$target" bash "$root/scripts/build-worker.sh" \
    "$work/$v" "$work/$v/build" Hits >"$work/$v.log" 2>&1; then
    tail -n 40 "$work/$v.log" >&2
    echo "[wasm-size] build of $v failed (log: $work/$v.log)" >&2
    exit 1
  fi
done

# ---- sizes and breakdown ------------------------------------------------------------
echo "== as built by scripts/build-worker.sh (what the e2e suites deploy)"
python3 "$here/wasm_size.py" --top "$top" "$work/plain/build/index_bg.wasm" "$work/schema/build/index_bg.wasm"
if [[ -n "${WS_WASM_OPT:-}" ]]; then
  for v in plain schema; do
    "$WS_WASM_OPT" -O --all-features --debuginfo "$work/$v/build/index_bg.wasm" -o "$work/$v/build/opt.wasm"
  done
  echo
  echo "== after worker-build's wasm-opt ($("$WS_WASM_OPT" --version): -O --all-features --debuginfo)"
  python3 "$here/wasm_size.py" --top "$top" "$work/plain/build/opt.wasm" "$work/schema/build/opt.wasm"
fi
