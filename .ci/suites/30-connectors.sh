#!/usr/bin/env bash
# Connectors in JavaScript, Python and Rust through busbar's host. Installs the toolchains by package name
# (node and npm from Debian when missing, componentize-js from npm, componentize-py from PyPI), builds the example
# connectors from source, and drives them with `busbar connector inspect|test` against a real local HTTP server
# and a real SQLite file, checking what they actually did. Also scaffolds a JavaScript and a Python project with
# `busbar connector new` and tests those. Fails loudly on any error; never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d)
cleanup() {
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "--- connectors: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

log "toolchains"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check componentize-py
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target list --installed | grep -qx wasm32-wasip2 \
  || fail "the wasm32-wasip2 Rust target is missing and rustup could not add it"
echo "node $(node --version), npm $(npm --version), $(componentize-py --version)"

log "busbar binary"
# .ci/run passes the binary `cargo test` already built; run alone, the suite builds it.
busbar="${BUSBAR_BIN:-}"
if [ -z "$busbar" ]; then
  cargo build --quiet --bin busbar
  busbar="$root/${CARGO_TARGET_DIR:-target}/debug/busbar"
fi
[ -x "$busbar" ] || fail "no busbar binary at $busbar"
export BUSBAR_CACHE_DIR="$work/cache"

# A real HTTP server on 127.0.0.1:<free port>: GET /items?after=<id>&limit=<n> serves the items with ids 1..5 after
# the cursor; POST records the JSON body; GET /received returns what was posted.
cat > "$work/server.py" <<'PY'
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs
received = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        u = urlsplit(self.path); q = parse_qs(u.query)
        if u.path == "/received": return self.reply(200, received)
        after = int((q.get("after") or ["0"])[0] or 0); limit = int((q.get("limit") or ["10"])[0])
        self.reply(200, [{"id": i, "name": f"item {i}"} for i in range(after + 1, 6)][:limit])
    def do_POST(self):
        n = int(self.headers.get("content-length", 0)); received.append(json.loads(self.rfile.read(n)))
        self.reply(200, {"ok": True})
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/server.py" > "$work/port" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -1 "$work/port")
[ -n "$port" ] || fail "the test HTTP server did not start"
received_count() { curl -sf "http://127.0.0.1:$port/received" | python3 -c 'import json,sys; print(sum(len(b) for b in json.load(sys.stdin)))'; }

log "js-sink: build with componentize-js"
cp -r examples/connectors/js-sink "$work/js-sink"
ln -s "$root/wit" "$work/js-sink/wit"
(cd "$work/js-sink" && ./build.sh)
js="$work/js-sink/js_sink.wasm"
[ -s "$js" ] || fail "componentize-js did not produce $js"

log "js-sink: inspect"
"$busbar" connector inspect "$js" | tee "$work/inspect-js.txt"
grep -q "^world:   busbar:connector/sink@0.1.0$" "$work/inspect-js.txt" || fail "js-sink: not reported as the sink world"
grep -q "^needs:   http$" "$work/inspect-js.txt" || fail "js-sink: does not declare that it needs http"
grep -q "busbar:connector/sink-connector@0.1.0: describe, open, write, close" "$work/inspect-js.txt" \
  || fail "js-sink: exports not listed"

log "js-sink: compliance, posting to the local server"
"$busbar" connector test "$js" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}" | tee "$work/js-test.txt"
grep -q "PASS write returns one outcome per event: 3 events: 3 ok, 0 retryable, 0 fatal" "$work/js-test.txt" \
  || fail "js-sink: the three sample events were not all ok"
curl -sf "http://127.0.0.1:$port/received" > "$work/received.json"
python3 - "$work/received.json" <<'PY'
import json, sys
batches = json.load(open(sys.argv[1]))
events = [e for b in batches for e in b]
# The harness writes its three sample events twice (before and after a restart); empty batches post nothing.
assert len(events) == 6, f"expected 6 events posted by the JS sink, got {len(events)}: {batches}"
first = events[0]
assert first["detail-type"] == "order.created" and first["detail"] == {"id": 1, "total": 12.5, "customer": "ada"}, first
assert events[1]["detail"] == "not json at all", events[1]
print(f"the JS sink posted {len(events)} events in {len(batches)} batches")
PY

log "js-sink: without the http grant, fetch is refused inside busbar and nothing is posted"
# busbar answers the request with wasi:http's `HTTP-request-denied` before anything leaves the process. The fetch
# of componentize-js 0.23 does not turn that error code into a rejected promise: the guest aborts, so busbar reports
# the connector as failed (a trap, restarted with backoff) rather than getting retryable outcomes.
before=$(received_count)
set +e
"$busbar" connector test "$js" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" > "$work/denied.txt" 2> "$work/denied.log"
code=$?
set -e
grep -v '^ *[0-9]*: ' "$work/denied.txt"
[ "$code" = 1 ] || fail "js-sink without grants: expected a failed check (exit 1), got $code"
grep -q "outgoing HTTP denied: host not granted to this connector" "$work/denied.log" \
  || fail "js-sink without grants: busbar's log does not say the request was denied"
grep -q "FAIL write returns one outcome per event" "$work/denied.txt" || fail "js-sink without grants: write did not fail"
[ "$(received_count)" = "$before" ] || fail "an ungranted JS sink reached the server"

log "js-sink: a config that breaks its schema is refused with the JSON path (exit 2)"
set +e
"$busbar" connector test "$js" --config '{"url": "ftp://nowhere"}' 2> "$work/bad-config.txt"
code=$?
set -e
cat "$work/bad-config.txt"
[ "$code" = 2 ] || fail "bad config: expected exit 2, got $code"
grep -q "config rejected at /url" "$work/bad-config.txt" || fail "bad config: the error does not name /url"

log "python-source: build with componentize-py"
cp -r examples/connectors/python-source "$work/python-source"
ln -s "$root/wit" "$work/python-source/wit"
(cd "$work/python-source" && ./build.sh)
py="$work/python-source/python_source.wasm"
[ -s "$py" ] || fail "componentize-py did not produce $py"

log "python-source: inspect"
"$busbar" connector inspect "$py" | tee "$work/inspect-py.txt"
grep -q "^kind:    pull source$" "$work/inspect-py.txt" || fail "python-source: not reported as a pull source"
grep -q "^world:   busbar:connector/source@0.1.0$" "$work/inspect-py.txt" || fail "python-source: wrong world"

log "python-source: compliance, polling the local server"
"$busbar" connector test "$py" --config "{\"url\": \"http://127.0.0.1:$port/items\", \"detail_type\": \"item.created\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}" --json > "$work/py-report.json"
python3 - "$work/py-report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["checks"]:
    print(("PASS " if c["passed"] else "FAIL ") + c["name"] + ": " + c["detail"])
assert all(c["passed"] for c in r["checks"]), "python-source failed the harness"
poll = next(c for c in r["checks"] if c["name"].startswith("poll returns"))
# Five items on the server, max 5 per poll: 5, then 0 after cursor "5".
assert poll["detail"].startswith("5 then 0 events") and '"5"' in poll["detail"], poll
PY

log "python-source: without the http grant, poll fails with a clear error"
set +e
"$busbar" connector test "$py" --config "{\"url\": \"http://127.0.0.1:$port/items\"}" > "$work/py-denied.txt"
code=$?
set -e
cat "$work/py-denied.txt"
[ "$code" = 1 ] || fail "python-source without grants: expected a failed check (exit 1), got $code"
grep -q "FAIL poll returns at most max events and a cursor: .*HTTP request denied" "$work/py-denied.txt" \
  || fail "python-source without grants: the failure does not say the request was denied"

log "rust-sink: build and write into SQLite"
CARGO_TARGET_DIR="$work/rust-target" examples/connectors/rust-sink/build.sh
rust="examples/connectors/rust-sink/rust_sink.wasm"
"$busbar" connector inspect "$rust" > "$work/inspect-rust.txt"
grep -q "^needs:   sql$" "$work/inspect-rust.txt" || fail "rust-sink: does not declare that it needs sql"
sqlite3 "$work/events.db" 'create table events (id text, source text, detail_type text, payload text)'
"$busbar" connector test "$rust" --config '{"connection": "db", "table": "events"}' --grants '{"sql": ["db"]}' \
  --connection "db=sqlite://$work/events.db"
rows=$(sqlite3 "$work/events.db" "select count(*) from events where detail_type = 'order.created'")
[ "$rows" = 2 ] || fail "expected 2 order.created rows written by the Rust sink, got $rows"
rm -f "$rust"

log "connector new: scaffold, build and test a JavaScript and a Python project"
"$busbar" connector new --lang js my-js --dir "$work/new-js"
"$busbar" connector new --lang python my-python --dir "$work/new-python"
(cd "$work/new-js" && ln -s "$work/js-sink/node_modules" node_modules && ./build.sh)
"$busbar" connector test "$work/new-js/my-js.wasm" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}"
(cd "$work/new-python" && ./build.sh)
"$busbar" connector test "$work/new-python/my-python.wasm" --config "{\"url\": \"http://127.0.0.1:$port/items\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}"
log "all connector checks passed"
