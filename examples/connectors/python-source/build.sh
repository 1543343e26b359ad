#!/usr/bin/env bash
# Builds python_source.wasm from app.py with componentize-py, installed from PyPI if missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v componentize-py >/dev/null 2>&1; then
  python3 -m pip install --quiet componentize-py
fi
# A scaffolded project carries its own copy of the WIT files; inside the busbar repository, use the real ones.
if [ -d wit ]; then wit=wit; else wit=../../../wit; fi
out="${OUT:-python_source.wasm}"
componentize-py -d "$wit" -w busbar:connector/source componentize app -o "$out"
echo "built $out"
