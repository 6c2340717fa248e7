"""A real webhook receiver for the alert tests: an HTTP server on 127.0.0.1 in a thread that
records every JSON body it is sent and answers the statuses it was told to, then 200."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """``statuses``: what the first requests are answered (then 200); ``delay``: seconds each
    answer waits (to make a client time out)."""

    def __init__(self, statuses: Sequence[int] = (), delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self.url = ""

    def _answer(self, body: bytes) -> int:
        with self._lock:
            self.requests += 1
            self.bodies.append(json.loads(body))
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def receiving(statuses: Sequence[int] = (), delay: float = 0.0) -> Iterator[Receiver]:
    """A running :class:`Receiver` whose ``url`` is ``http://127.0.0.1:PORT/hook``."""
    receiver = Receiver(statuses, delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver._answer(body)
            time.sleep(receiver.delay)
            answer = b'{"received": true}' if status < 300 else b"no thanks"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the client gave up waiting (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_url() -> str:
    """A URL on a port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
