#!/usr/bin/env bash
# shardfold's core (aggregates, dedup, windows, codec, hash: no features, no tokio, no store) on
# wasm32. Builds the library for wasm32-unknown-unknown and wasm32-wasip1 (no features; and
# `derive` for the first), builds the wasm-check program (wasm-check/, its own workspace) for
# wasm32-wasip1 and for the host, runs the first under Node's WASI (wasm-check/run.mjs) and the
# second natively, and diffs their output: one line per folded state, the length and xxh3 of its
# encoded bytes. Any build or run failure, or any differing line, exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# CI runs on a clean clone: build where the caller says, else under ./target (absolute, since
# the wasm-check build runs from its own manifest)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
check_dir=$target_dir/wasm-check
host=$(rustc -vV | sed -n 's/^host: //p')

installed=$(rustup target list --installed)
for t in wasm32-unknown-unknown wasm32-wasip1; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

command -v node >/dev/null 2>&1 || { echo "wasm-check: node (20 or later) is not installed"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "wasm-check: node $(node --version) is too old: need 20 or later (node:wasi preview1)"; exit 1; }

for t in wasm32-unknown-unknown wasm32-wasip1; do
  echo "-- the library, no features, $t"
  CARGO_TARGET_DIR=$target_dir cargo build --quiet -p shardfold --no-default-features --target "$t"
done
echo "-- the library, derive, wasm32-unknown-unknown"
CARGO_TARGET_DIR=$target_dir cargo build --quiet -p shardfold --no-default-features \
  --features derive --target wasm32-unknown-unknown

echo "-- wasm-check for wasm32-wasip1 and $host"
CARGO_TARGET_DIR=$check_dir cargo build --quiet --locked --release \
  --manifest-path wasm-check/Cargo.toml --target wasm32-wasip1
CARGO_TARGET_DIR=$check_dir cargo build --quiet --locked --release \
  --manifest-path wasm-check/Cargo.toml

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "-- run: node (WASI preview1) and native"
node --disable-warning=ExperimentalWarning wasm-check/run.mjs \
  "$check_dir/wasm32-wasip1/release/wasm-check.wasm" >"$out/wasm32-wasip1.txt"
"$check_dir/release/wasm-check" >"$out/$host.txt"

n=$(wc -l <"$out/$host.txt")
[ "$n" -gt 0 ] || { echo "wasm-check: the native run printed nothing"; exit 1; }
if ! diff -u "$out/$host.txt" "$out/wasm32-wasip1.txt"; then
  echo "MISMATCH: wasm32-wasip1 and $host encode the same states to different bytes (diff above;" \
    "run both with --hex for the full bytes)"
  exit 1
fi
sed 's/^/   /' "$out/$host.txt"
states=$(grep -vc '^hash ' "$out/$host.txt" || true)
echo "wasm32-wasip1 and $host encode $states states to identical bytes and agree on the hash" \
  "vectors (every fold-order check passed on both)"
