#!/usr/bin/env bash
# Consumer-group suite: confluent-kafka (KIP-848 consumer protocol and classic) and kafka-python (PyPI) against
# a freshly started `busbar broker`: members joining and leaving mid-stream, a SIGKILLed member evicted after its
# session timeout, admin list/describe/lag/reset/delete. Exits non-zero on any failure; never skips.
set -euo pipefail
cd "$(dirname "$0")/../../.."

echo "--- installing clients"
python3 -m pip install --quiet --disable-pip-version-check confluent-kafka kafka-python

echo "--- building busbar"
# .ci/run passes the binary `cargo test` already built; run alone, the suite builds it.
bin="${BUSBAR_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --bin busbar
  bin="${CARGO_TARGET_DIR:-target}/debug/busbar"
fi

data=$(mktemp -d)
log="$data/broker.log"
cleanup() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

"$bin" broker --listen 127.0.0.1:0 --data-dir "$data/store" >"$data/stdout" 2>"$log" &
pid=$!
for _ in $(seq 1 100); do
  addr=$(sed -n 's/^busbar broker listening on //p' "$data/stdout")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "broker exited during start"; exit 1; }
  sleep 0.1
done
[ -n "${addr:-}" ] || { cat "$log"; echo "broker did not report its address"; exit 1; }
echo "--- broker on $addr"

if ! timeout 900 python3 broker/compat/groups/groups.py "$addr"; then
  echo "--- broker log (last 50 lines)"
  tail -50 "$log"
  exit 1
fi
kill -TERM "$pid"
wait "$pid"
pid=
echo "1 passed, 0 failed"
