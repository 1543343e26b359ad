#!/usr/bin/env bash
# Installs what the console's browser tests need, by package name: Chromium from Debian when no Chromium is
# found, and playwright-core from npm (the version package-lock.json pins) into tests/console/node_modules.
# Idempotent: does nothing that is already done. Prints the browser it found on its last line.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

find_chromium() {
  if [ -n "${BUSBAR_CHROMIUM:-}" ] && [ -x "$BUSBAR_CHROMIUM" ]; then echo "$BUSBAR_CHROMIUM"; return 0; fi
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! find_chromium >/dev/null || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages=()
  find_chromium >/dev/null || packages+=(chromium)
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  echo "console tests: installing ${packages[*]} (apt-get)" >&2
  as_root apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${packages[@]}" >/dev/null
  }
fi

# npm ci when node_modules does not match the lock file (npm records what it installed there).
if ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  if [ ! -d node_modules ] || ! node -e '
    const want = require("./package-lock.json").packages["node_modules/playwright-core"].version;
    process.exit(require("./node_modules/playwright-core/package.json").version === want ? 0 : 1)' 2>/dev/null; then
    echo "console tests: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
fi

find_chromium
