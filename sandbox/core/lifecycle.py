"""Job lifecycles: the statuses, the transitions a test may force (declared as data), pacing,
and the time arithmetic that says when each row of a paced job falls due."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sandbox.core.clock import quantise

STATUSES = ("created", "queued", "starting", "running", "paused", "completed", "failed",
            "canceled")
TERMINAL = frozenset({"completed", "failed", "canceled"})
ACTIVE = frozenset({"queued", "starting", "running"})

# Transitions a test (or a vendor's own endpoint) may force. The clock drives the rest:
# queued -> starting -> running -> completed.
FORCED_TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"queued", "failed", "canceled"}),
    "queued": frozenset({"starting", "running", "paused", "completed", "failed", "canceled"}),
    "starting": frozenset({"running", "paused", "completed", "failed", "canceled"}),
    "running": frozenset({"paused", "completed", "failed", "canceled"}),
    "paused": frozenset({"running", "completed", "failed", "canceled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "canceled": frozenset(),
}
US = 1_000_000  # microseconds per second: the clock's resolution
# `due_at` of a job the clock will not move (created, paused, final); an instant, not NULL, so
# the due-jobs index never has to skip over finished jobs.
NEVER = 1e18
DUE_SLACK = 2 / US
MAX_ROW_ERRORS = 1000


@dataclass(frozen=True)
class Pacing:
    """How long a job waits for a slot, how long it takes to start, how fast it runs.
    rows_per_second None means every row is processed at once (synchronous imports)."""

    queue_wait: float = 0.0
    start_delay: float = 0.0
    rows_per_second: float | None = None

    @classmethod
    def instant(cls) -> Pacing:
        return cls()


def legal_targets(status: str) -> list[str]:
    return sorted(FORCED_TRANSITIONS.get(status, frozenset()))


def elapsed_us(job: dict[str, Any], at: float) -> int:
    return round((at - float(job["running_from"])) * US)


def offset_us(rate: float, rows: int) -> int:
    """Microseconds after `running_from` at which the first `rows` rows are all due."""
    return math.ceil(rows * US / rate)


def due_count(job: dict[str, Any], at: float) -> int:
    """How many rows the clock has made due by `at` (ignoring failure).

    Computed in whole microseconds (the clock's resolution), never by flooring a product of
    epoch-sized floats: row i is due exactly when `row_due_at(job, i)` is reached."""
    if job["running_from"] is None:
        return 0
    elapsed = elapsed_us(job, at)
    if elapsed < 0:
        return 0
    total = int(job["total"])
    rate = job["plan"].get("rate")
    if rate is None:
        return total
    n = min(total, math.floor(elapsed * rate / US))
    # The float estimate can be one off at an exact boundary; the offsets decide.
    while n < total and offset_us(rate, n + 1) <= elapsed:
        n += 1
    while n > 0 and offset_us(rate, n) > elapsed:
        n -= 1
    return n


def row_due_at(job: dict[str, Any], index: int) -> float:
    rate = job["plan"].get("rate")
    if rate is None:
        return float(job["running_from"])
    return quantise(float(job["running_from"]) + offset_us(rate, index + 1) / US)


def next_due(job: dict[str, Any]) -> float | None:
    """The next instant at which this job changes by itself, or None."""
    status = job["status"]
    if status == "queued":
        return float(job["queued_until"])
    if status == "starting":
        return float(job["running_from"])
    if status == "running":
        return row_due_at(job, int(job["processed"]))
    return None


def due_at(job: dict[str, Any]) -> float:
    """The `due_at` column of a job: a hair before `next_due` (settling a job early finds
    nothing to do; settling it late would change what a request at that instant sees), or NEVER.
    A running job with every row processed is due at once: settling completes it."""
    if job["status"] == "running" and int(job["processed"]) >= int(job["total"]):
        return float(job["running_from"]) - DUE_SLACK
    instant = next_due(job)
    return NEVER if instant is None else instant - DUE_SLACK


def timeline_status(job: dict[str, Any], at: float) -> str:
    if at < job["queued_until"]:
        return "queued"
    if at < job["running_from"]:
        return "starting"
    return "running"
