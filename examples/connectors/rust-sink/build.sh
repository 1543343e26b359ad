#!/usr/bin/env bash
# Builds rust_sink.wasm, a busbar sink component. Installs the wasm32-wasip2 target if it is missing.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-wasip2
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --target wasm32-wasip2 --target-dir "$target"
cp "$target/wasm32-wasip2/release/rust_sink.wasm" rust_sink.wasm
echo "built $(pwd)/rust_sink.wasm"
