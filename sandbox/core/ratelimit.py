"""Rate limits on the workspace clock: counters per window, the documented headers, and 429s."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, insert, select, update

from sandbox.core import store as t
from sandbox.core.errors import RateLimited


class Window(Protocol):
    name: str
    seconds: int
    limit: int
    kind: str


@dataclass(frozen=True)
class Verdict:
    limit: int
    remaining: int
    reset: int
    retry_after: int | None

    def headers(self) -> dict[str, str]:
        out = {"X-RateLimit-Limit": str(self.limit),
               "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out


def window_start(window: Window, now: float) -> float:
    # Fixed windows aligned on the epoch; for a day that is midnight UTC, as Leadlex documents.
    return math.floor(now / window.seconds) * window.seconds


def hit(conn: Connection, workspace: str, scope: str, windows: Sequence[Window], now: float
        ) -> Verdict:
    """Count one request against every window; the tightest window decides the headers.
    A refused request is not counted, so a client that backs off is not punished twice."""
    states = []
    for w in windows:
        start = window_start(w, now)
        name = f"{scope}:{w.name}"
        row = conn.execute(select(t.rate_counters.c.window_start, t.rate_counters.c.count).where(
            t.rate_counters.c.workspace == workspace, t.rate_counters.c.window == name)).first()
        # Positional: `count` would name the tuple method, not the column.
        used = int(row[1]) if row is not None and row[0] == start else 0
        states.append((w, name, start, used, row is not None))
    blocked = [(w, start) for w, _n, start, used, _e in states if used >= w.limit]
    if blocked:
        w, start = max(blocked, key=lambda b: b[1] + b[0].seconds)
        reset = start + w.seconds
        retry = max(1, math.ceil(reset - now))
        verdict = Verdict(w.limit, 0, math.ceil(reset), retry)
        raise RateLimited(f"Rate limit exceeded. Try again in {retry} seconds.",
                          headers=verdict.headers(), retry_after=retry)
    tightest: Verdict | None = None
    for w, name, start, used, exists in states:
        used += 1
        if exists:
            conn.execute(update(t.rate_counters).where(
                t.rate_counters.c.workspace == workspace, t.rate_counters.c.window == name
            ).values(window_start=start, count=used))
        else:
            conn.execute(insert(t.rate_counters).values(workspace=workspace, window=name,
                                                        window_start=start, count=used))
        v = Verdict(w.limit, w.limit - used, math.ceil(start + w.seconds), None)
        if tightest is None or v.remaining < tightest.remaining:
            tightest = v
    assert tightest is not None
    return tightest
