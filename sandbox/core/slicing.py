"""Settling a busy workspace in bounded slices, so that the background ticker never holds the
event loop for long: each slice settles as far as a budget of jobs and rows allows, in a
transaction of its own, and the loop serves requests between slices; and the rounds under way
(`Rounds`), whose jobs any other settle of their workspace writes first."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection

from sandbox.core.clock import quantise
from sandbox.core.errors import NotFound
from sandbox.core.job_rows import has_untimed, write_jobs
from sandbox.core.jobs import has_due
from sandbox.core.rounds import Round
from sandbox.core.settle import settle_part

__all__ = ["MAX_JOBS", "MAX_ROUNDS", "MAX_ROWS", "MIN_ROUND_SPAN", "PAUSE", "Round", "Rounds",
           "settle_in_slices"]

# A slice's budget: under bench A on a real clock (~1,300 InboxApp jobs of 10 rows created a
# second, ~650 of them running at any instant) a slice of a round takes ~6 ms in process (p99
# ~23 ms). With 300 jobs / 400 rows (slices of ~4 ms since rows fold) the ticker, paced by the
# pauses between slices, applied ~10,000 of the ~13,000 rows falling due a second: it fell
# further behind every round, leaving the backlog to the next request that reads.
MAX_JOBS = 450
MAX_ROWS = 600
# Seconds the loop has for requests between two slices. Not sleep(0): a request takes several
# turns of the loop (read, run, write), so a ticker back after one turn would take most of it.
PAUSE = 0.005
# Rounds one call settles at most (see settle_in_slices): each aims at the now it starts at,
# and a round settles what fell due while the one before it ran, so they shrink quickly (to
# MIN_ROUND_SPAN, below which the rest waits for the next tick) unless the workspace gets
# more work a second than a second can settle.
MAX_ROUNDS = 8
# Workspace seconds a round after the first must cover, or the call ends and leaves them to
# the next tick (a second later). A round reads and writes every job due by its target, and
# a running job is due every row: rounds of a few ms (the ticker catching up with its own
# last round) read ~600 running jobs for a row each under bench B, 3-60 ms apart.
MIN_ROUND_SPAN = 0.5


async def settle_in_slices(backend: Any, workspace_id: str, *, max_jobs: int | None = None,
                           max_rows: int | None = None, pause: float | None = None) -> int:
    """Settle the workspace up to its clock's now, one slice per transaction, letting the event
    loop run between slices; returns the slices settled. Settling to instants t1 < t2 < ...
    < now ends where one settle to now ends (rows are applied in clock order). On an in-memory
    store, what fell due during the rounds is settled only while it is MIN_ROUND_SPAN or more
    of the workspace clock (and at most MAX_ROUNDS rounds): a smaller rest is the next call's."""
    jobs_budget = MAX_JOBS if max_jobs is None else max_jobs
    rows_budget = MAX_ROWS if max_rows is None else max_rows
    wait = PAUSE if pause is None else pause
    try:
        if backend.store.in_memory:
            return await _in_rounds(backend, workspace_id, jobs_budget, rows_budget, wait)
        return await _reading_each_slice(backend, workspace_id, jobs_budget, rows_budget, wait)
    except NotFound:  # deleted between two slices: nothing left to settle
        return 0


async def _reading_each_slice(backend: Any, workspace_id: str, jobs_budget: int,
                              rows_budget: int, wait: float) -> int:
    """Each slice reads the jobs it settles and writes them back: a store other processes may
    share (a file, PostgreSQL) is consistent between any two slices."""
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
        await asyncio.sleep(wait)


async def _in_rounds(backend: Any, workspace_id: str, jobs_budget: int, rows_budget: int,
                     wait: float) -> int:
    """On an in-memory store (this process its only user) the slices of a round share the jobs
    read at its start and write them once, at its end: a job running at 20 rows a second is
    changed by nearly every slice, and reading and writing it each time cost more than its
    rows (bench A, real clock). Leads are written by every slice, so until the round ends the
    stored jobs lag behind them: any settle of the workspace first writes the round's jobs
    (Backend.settle -> Rounds.flush), which ends the round."""
    slices = 0
    last: float | None = None
    for _ in range(MAX_ROUNDS):
        with backend.workspace(workspace_id, create=False, settle=False) as (conn, ws):
            backend.flush_round(conn, ws.id)  # one a failed write left behind
            target = quantise(ws.now)
            if last is not None and target - last < MIN_ROUND_SPAN:
                return slices
            if has_untimed(conn, ws.id):
                backend.settle(conn, ws, target)
                return slices + 1
            if not has_due(conn, ws.id, target):
                return slices
            current = Round(ws.id, target)
            backend.rounds.begin(current)
        try:
            while current.live:
                try:
                    with backend.workspace(workspace_id, create=False, settle=False) as (
                            conn, ws):
                        if not current.live:  # written (and settled further) by another open
                            break
                        for job in current.next_slice(conn, ws.seed, jobs_budget,
                                                      rows_budget):
                            for hook in backend.job_finished_hooks:
                                hook(conn, ws, job)
                        if current.complete:
                            backend.flush_round(conn, ws.id)
                except BaseException:
                    current.revert_slice()
                    raise
                current.kept_slice()
                slices += 1
                if current.live:
                    await asyncio.sleep(wait)
        finally:
            if backend.rounds.holds(current):  # an error or a cancel: keep what it settled
                with backend.store.begin() as conn:
                    backend.rounds.flush(conn, current.workspace)
        # Only a round that settled all the way to its target sets the next one's start: one
        # cut short (by an open whose transaction then failed) leaves its rest to the next.
        last = target if current.complete else None
    return slices


class Rounds:
    """The rounds under way, by workspace, whose jobs are not written yet (Backend.rounds)."""

    def __init__(self) -> None:
        self._open: dict[str, Round] = {}

    def begin(self, current: Round) -> None:
        self._open[current.workspace] = current

    def holds(self, current: Round) -> bool:
        return self._open.get(current.workspace) is current

    def __contains__(self, workspace: str) -> bool:
        return workspace in self._open

    def flush(self, conn: Connection, workspace: str) -> Round | None:
        """Write the workspace's round's jobs on `conn` and end the round; returns it (for
        `restore`, should `conn`'s transaction fail)."""
        current = self._open.get(workspace)
        if current is not None:
            write_jobs(conn, current.to_write(), current.was)
            del self._open[workspace]  # not before: a write that fails leaves it to write
            current.live = False
        return current

    def restore(self, current: Round) -> None:
        """Put back a round whose writing was rolled back: still to write, by the next flush."""
        self._open.setdefault(current.workspace, current)

    def discard(self, workspace: str) -> Round | None:
        """Forget the round of a workspace being deleted (its jobs go with it)."""
        current = self._open.pop(workspace, None)
        if current is not None:
            current.live = False
        return current
