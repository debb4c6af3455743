"""A real local webhook receiver for tests: an HTTP server on 127.0.0.1 (free port) in a thread
that records every request and answers 200, or a status / a hang / a dropped connection queued
for the next N requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"  # keep the connection open without answering (until the receiver stops)
DROP = "drop"  # close the connection without any answer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self._answers: dict[str | None, list[int | str]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, status: int | str, times: int = 1, path: str | None = None) -> None:
        """The next `times` requests (to `path`, or to any path) get `status` (or HANG /
        DROP); later ones get 200."""
        with self._lock:
            self._answers.setdefault(path, []).extend([status] * times)

    def _next_answer(self, received: Received) -> int | str:
        with self._lock:
            self.requests.append(received)
            for queue in (self._answers.get(received.path), self._answers.get(None)):
                if queue:
                    return queue.pop(0)
            return 200

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received = Received(method="POST", path=self.path, body=body,
                                headers={k.lower(): v for k, v in self.headers.items()})
            answer = receiver._next_answer(received)
            if answer == HANG:
                receiver._stopping.wait(timeout=30)
                self.close_connection = True
                return
            if answer == DROP:
                self.close_connection = True
                return
            payload = b'{"ok":true}'
            self.send_response(int(answer))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    receiver = Receiver(host).start()
    try:
        yield receiver
    finally:
        receiver.stop()
