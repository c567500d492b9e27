#!/usr/bin/env python3
"""A tiny peer on 127.0.0.1 for scripts/test.d/60-lambda-invoke: a webhook receiver (POST /hook,
answers 200 and counts) and a fake Webex people API (GET /v1/people, one page). Stdlib only.

Usage: fake-peer.py <port-file> <count-file>   (writes its port, serves until killed)
"""
import http.server
import json
import sys

PORT_FILE, COUNT_FILE = sys.argv[1], sys.argv[2]
PEOPLE = {"items": [{"id": "p1", "emails": ["p1@example.com"], "displayName": "P One", "orgId": "org-1",
                     "status": "active", "type": "person"}]}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(COUNT_FILE, "a") as f:
            f.write(self.headers.get("webhook-id", "?") + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/v1/people/me"):
            body = json.dumps({"id": "me", "orgId": "org-1"}).encode()
        elif self.path.startswith("/v1/people"):
            body = json.dumps(PEOPLE).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
