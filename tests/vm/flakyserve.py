#!/usr/bin/env python3
"""flakyserve.py DIR PORT LOG: serves DIR on 127.0.0.1:PORT over HTTP/1.1 keep-alive, but
answers 25% of requests with 500 and closes the connection of another 10% without an answer
(seeded: a run is reproducible). Flakier than the userspace suite's server: with the old five
tries within 1.5 s, about 3 in 5 whole-device reads failed. Each request's fate goes to LOG, a line each: "ok PATH",
"500 PATH" or "drop PATH"."""
import http.server
import os
import random
import sys
import threading

root, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(23)
lock = threading.Lock()
log = open(log_path, "a", buffering=1)


class Flaky(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        with lock:
            roll = rng.random()
        fate = "500" if roll < 0.25 else "drop" if roll < 0.35 else "ok"
        log.write(f"{fate} {path}\n")
        if fate == "drop":
            self.close_connection = True
            return
        if fate == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if not full.startswith(os.path.realpath(root) + "/") or not os.path.isfile(full):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(full, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


Server(("127.0.0.1", port), Flaky).serve_forever()
