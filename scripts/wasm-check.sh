#!/usr/bin/env bash
# `cargo check` of the runtime (and the facade) for wasm32-unknown-unknown,
# where the Durable Object backend lives, with Debian's toolchain and
# build-std (rustup cannot add the wasm32 target on these machines; see
# scripts/wasm-env.sh). The Worker example is built for real by scripts/e2e.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

env_file="$(bash scripts/wasm-env.sh Cargo.lock)"
# shellcheck source=/dev/null
source "$env_file"

# Debian's rustc and rustup's would keep invalidating each other's artifacts
# in a shared target directory.
export CARGO_TARGET_DIR="$PWD/target/wasm32-check"
ds_wasm_cargo check --locked --target wasm32-unknown-unknown \
  -Z build-std=std,panic_abort \
  -p durable-schema-runtime -p durable-schema
echo "wasm-check: runtime and facade check for wasm32-unknown-unknown"
