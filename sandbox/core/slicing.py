"""Settling a busy workspace in bounded slices, so that the background ticker never holds the
event loop for long: each slice settles as far as a budget of jobs and rows allows, in a
transaction of its own, and the loop serves requests between slices."""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.core.settle import settle_part

# A slice's budget: under bench A (600 InboxApp jobs of 10 rows created a second, ~300 of them
# running at any instant) a slice of it takes about 20 ms.
MAX_JOBS = 300
MAX_ROWS = 400
# Seconds the loop has for requests between two slices. Not sleep(0): a request takes several
# turns of the loop (read, run, write), so a ticker back after one turn would take most of it.
PAUSE = 0.005


async def settle_in_slices(backend: Any, workspace_id: str, *, max_jobs: int | None = None,
                           max_rows: int | None = None, pause: float | None = None) -> int:
    """Settle the workspace up to its clock's now, one slice per transaction, letting the event
    loop run between slices; returns the slices settled. Settling to instants t1 < t2 < ...
    < now ends where one settle to now ends (rows are applied in clock order)."""
    jobs_budget = MAX_JOBS if max_jobs is None else max_jobs
    rows_budget = MAX_ROWS if max_rows is None else max_rows
    slices, last = 0, None
    while True:
        with backend.workspace(workspace_id, create=False, settle=False) as (conn, ws):
            # Each slice aims at the now it reads: on a real clock, the time the slices took
            # would otherwise be left for one settle (one long block) at the end.
            target = ws.now
            reached, finished = settle_part(conn, ws.id, target, ws.seed,
                                            max_jobs=jobs_budget, max_rows=rows_budget)
            for job in finished:  # what Backend.settle does with them
                for hook in backend.job_finished_hooks:
                    hook(conn, ws, job)
        slices += 1
        # A slice always moves the clock it settled to forward, unless a job's due time is
        # stale; then the caller's own settle finishes the work.
        if reached >= target or (last is not None and reached <= last):
            return slices
        last = reached
        await asyncio.sleep(PAUSE if pause is None else pause)
