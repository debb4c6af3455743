"""Settling: applying, in due-time order across every job of a list, exactly the rows a
workspace clock has made due, so a job's status and counts are a pure function of its plan and
the clock (a test that advances 90 s sees what a user who waited 90 s would see). Which rows
are due, in which batches and how far a settle in parts goes are here; applying a batch is
`applying`, reading and writing the job rows `job_rows`."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from sandbox.core import lists
from sandbox.core.applying import (
    RESOLVERS,
    ResolveContext,
    Resolver,
    Sink,
    apply_batch,
    finish_many,
)
from sandbox.core.clock import quantise
from sandbox.core.job_rows import as_read, due_jobs, has_untimed, soonest_jobs, write_jobs
from sandbox.core.lifecycle import (
    ACTIVE,
    DUE_SLACK,
    NEVER,
    STATUSES,
    US,
    due_at,
    due_count,
    row_due_at,
    timeline_status,
)

__all__ = ["MAX_ROWS_PER_BATCH", "RESOLVERS", "ResolveContext", "Resolver", "Sink",
           "advance_jobs", "collector_paused", "next_instant", "plan_part", "settle", "settle_part"]

MAX_ROWS_PER_BATCH = 20_000
# A list's leads are read into a lists.KeyFilter when a settle has at least this many rows to
# apply to it (and more rows than the list has leads).
_FILTER_FROM = 2048

def settle(conn: Connection, workspace: str, at: float, seed: int, sink: Sink | None = None
           ) -> list[dict[str, Any]]:
    """Apply everything due by `at`. Returns the jobs that reached a final status; `sink`, when
    given, receives every row result by job pk (synchronous imports answer per row)."""
    at = quantise(at)
    rows = due_jobs(conn, workspace, at)
    if not rows:
        return []
    return _settle_jobs(conn, workspace, rows, at, seed, sink)


def settle_part(conn: Connection, workspace: str, at: float, seed: int, *, max_jobs: int,
                max_rows: int) -> tuple[float, list[dict[str, Any]]]:
    """Settle towards `at` only as far as a budget allows: to the latest instant by which at
    most `max_jobs` jobs change and `max_rows` rows fall due, but at least to the next instant
    anything is due (work due at one instant is never split, so that much may exceed the
    budget). Returns the instant settled to (`at` once everything due by it is applied) and the
    jobs that finished. Rows are applied in clock order, so settling to the instants returned,
    one after another, ends where one settle to `at` ends."""
    at = quantise(at)
    if has_untimed(conn, workspace):
        return at, settle(conn, workspace, at, seed)
    rows = soonest_jobs(conn, workspace, at, max_jobs + 1)
    if not rows:
        return at, []
    cut, due = plan_part(rows, at, max_jobs=max_jobs, max_rows=max_rows)
    if due is None:
        return cut, settle(conn, workspace, cut, seed)
    return cut, _settle_jobs(conn, workspace, due, cut, seed, None)


def plan_part(rows: list[dict[str, Any]], at: float, *, max_jobs: int, max_rows: int
              ) -> tuple[float, list[dict[str, Any]] | None]:
    """`rows`: up to max_jobs + 1 jobs due by `at`, soonest first. Returns the cut and the
    jobs that change by it, in pk order; None when the cut needs a whole settle."""
    first = min(at, next_instant(rows[0]))
    cut = at
    if len(rows) > max_jobs:
        # Just before the first job left out changes; the ones it ties with change no earlier.
        cut = min(at, quantise(next_instant(rows[-1]) - 1 / US))
        if cut < first:  # a budget's worth of jobs all change at one instant
            return first, None
    cut = _within_rows(rows, first, cut, max_rows)
    # The jobs that change by `cut`, in the (pk) order `settle` reads them; it would also read
    # a few due a hair after `cut`, and change nothing in them.
    return cut, sorted((j for j in rows if next_instant(j) <= cut), key=itemgetter("pk"))


def next_instant(job: dict[str, Any]) -> float:
    """When a due job next changes (its `due_at` is a hair before)."""
    return quantise(float(job["due_at"]) + DUE_SLACK)


def _within_rows(jobs: list[dict[str, Any]], first: float, cut: float, max_rows: int
                 ) -> float:
    """An instant in [first, cut] by which at most `max_rows` rows of these jobs are due (or
    `first`). Only the size of a slice depends on it, not what settling does; rows fall due
    evenly enough that scaling the span down once or twice nearly always gets there."""
    running = [j for j in jobs if j["status"] in ACTIVE and j["running_from"] is not None]
    for _ in range(12):
        rows = sum(due_count(j, cut) - j["processed"] for j in running)
        if rows <= max_rows:
            return cut
        if cut <= first:
            break
        # Aim a tenth under the budget: one more pass then nearly always confirms it.
        scaled = quantise(first + (cut - first) * 0.9 * max_rows / rows)
        cut = max(first, min(scaled, quantise(cut - 1 / US)))
    return first


def _settle_jobs(conn: Connection, workspace: str, rows: list[dict[str, Any]], at: float,
                 seed: int, sink: Sink | None) -> list[dict[str, Any]]:
    was = {job["pk"]: as_read(job) for job in rows}
    changed: dict[int, dict[str, Any]] = {}  # by pk: the jobs to write back
    finished = advance_jobs(conn, workspace, rows, at, seed, sink, changed, {})
    write_jobs(conn, list(changed.values()), was)
    return finished


def advance_jobs(conn: Connection, workspace: str, rows: list[dict[str, Any]], at: float,
                 seed: int, sink: Sink | None, changed: dict[int, dict[str, Any]],
                 sources: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Settle `rows` (due jobs, in pk order) to `at` in memory: apply their due rows to the
    leads (written), change the job dicts and add them to `changed` (not written: the caller
    writes them with `write_jobs`). `sources` caches the jobs' stored rows. Returns the jobs
    that reached a final status."""
    finished: list[dict[str, Any]] = []
    by_list: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for job in rows:
        if job["status"] not in ACTIVE:
            job["due_at"] = NEVER
            changed[job["pk"]] = job
            continue
        status = timeline_status(job, at)
        # The clock only moves a job forward: settling at an earlier instant changes nothing.
        if STATUSES.index(status) > STATUSES.index(job["status"]):
            moment = job["queued_until"] if status == "starting" else job["running_from"]
            job.update(status=status, started_at=job["started_at"] or job["queued_until"],
                       updated_at=moment)
            job["due_at"] = due_at(job)
            changed[job["pk"]] = job
        elif job["due_at"] is None:
            job["due_at"] = due_at(job)
            changed[job["pk"]] = job
        if job["status"] == "running":
            by_list[int(job["list_pk"])].append(job)
    with collector_paused():
        for list_pk, jobs_of_list in by_list.items():
            finished.extend(_settle_list(conn, workspace, list_pk, jobs_of_list, at, seed, sink,
                                         changed, sources))
    return finished


@contextmanager
def collector_paused() -> Iterator[None]:
    """Applying a batch allocates a few containers per row (20,000 rows a batch), none of them
    cyclic: left on, the garbage collector traverses the growing batch again and again (a fifth
    of a large import's settle). Only a collector that was on is turned back on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _settle_list(conn: Connection, workspace: str, list_pk: int, jobs: list[dict[str, Any]],
                 at: float, seed: int, sink: Sink | None, changed: dict[int, dict[str, Any]],
                 sources: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    finished: list[dict[str, Any]] = []
    live = list(jobs)
    due_by_at = {j["pk"]: due_count(j, at) for j in jobs}
    due_rows = sum(due_by_at[j["pk"]] - j["processed"] for j in jobs)
    held = lists.key_filter(conn, list_pk, due_rows) if due_rows >= _FILTER_FROM else None
    while live:
        targets = {j["pk"]: due_by_at[j["pk"]] for j in live}
        # Bound memory: cut the batch at the instant where MAX_ROWS_PER_BATCH rows are due.
        cut = at
        for j in live:
            capped = min(targets[j["pk"]], j["processed"] + MAX_ROWS_PER_BATCH)
            if capped < targets[j["pk"]]:
                cut = min(cut, row_due_at(j, capped - 1))
        if cut < at:
            # Every job stops at the cut instant (the capped job has rows due by then), so rows
            # of different jobs are still applied in due-time order across batches.
            targets = {j["pk"]: min(targets[j["pk"]], due_count(j, cut)) for j in live}
        pending = [j for j in live if targets[j["pk"]] > j["processed"]]
        if not pending:
            break
        changed.update((j["pk"], j) for j in pending)  # before a job unread drops out of it
        finished.extend(apply_batch(conn, workspace, list_pk, pending, targets, seed, sink,
                                    held, sources))
        live = [j for j in live if j["status"] == "running" and j["processed"] < j["total"]
                and cut < at]
    done = [j for j in jobs if j["status"] == "running" and j["processed"] >= j["total"]]
    finish_many([(j, "completed", None, row_due_at(j, j["total"] - 1)
                  if j["total"] else float(j["running_from"])) for j in done])
    changed.update((j["pk"], j) for j in done)
    finished.extend(done)
    return finished
