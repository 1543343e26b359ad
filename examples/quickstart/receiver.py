#!/usr/bin/env python3
"""A tiny HTTP endpoint for the quickstart: prints every request it receives and answers 200."""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        print(f"{self.command} {self.path} {body.decode(errors='replace')}", flush=True)
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
print(f"receiver listening on 127.0.0.1:{port}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
