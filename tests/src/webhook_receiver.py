"""A webhook receiver for the tests, on loopback: checks each delivery's signature with Python's
own hmac (an implementation independent of the origin's), answers as the test tells it, and
logs every request as one JSON line.

Usage: webhook_receiver.py PORT DIR. In DIR, the test writes `secrets` (one per line: a
delivery is genuine when a v1 signature matches any of them) and `mode` ("accept", "down": 503
to every request, "fail N": 500 to the first N attempts of each event id, or "hold": log the
request as "held" and answer 200 only once the mode changes, so the sender can die before it
hears the answer); the receiver appends to `log.jsonl`.
"""

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DIR = int(sys.argv[1]), sys.argv[2]
TOLERANCE = 300
lock = threading.Lock()
attempts = {}


def read(name, default=""):
    try:
        with open(os.path.join(DIR, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default


def log(line):
    with open(os.path.join(DIR, "log.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")


def genuine(header, body):
    parts = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    sigs = [v for k, v in parts if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not sigs:
        return False
    if abs(int(time.time()) - int(stamps[0])) > TOLERANCE:
        return False
    signed = stamps[0].encode() + b"." + body
    for secret in read("secrets").split():
        want = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(want, s) for s in sigs):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # readiness
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        ok = genuine(self.headers.get("webhook-signature", ""), body)
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        line = {
            "header_id": self.headers.get("webhook-id"),
            "id": event.get("id"),
            "type": event.get("type"),
            "video": (event.get("data") or {}).get("video", {}).get("id"),
            "signature_ok": ok,
            "body": body.decode("utf-8", "replace"),
        }
        with lock:
            n = attempts.get(event.get("id"), 0) + 1
            attempts[event.get("id")] = n
            mode = read("mode", "accept").split()
            if not ok:
                status = 400
            elif mode[:1] == ["down"]:
                status = 503
            elif mode[:1] == ["fail"] and n <= int(mode[1]):
                status = 500
            elif mode[:1] == ["hold"]:
                status = None
                log(dict(line, attempt=n, status="held"))
            else:
                status = 200
        while status is None:
            time.sleep(0.05)
            if read("mode", "accept").split()[:1] != ["hold"]:
                status = 200
        with lock:
            log(dict(line, attempt=n, status=status))
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:
            pass  # the sender is gone

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
