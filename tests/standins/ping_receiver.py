#!/usr/bin/env python3
"""STAND-IN for healthchecks.io's ping endpoint, for tests only.

Listens on 127.0.0.1 (port from argv, default 8099), answers every GET, HEAD
and POST with 200 "OK" as hc-ping.com does, and appends each request as one
JSON line ({"method", "path", "body", "time"}) to the file given as the second
argument (default /var/lib/ping-receiver/requests.jsonl).

    ping_receiver.py 8099 /var/lib/ping-receiver/requests.jsonl
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
RECORD = sys.argv[2] if len(sys.argv) > 2 else "/var/lib/ping-receiver/requests.jsonl"
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        entry = {"method": self.command, "path": self.path, "body": body, "time": round(time.time(), 3)}
        with LOCK, open(RECORD, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"OK")

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *_args):
        pass  # the record file is the log


def main():
    os.makedirs(os.path.dirname(RECORD), exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"healthchecks.io STAND-IN listening on 127.0.0.1:{PORT}, recording to {RECORD}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
