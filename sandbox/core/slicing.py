"""Settling a busy workspace in bounded slices, so that the background ticker never holds the
event loop for long: each slice settles as far as a budget of jobs and rows allows, in a
transaction of its own, and the loop serves requests between slices."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from sandbox.core.clock import quantise
from sandbox.core.errors import NotFound
from sandbox.core.job_rows import as_read, due_jobs_after, has_untimed, write_jobs
from sandbox.core.jobs import has_due
from sandbox.core.settle import advance_jobs, next_instant, plan_part, settle_part

# A slice's budget: under bench A on a real clock (~1,000 InboxApp jobs of 10 rows created a
# second, ~500 of them running at any instant) a slice of a round takes ~12 ms (p99 ~25 ms).
MAX_JOBS = 300
MAX_ROWS = 400
# Seconds the loop has for requests between two slices. Not sleep(0): a request takes several
# turns of the loop (read, run, write), so a ticker back after one turn would take most of it.
PAUSE = 0.005
# Rounds one call settles at most (see settle_in_slices): each aims at the now it starts at,
# and a round settles what fell due while the one before it ran, so they shrink quickly
# unless the workspace gets more work a second than a second can settle.
MAX_ROUNDS = 8

FinishedHook = Callable[[Connection, Any, dict[str, Any]], None]


async def settle_in_slices(backend: Any, workspace_id: str, *, max_jobs: int | None = None,
                           max_rows: int | None = None, pause: float | None = None) -> int:
    """Settle the workspace up to its clock's now, one slice per transaction, letting the event
    loop run between slices; returns the slices settled. Settling to instants t1 < t2 < ...
    < now ends where one settle to now ends (rows are applied in clock order)."""
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
    for _ in range(MAX_ROUNDS):
        with backend.workspace(workspace_id, create=False, settle=False) as (conn, ws):
            backend.flush_round(conn, ws.id)  # one a failed write left behind
            target = quantise(ws.now)
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
    return slices


class Round:
    """The jobs due by `target` in one workspace, settled slice by slice in memory (soonest
    first, as `settle_part` picks them from the database). Jobs are read as the slices reach
    them, in due-time order, and each is written when the round is done with it: when it is
    not due again by `target`, or when the round is flushed."""

    def __init__(self, workspace: str, target: float) -> None:
        self.workspace = workspace
        self.target = target
        self.jobs: dict[int, dict[str, Any]] = {}
        self.was: dict[int, tuple[Any, ...]] = {}  # what write_jobs checks
        self.changed: dict[int, dict[str, Any]] = {}  # changed, due again, not written yet
        self.sources: dict[int, tuple[str, str]] = {}
        self.live = True  # False once written: by its own end, or by another open's settle
        self.complete = False  # settled to `target`
        self._due: list[tuple[float, int]] = []  # (due_at, pk) of the jobs read, a heap
        self._read_to: tuple[float, int] = (-math.inf, -1)  # every job due before is read
        self._all_read = False
        self._before: dict[int, dict[str, Any]] = {}  # the last slice's jobs, as they were

    def next_slice(self, conn: Connection, seed: int, max_jobs: int, max_rows: int
                   ) -> list[dict[str, Any]]:
        """Settle the next slice (within the budget, as `settle_part` cuts it); returns the
        jobs that finished. A slice that fails leaves the round's jobs as they were before
        it (its lead writes roll back with its transaction)."""
        soonest = self._pop(conn, max_jobs, lambda taken, _job: taken <= max_jobs)
        if not soonest:
            self.complete = True
            return []
        cut, due = plan_part(soonest, self.target, max_jobs=max_jobs, max_rows=max_rows)
        if due is None:  # a budget's worth of jobs change at one instant: all of them go
            soonest += self._pop(conn, max_jobs, lambda _taken, job: next_instant(job) <= cut)
            due = sorted((j for j in soonest if next_instant(j) <= cut),
                         key=lambda j: int(j["pk"]))
        self._before = {job["pk"]: dict(job) for job in due}
        try:
            finished = advance_jobs(conn, self.workspace, due, cut, seed, None, self.changed,
                                    self.sources)
            # Jobs this round is done with are written now, not all at its end (one write
            # of thousands of jobs would hold the loop as long as several slices).
            done = [self.changed.pop(job["pk"]) for job in due
                    if job["due_at"] > self.target and job["pk"] in self.changed]
            write_jobs(conn, done, self.was)
        except BaseException:
            self.revert_slice()
            raise
        finally:
            for job in soonest:
                if job["due_at"] <= self.target:
                    heapq.heappush(self._due, (float(job["due_at"]), job["pk"]))
        self.complete = cut >= self.target
        return finished

    def revert_slice(self) -> None:
        """The last slice's transaction failed (its leads and writes rolled back): its jobs
        go back to what they were before it, to be written as such. The round ends."""
        for pk, copy in self._before.items():
            self.jobs[pk].update(copy)
            self.changed[pk] = self.jobs[pk]  # unchanged before it: writes what is stored
        self._before = {}

    def kept_slice(self) -> None:
        """The last slice's transaction committed: nothing of it is to revert any more."""
        self._before = {}

    def _pop(self, conn: Connection, max_jobs: int,
             more: Callable[[int, dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Due jobs, soonest first, while `more(taken so far, next job)` holds; reads the
        next jobs in due-time order when the ones read so far run out."""
        taken: list[dict[str, Any]] = []
        while True:
            if not self._all_read and (not self._due or self._due[0] > self._read_to):
                self._read(conn, 2 * (max_jobs + 1))
                continue
            if not self._due or self._due[0][0] > self.target:
                return taken
            job = self.jobs[self._due[0][1]]
            if not more(len(taken), job):
                return taken
            heapq.heappop(self._due)
            taken.append(job)

    def _read(self, conn: Connection, n: int) -> None:
        rows = due_jobs_after(conn, self.workspace, self.target, self._read_to, n)
        for job in rows:
            self.jobs[job["pk"]] = job
            self.was[job["pk"]] = as_read(job)
            heapq.heappush(self._due, (float(job["due_at"]), job["pk"]))
        if len(rows) < n:
            self._all_read = True
        else:
            self._read_to = (float(rows[-1]["due_at"]), int(rows[-1]["pk"]))


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
            write_jobs(conn, list(current.changed.values()), current.was)
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
