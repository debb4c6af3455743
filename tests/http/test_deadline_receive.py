"""The gateway's body deadline (`deadline_receive`): a message that is already there is taken
without arming a timer, and every other case behaves as `asyncio.timeout_at` around the whole
await (the implementation before the fast path, kept here as the reference)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandbox.core.errors import RequestTimeout
from sandbox.http import gateway

Message = dict[str, Any]
# Far above the few milliseconds the chunked kinds wait in all, so that a machine stalled for
# a while (a loaded CI runner) still sees them inside it in both implementations.
DEADLINE = 0.25


def reference_deadline_receive(receive: Callable[[], Awaitable[Message]], seconds: float
                               ) -> Callable[[], Awaitable[Message]]:
    deadline = asyncio.get_running_loop().time() + seconds
    complete = False

    async def timed_receive() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout("timeout", field="body", rule="timeout") from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed_receive


def _receives(log: list[str]) -> dict[str, Callable[[], Callable[[], Awaitable[Message]]]]:
    """Kinds of `receive`, each logging what happened to it."""

    def ready() -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"x", "more_body": False}
        return receive

    def chunks() -> Callable[[], Awaitable[Message]]:
        left = [b"a", b"b", b"c"]

        async def receive() -> Message:
            await asyncio.sleep(0.001)
            body = left.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(left)}
        return receive

    def slow() -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            return {"type": "http.request", "body": b"late", "more_body": False}
        return receive

    def then_disconnect() -> Callable[[], Awaitable[Message]]:
        calls = [0]

        async def receive() -> Message:
            calls[0] += 1
            if calls[0] == 1:
                return {"type": "http.request", "body": b"x", "more_body": False}
            await asyncio.sleep(DEADLINE + 0.1)  # never cut once the body is complete
            return {"type": "http.disconnect"}
        return receive

    def raises_timeout() -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            raise TimeoutError
        return receive

    def raises_after_wait() -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            await asyncio.sleep(0.001)
            raise ConnectionResetError("gone")
        return receive

    def future() -> Callable[[], Awaitable[Message]]:
        def receive() -> Awaitable[Message]:
            fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(
                0.001, fut.set_result, {"type": "http.request", "body": b"f"})
            return fut
        return receive

    def catches_cancel() -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log.append("caught")
                await asyncio.sleep(0)  # suspends again while being cancelled, then gives up
                raise
            return {"type": "http.request", "body": b"", "more_body": False}
        return receive

    return {f.__name__: f for f in (ready, chunks, slow, then_disconnect, raises_timeout,
                                    raises_after_wait, future, catches_cancel)}


async def _outcome(make: Callable[..., Callable[[], Awaitable[Message]]], receive: Any,
                   log: list[str]) -> list[Any]:
    timed = make(receive, DEADLINE)
    seen: list[Any] = []
    for _ in range(4):
        try:
            seen.append(await timed())
        except RequestTimeout as err:
            seen.append(("408", err.field))
            break
        except Exception as err:
            seen.append((type(err).__name__, str(err)))
            break
        # Stop at a disconnect, or at a complete body after one more receive (not timed).
        last = seen[-1]
        if last["type"] == "http.disconnect" or (len(seen) > 1 and not last.get("more_body")):
            break
    return [*seen, list(log)]


@pytest.mark.parametrize("kind", sorted(_receives([])))
def test_deadline_receive_behaves_as_a_timeout_around_the_await(kind: str) -> None:
    def run(make: Any) -> list[Any]:
        log: list[str] = []
        return asyncio.run(_outcome(make, _receives(log)[kind](), log))

    assert run(gateway.deadline_receive) == run(reference_deadline_receive)


def test_a_message_already_there_arms_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_timer(_when: float) -> Any:
        raise AssertionError("a timer was armed for a message that was already there")

    async def main() -> Message:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"x", "more_body": False}
        return await gateway.deadline_receive(receive, 30)()

    monkeypatch.setattr(gateway.asyncio, "timeout_at", no_timer)
    assert asyncio.run(main()) == {"type": "http.request", "body": b"x", "more_body": False}


def test_a_body_that_waits_is_still_cut_at_the_deadline() -> None:
    log: list[str] = []

    async def main() -> None:
        await gateway.deadline_receive(_receives(log)["slow"](), 0.02)()

    with pytest.raises(RequestTimeout):
        asyncio.run(main())
    assert log == ["cancelled"]
