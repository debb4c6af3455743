"""Rate limits count on the workspace clock, per vendor as documented, and reset with it."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from sandbox.core import ratelimit
from sandbox.core import store as t
from sandbox.core.errors import RateLimited
from sandbox.core.store import Store
from sandbox.vendors import face
from tests.conftest import Sandbox

T0 = 1_736_935_200.0  # 2025-01-15T10:00:00Z, on a minute boundary
INBOXAPP = face("inboxapp").rate_limits["default"]


def test_inboxapp_minute_window_refuses_the_301st_request_until_the_next_minute() -> None:
    store = Store()
    with store.begin() as conn:
        for i in range(300):
            verdict = ratelimit.hit(conn, "ws", "inboxapp", INBOXAPP, T0 + i * 0.1)
        assert (verdict.limit, verdict.remaining) == (300, 0)
        with pytest.raises(RateLimited) as refused:
            ratelimit.hit(conn, "ws", "inboxapp", INBOXAPP, T0 + 30)
        assert refused.value.headers["Retry-After"] == "30"
        assert refused.value.headers["X-RateLimit-Reset"] == str(int(T0 + 60))
        assert ratelimit.hit(conn, "ws", "inboxapp", INBOXAPP, T0 + 60).remaining == 299


@pytest.mark.parametrize(("window", "limit", "seconds"), [("hour", 10_000, 3600),
                                                          ("day", 100_000, 86_400)])
def test_inboxapp_hour_and_day_windows(window: str, limit: int, seconds: int) -> None:
    store = Store()
    start = ratelimit.window_start(next(w for w in INBOXAPP if w.name == window), T0)
    with store.begin() as conn:
        conn.execute(insert(t.rate_counters).values(
            workspace="ws", window=f"inboxapp:{window}", window_start=start, count=limit))
        with pytest.raises(RateLimited) as refused:
            ratelimit.hit(conn, "ws", "inboxapp", INBOXAPP, T0)
        assert refused.value.headers["X-RateLimit-Limit"] == str(limit)
        assert int(refused.value.headers["Retry-After"]) == int(start + seconds - T0)
        assert ratelimit.hit(conn, "ws", "inboxapp", INBOXAPP, start + seconds).remaining >= 0


def test_leadlex_day_resets_at_midnight_utc() -> None:
    starter = face("leadlex").rate_limits["starter"]
    store = Store()
    late = T0 + 13 * 3600 + 59 * 60  # 23:59 UTC
    with store.begin() as conn:
        for i in range(100):
            ratelimit.hit(conn, "ws", "leadlex", starter, late - 86_000 + i * 61)
        with pytest.raises(RateLimited) as refused:
            ratelimit.hit(conn, "ws", "leadlex", starter, late)
        assert refused.value.headers["Retry-After"] == "60"
        assert ratelimit.hit(conn, "ws", "leadlex", starter, late + 60).limit in (10, 100)


def test_inboxapp_over_http_answers_429_in_its_envelope_and_recovers(sb: Sandbox) -> None:
    for _ in range(300):
        ok = sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs")
        assert ok.status_code == 200, ok.text
    assert ok.headers["X-RateLimit-Limit"] == "300"
    assert ok.headers["X-RateLimit-Remaining"] == "0"
    refused = sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs")
    assert refused.status_code == 429
    assert refused.json() == {"error": {"code": "RATE_LIMITED", "status": 429,
                                        "message": "Rate limit exceeded. Try again in 60 seconds."}}
    assert refused.headers["Retry-After"] == "60"
    sb.advance(60)
    assert sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs").status_code == 200
