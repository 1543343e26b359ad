#!/usr/bin/env bash
# Builds js_sink.wasm from sink.js; installs componentize-js (npm) locally if missing.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@bytecodealliance/componentize-js ]; then
  npm install --no-audit --no-fund
fi
node componentize.mjs
