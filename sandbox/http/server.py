"""uvicorn's HTTP protocol with the two connection timers it lacks, so that idle or trickling
clients cannot pile up connections until every other client gets a 503, and with the vendor's
error envelope (not uvicorn's plain text) for a request the HTTP parser refuses.

uvicorn arms its keep-alive timer only after a response: a connection that is opened and never
sends a byte stays open forever, and a request head sent one byte at a time is never cut off.
Each such connection counts against `limit_concurrency`. Here a new connection gets the same
idle timeout as a kept-alive one, and a request head must be complete within HEAD_TIMEOUT
seconds of its first byte (the body has its own deadline in the gateway).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from sandbox.core.errors import InvalidRequest
from sandbox.http.errors import respond

HEAD_TIMEOUT = 10.0


def protocol_class() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools not installed: uvicorn's h11 protocol, idle timer only
        from uvicorn.protocols.http.h11_impl import H11Protocol

        class GuardedH11Protocol(H11Protocol):
            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                _arm_idle_timer(self)

        return GuardedH11Protocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            _arm_idle_timer(self)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._cancel_head_timer()
            self.head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _cancel_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _head_too_slow(self) -> None:
            self.head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            # uvicorn answers a request it cannot parse (a malformed header, a broken chunk) in
            # plain text, a shape no vendor documents: answer in the envelope of the vendor
            # whose path was read, as every other 400.
            try:
                raw = malformed_request_answer(getattr(self, "url", b""),
                                               list(getattr(self, "headers", [])), msg,
                                               self.server_state.default_headers)
            except Exception:  # never worse than uvicorn's own answer
                super().send_400_response(msg)
                return
            self.transport.write(raw)
            self.transport.close()

    return GuardedHttpToolsProtocol


def malformed_request_answer(url: bytes, headers: list[tuple[bytes, bytes]], reason: str,
                             default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The bytes of a 400 for a request the HTTP parser refused: the vendor's error envelope
    for the path read so far (the sandbox's own for any other path), connection closed."""
    path = unquote(url.split(b"?", 1)[0].decode("latin-1"))
    error = InvalidRequest(f"request: malformed HTTP request ({reason.rstrip('.')})",
                           field="request", rule="http")
    response = respond({"type": "http", "path": path, "method": "", "headers": headers},
                       error)
    status = response.status_code
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [name + b": " + value + b"\r\n" for name, value in response.raw_headers
              if name.lower() != b"connection"]
    lines += [b"connection: close\r\n\r\n", bytes(response.body)]
    return b"".join(lines)


def _arm_idle_timer(protocol: Any) -> None:
    """The keep-alive timer, armed at once: uvicorn cancels it when the first byte arrives."""
    protocol.timeout_keep_alive_task = protocol.loop.call_later(
        protocol.timeout_keep_alive, protocol.timeout_keep_alive_handler)
