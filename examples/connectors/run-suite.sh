#!/usr/bin/env bash
# Connectors in JavaScript and Python: installs componentize-js (npm) and componentize-py (PyPI), builds the
# examples from source, and drives them through busbar's host with the compliance harness
# (`busbar connector test`) against a real local HTTP server. Also builds the Rust example and scaffolds a
# project in each language with `busbar connector new`. Fails loudly on any error.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
log() { echo "--- connectors: $*"; }

log "toolchains"
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
python3 -m pip install --quiet componentize-py
rustup target add wasm32-wasip2

log "busbar binary"
cargo build --quiet --bin busbar
busbar="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/busbar"
export BUSBAR_CACHE_DIR="$work/cache"

# A real HTTP server on 127.0.0.1:<free port>: GET /items?after=<id>&limit=<n> serves items with ids 1..5 after the
# cursor; POST anything records the body. GET /received returns what was posted.
cat > "$work/server.py" <<'PY'
import json, sys, threading
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
        items = [{"id": i, "name": f"item {i}"} for i in range(after + 1, 6)][:limit]
        self.reply(200, items)
    def do_POST(self):
        n = int(self.headers.get("content-length", 0)); received.append(json.loads(self.rfile.read(n)))
        self.reply(200, {"ok": True})
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/server.py" > "$work/port" &
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -1 "$work/port")
[ -n "$port" ] || { echo "the test HTTP server did not start" >&2; exit 1; }

log "js-sink: build with componentize-js"
cp -r examples/connectors/js-sink "$work/js-sink"
ln -s "$root/wit" "$work/js-sink/wit"
(cd "$work/js-sink" && ./build.sh)
js="$work/js-sink/js_sink.wasm"

log "js-sink: inspect and compliance"
"$busbar" connector inspect "$js" | tee "$work/inspect-js.txt"
grep -q "world:   busbar:connector/sink@0.1.0" "$work/inspect-js.txt"
"$busbar" connector test "$js" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}"
curl -sf "http://127.0.0.1:$port/received" > "$work/received.json"
python3 - "$work/received.json" <<'PY'
import json, sys
batches = json.load(open(sys.argv[1]))
events = [e for b in batches for e in b]
# The harness writes its three sample events twice (before and after a restart).
assert len(events) == 6, f"expected 6 events posted by the JS sink, got {len(events)}: {batches}"
assert events[0]["detail-type"] == "order.created" and events[0]["detail"]["total"] == 12.5, events[0]
print(f"the JS sink posted {len(events)} events in {len(batches)} batches")
PY
log "js-sink: an ungranted host is refused (retryable outcome, nothing posted)"
before=$(curl -sf "http://127.0.0.1:$port/received" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
"$busbar" connector test "$js" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" --json > "$work/denied.json" || true
grep -q "3 events: 0 ok, 3 retryable, 0 fatal" "$work/denied.json"
after=$(curl -sf "http://127.0.0.1:$port/received" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$before" = "$after" ] || { echo "an ungranted JS sink reached the server" >&2; exit 1; }

log "js-sink: warm start from the compiled-code cache"
"$busbar" connector inspect "$js" --json > /dev/null

log "python-source: build with componentize-py"
cp -r examples/connectors/python-source "$work/python-source"
ln -s "$root/wit" "$work/python-source/wit"
(cd "$work/python-source" && ./build.sh)
py="$work/python-source/python_source.wasm"

log "python-source: inspect and compliance"
"$busbar" connector inspect "$py" | tee "$work/inspect-py.txt"
grep -q "kind:    pull source" "$work/inspect-py.txt"
"$busbar" connector test "$py" --config "{\"url\": \"http://127.0.0.1:$port/items\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}" --json | tee "$work/py-report.json"
python3 - "$work/py-report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert all(c["passed"] for c in r["checks"]), r
poll = next(c for c in r["checks"] if c["name"].startswith("poll returns"))
# Five items on the server, max 5 per poll: 5 then 0, cursor "5".
assert poll["detail"].startswith("5 then 0 events") and '"5"' in poll["detail"], poll
print("python source:", poll["detail"])
PY

log "rust-sink: build"
examples/connectors/rust-sink/build.sh
"$busbar" connector inspect examples/connectors/rust-sink/rust_sink.wasm | grep -q "needs:   sql"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table if not exists events (id text, source text, detail_type text, payload text)'); c.commit()" "$work/events.db"
"$busbar" connector test examples/connectors/rust-sink/rust_sink.wasm \
  --config '{"connection": "db", "table": "events"}' --grants '{"sql": ["db"]}' \
  --connection "db=sqlite://$work/events.db?mode=rwc"
rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$work/events.db")
[ "$rows" = 6 ] || { echo "expected 6 rows written by the Rust sink, got $rows" >&2; exit 1; }

log "connector new: scaffold and build each language"
for lang in rust js python; do
  "$busbar" connector new --lang "$lang" "my-$lang" --dir "$work/new-$lang"
done
(cd "$work/new-rust" && ./build.sh)
"$busbar" connector test "$work/new-rust/my-rust.wasm" --config '{"prefix": "hello"}'
(cd "$work/new-js" && ln -s "$work/js-sink/node_modules" node_modules && ./build.sh)
"$busbar" connector test "$work/new-js/js_sink.wasm" --config "{\"url\": \"http://127.0.0.1:$port/events\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}"
(cd "$work/new-python" && ./build.sh)
"$busbar" connector test "$work/new-python/python_source.wasm" --config "{\"url\": \"http://127.0.0.1:$port/items\"}" \
  --grants "{\"http\": [\"127.0.0.1:$port\"]}"
log "all connector checks passed"
