"""uvicorn's HTTP protocol with the two connection timers it lacks, so that idle or trickling
clients cannot pile up connections until every other client gets a 503.

uvicorn arms its keep-alive timer only after a response: a connection that is opened and never
sends a byte stays open forever, and a request head sent one byte at a time is never cut off.
Each such connection counts against `limit_concurrency`. Here a new connection gets the same
idle timeout as a kept-alive one, and a request head must be complete within HEAD_TIMEOUT
seconds of its first byte (the body has its own deadline in the gateway).
"""

from __future__ import annotations

import asyncio
from typing import Any

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

    return GuardedHttpToolsProtocol


def _arm_idle_timer(protocol: Any) -> None:
    """The keep-alive timer, armed at once: uvicorn cancels it when the first byte arrives."""
    protocol.timeout_keep_alive_task = protocol.loop.call_later(
        protocol.timeout_keep_alive, protocol.timeout_keep_alive_handler)
