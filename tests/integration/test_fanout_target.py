"""A geosubmit target for the fan-out tests, run as a real HTTP server process:

    python -m tests.integration.test_fanout_target PORT LOG [--fail N] [--status S] [--delay S]

Every POST is appended to LOG as one JSON line (path, headers that matter, the decoded items,
the status answered). The first N POSTs (all, with ``--fail -1``) are answered S (500); a POST
to ``/mode`` with ``{"fail": N, "status": S, "delay": D}`` changes that while it runs. Holds no
tests: the test modules start it, so that the exporter talks to another process over TCP.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STATE: dict[str, Any] = {"fail": 0, "status": 500, "delay": 0.0, "log": ""}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/mode":
            with LOCK:
                STATE.update(json.loads(raw))
            self._answer(200)
            return
        with LOCK:
            failing = STATE["fail"] != 0
            if STATE["fail"] > 0:
                STATE["fail"] -= 1
            status = int(STATE["status"]) if failing else 200
            delay = float(STATE["delay"])
        if delay:
            time.sleep(delay)
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        record = {
            "path": self.path,
            "status": status,
            "user_agent": self.headers.get("User-Agent"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "content_type": self.headers.get("Content-Type"),
            "idempotency_key": self.headers.get("Idempotency-Key"),
            "items": json.loads(body)["items"],
        }
        with LOCK, Path(STATE["log"]).open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(record) + "\n")
        self._answer(status)

    def _answer(self, status: int) -> None:
        payload = b"{}" if status == 200 else b'{"error": "target failing on purpose"}'
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except BrokenPipeError:  # the client was killed while it waited: what the test does
            pass


def main(argv: list[str]) -> None:
    port, STATE["log"] = int(argv[0]), argv[1]
    rest = argv[2:]
    for flag, name, kind in (("--fail", "fail", int), ("--status", "status", int)):
        if flag in rest:
            STATE[name] = kind(rest[rest.index(flag) + 1])
    if "--delay" in rest:
        STATE["delay"] = float(rest[rest.index("--delay") + 1])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
