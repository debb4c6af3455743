"""A ticker round on an in-memory store: the jobs of one workspace due by an instant, settled as
one stream of rows in due-time order, a slice (a budget of rows and jobs) at a time, with each
job written once the round is done with it."""

from __future__ import annotations

import csv
import heapq
import math
import operator
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from sandbox.core.ahead import READ_AHEAD, Ahead
from sandbox.core.applying import (
    Entry,
    decide_rows,
    finish_many,
    job_policy,
    row_dues,
    row_resolver,
    unreadable_source,
)
from sandbox.core.imports import ImportPolicy
from sandbox.core.job_rows import as_read, due_jobs_after, start_waiting, write_jobs
from sandbox.core.lanes import PASSED_ALL, Lanes
from sandbox.core.lifecycle import (
    ACTIVE,
    DUE_SLACK,
    NEVER,
    STATUSES,
    due_at,
    row_due_at,
    timeline_status,
)
from sandbox.core.settle import collector_paused, next_instant
from sandbox.core.sources import read_ahead

# What a slice may change in a job, which is all `write_jobs` writes: a slice keeps these as
# they were (one tuple a job, not a copy of the job: the copies were a tenth of the ticker
# under A), to put back should its transaction fail.
SLICE_FIELDS = ("status", "started_at", "updated_at", "due_at", "processed", "counts",
                "row_errors", "source_offset", "error", "completed_at")
_slice_fields = operator.itemgetter(*SLICE_FIELDS)
# Source rows whose keys a round remembers (each entry keeps its row alive): a file shared by
# many jobs has few rows; a large file's rows are met once each, and are not kept for long.
_KEYS_KEPT = 4096


class Round:
    """The jobs due by `target` in one workspace. The round is a stream of their events in
    due-time order (a job's place in it is its `due_at`, as in the database): a status change,
    or its next row. A slice takes the next events within its budget, decides the rows it took
    (one batch per list, as a settle does) and writes the jobs the round is done with. Rows
    are applied in the order one settle to `target` applies them, so the round ends where that
    settle ends; a job is read when the stream reaches it and written when it is not due again
    by `target`, or when the round is flushed. Before the stream reads any job, the first
    slices move the queued jobs that only end their wait by `target` in SQL
    (`job_rows.start_waiting`, a slice's job budget at a time): they never enter the stream."""

    def __init__(self, workspace: str, target: float) -> None:
        self.workspace = workspace
        self.target = target
        self.jobs: dict[int, dict[str, Any]] = {}
        self.was: dict[int, tuple[Any, ...]] = {}  # what write_jobs checks
        self.changed: dict[int, dict[str, Any]] = {}  # changed, due again, not written yet
        self.live = True  # False once written: by its own end, or by another open's settle
        self.complete = False  # settled to `target`
        self._due: list[tuple[float, int]] = []  # (due_at, pk): the stream, a heap
        self._read_to: tuple[float, int] = (-math.inf, -1)  # every job due before is read
        self._all_read = False
        self._waits_ended = False  # start_waiting has moved them all (before any read)
        self._ahead: dict[int, Ahead] = {}
        self._policies: dict[int, ImportPolicy] = {}  # of the jobs read ahead (decide_rows')
        self._left: list[int] = []  # the jobs that left the stream in this slice
        self._sources: dict[int, tuple[str, str]] = {}  # (format, content) of the jobs read
        self._before: dict[int, tuple[Any, ...]] = {}  # the last slice's jobs' SLICE_FIELDS
        # id(source row) -> (that row, its keys): rows of jobs sharing a source (same text and
        # plan: the same parsed rows) and folding need not be resolved to find their keys.
        self._keys_of: dict[int, tuple[dict[str, Any], tuple[str | None, str | None]]] = {}
        self.lanes = Lanes()

    def next_slice(self, conn: Connection, seed: int, max_jobs: int, max_rows: int
                   ) -> list[dict[str, Any]]:
        """Settle the next slice: at most `max_rows` rows of at most `max_jobs` jobs. Returns
        the jobs that finished, in the order they finished. A slice that fails leaves the
        round's jobs as they were before it (its lead writes roll back with its transaction)."""
        self._before = {}
        self.lanes.save()
        try:
            with collector_paused():
                return self._slice(conn, seed, max_jobs, max_rows)
        except BaseException:
            self.revert_slice()
            raise

    def revert_slice(self) -> None:
        """The last slice's transaction failed (its leads and writes rolled back): its jobs
        go back to what they were before it, to be written as such. The round ends."""
        for pk, was in self._before.items():
            self.jobs[pk].update(zip(SLICE_FIELDS, was, strict=True))
            self.changed[pk] = self.jobs[pk]  # unchanged before it: writes what is stored
        self._before = {}
        self.lanes.restore()
        for _end, pk in self.lanes.held:  # not visited by it: only their writes roll back
            self.changed[pk] = self.jobs[pk]

    def kept_slice(self) -> None:
        """The last slice's transaction committed: nothing of it is to revert any more."""
        self._before = {}
        self.lanes.kept()

    def to_write(self) -> list[dict[str, Any]]:
        """The round's jobs not written yet, as they stand where its stream stands: a job
        whose whole visit counted rows ahead of it is written as if it had not (lanes)."""
        lanes = self.lanes
        return [lanes.as_if_not_visited(job) if lanes.ahead(pk, lanes.frontier) else job
                for pk, job in self.changed.items()]

    def _slice(self, conn: Connection, seed: int, max_jobs: int, max_rows: int
               ) -> list[dict[str, Any]]:
        if not self._waits_ended:
            # Jobs that only end their wait in this round change status and nothing else (no
            # row, no lead, no hook): one statement moves them, instead of the stream reading,
            # changing and writing each (under A, 1 in 2.5 of a job's visits). A slice's worth
            # at a time, in slices of their own before the stream reads any job (1,200 in one
            # statement held the loop ~10 ms), so none of them is also in the stream.
            if start_waiting(conn, self.workspace, self.target, max_jobs) == max_jobs:
                return []
            self._waits_ended = True
        before, changed, keys_of = self._before, self.changed, self._keys_of
        left = self._left = []
        batches: dict[int, list[Entry]] = defaultdict(list)  # by list: rows in due order
        decided: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)  # their jobs
        # By job, for the rows taken: the index after the last, when it fell due, where a read
        # after it starts, and the job's due time after it.
        taken: dict[int, int] = {}
        last_due: dict[int, float] = {}
        offsets: dict[int, int] = {}
        places: dict[int, float] = {}
        ending: list[dict[str, Any]] = []  # every row taken: completes once decided
        finished: list[dict[str, Any]] = []
        rows = 0
        stream, target = self._due, self.target
        while rows < max_rows:
            # The head of the stream when it is read and due: `_soonest` without its call.
            if stream and (self._all_read or stream[0] <= self._read_to) and (
                    stream[0][0] <= target):
                place: tuple[float, int] | None = stream[0]
            else:
                place = self._soonest(conn, max_jobs)
            if place is None:
                self.complete = True
                break
            pk = place[1]
            job = self.jobs[pk]
            if pk not in before:
                if len(before) >= max_jobs:
                    break
                before[pk] = _slice_fields(job)
            changed[pk] = job
            status = job["status"]
            if status not in ACTIVE:  # a stale due time: nothing more to do
                job["due_at"] = NEVER
                self._move(pk, None)
                continue
            if status != "running":
                self._start(job)
                continue
            index = taken.get(pk, job["processed"])
            if index >= job["total"]:
                ending.append(job)
                self._move(pk, None)
                continue
            ahead = self._ahead.get(pk)
            if ahead is None or not ahead.start <= index < ahead.start + len(ahead.rows):
                ahead = self._ahead_of(job, index, seed)
            if ahead is None:  # its stored rows cannot be read: failed at this row
                finished.append(job)
                self._move(pk, None)
                continue
            k = index - ahead.start
            due = ahead.dues[k]
            if place[0] < due - DUE_SLACK:
                # Due later than the place it was read at (written by an older build): the
                # stream puts it where its row falls due.
                job["due_at"] = due_at(job)
                self._move(pk, due - DUE_SLACK)
                continue
            if ahead.folds and pk not in taken:
                qualifies = self.lanes.qualified.get(job["list_pk"])
                if qualifies is None:
                    qualifies = self._qualifies(job, ahead)
                if qualifies:
                    counted = self.lanes.visit(job, ahead, k, target if self._all_read else
                                               math.nextafter(self._read_to[0], -math.inf))
                    if counted:
                        rows += counted
                        self._move(pk, job["due_at"])
                        continue
            if k < len(ahead.rows):
                source = ahead.rows[k]
                known = keys_of.get(id(source)) if ahead.folds else None
                if known is not None and known[0] is source:
                    # A source row met before (another job of the same file): its keys are
                    # known, and it is resolved only if `decide_rows` does not fold it.
                    row: Any = (source, ahead.resolve)
                    keys = known[1]
                else:
                    row = dict(source)
                    if ahead.resolve is not None:
                        row = ahead.resolve(row, due)
                    keys = ahead.keys(row)
                    if ahead.folds:
                        if len(keys_of) >= _KEYS_KEPT:
                            keys_of.clear()
                        keys_of[id(source)] = (source, keys)
                list_pk = job["list_pk"]
                batches[list_pk].append((due, pk, index, row, job, keys))
                decided[list_pk][pk] = job
                last_due[pk] = due
                offsets[pk] = ahead.ends[k]
            taken[pk] = index + 1
            rows += 1
            if index + 1 < job["total"]:
                next_place = places[pk] = ahead.dues[k + 1] - DUE_SLACK
                if next_place <= target:  # `_move`, inline on the path every row takes
                    heapq.heapreplace(stream, (next_place, pk))
                else:
                    heapq.heappop(stream)
                    left.append(pk)
            else:
                places[pk] = float(job["running_from"]) - DUE_SLACK  # due at once: completes
                ending.append(job)
                self._move(pk, None)
        if not self.complete:
            self.complete = self._soonest(conn, max_jobs) is None
        # The stream's head: rows counted by whole visits before it are applied in this slice.
        frontier = PASSED_ALL if self.complete else self._due[0]
        lanes = self.lanes
        for list_pk, entries in self._passed(frontier).items():
            batch = batches[list_pk]
            batch.extend(entries)
            batch.sort()  # (due, pk, index) is unique: the rows are never compared
        for list_pk, batch in batches.items():
            pending = sorted(decided[list_pk].values(), key=_by_pk)
            # decide_rows looks up only its jobs' policies: the round's own dict will do.
            tallies, failed = decide_rows(conn, self.workspace, list_pk, pending, batch,
                                          self._policies, None, None, unresolved=True,
                                          learn=lanes.learnt.get(list_pk))
            for job in pending:
                pk = job["pk"]
                counts, errors = tallies[pk]
                failure = failed.get(pk)
                if failure is None:  # nearly always: stores, not a keyword dict to update
                    job["processed"] = taken[pk]
                    job["counts"] = counts
                    job["row_errors"] = errors
                    job["updated_at"] = last_due[pk]
                    job["source_offset"] = offsets[pk]
                    job["due_at"] = places[pk]
                else:
                    job.update(processed=failure[2], counts=counts, row_errors=errors,
                               updated_at=failure[1], source_offset=offsets[pk])
                    finish_many([(job, "failed", failure[0], failure[1])])
                    finished.append(job)
                    self._leave(pk)
        # A source shorter than its total (written by an older build) has no row to read for
        # some indexes: the job moves past them all the same.
        for pk in taken.keys() - offsets.keys():
            self.jobs[pk].update(processed=taken[pk], due_at=places[pk])
        for job in ending:
            if job["status"] == "running" and job["processed"] >= job["total"]:
                total = job["total"]
                finish_many([(job, "completed", None, row_due_at(job, total - 1) if total
                              else float(job["running_from"]))])
                finished.append(job)
        for job in finished:
            self._ahead.pop(job["pk"], None)
            self._policies.pop(job["pk"], None)
            self._sources.pop(job["pk"], None)
        if not self.complete and self._soonest(conn, max_jobs) is None:
            # The jobs a row failed were the stream's last: every counted row is passed, and
            # after every row of this slice's batches.
            self.complete = True
            frontier = PASSED_ALL
            for list_pk, entries in self._passed(frontier).items():
                decide_rows(conn, self.workspace, list_pk, [], entries, self._policies, None,
                            None, unresolved=True)
        lanes.frontier = frontier
        # Jobs this round is done with are written now, not all at its end (one write of
        # thousands of jobs would hold the loop as long as several slices). Only a job that
        # left the stream can be done: every other one is still due by `target`. One with
        # rows counted ahead of the stream waits until the stream passes them.
        done = []
        for pk in left:
            if self.jobs[pk]["due_at"] > self.target and pk in changed:
                if lanes.ahead(pk, frontier):
                    lanes.hold(pk)
                else:
                    done.append(changed.pop(pk))
        done.extend(changed.pop(pk) for pk in lanes.released(frontier) if pk in changed)
        write_jobs(conn, done, self.was)
        finished.sort(key=_finish_order)
        return finished

    def _start(self, job: dict[str, Any]) -> None:
        """A queued or starting job's next status, at the instant it falls due (as
        `advance_jobs` moves it)."""
        status = timeline_status(job, next_instant(job))
        if STATUSES.index(status) > STATUSES.index(job["status"]):
            moment = job["queued_until"] if status == "starting" else job["running_from"]
            job.update(status=status, started_at=job["started_at"] or job["queued_until"],
                       updated_at=moment)
        job["due_at"] = due_at(job)
        self._move(job["pk"], job["due_at"])

    def _ahead_of(self, job: dict[str, Any], index: int, seed: int) -> Ahead | None:
        """The job's rows read ahead from `index` on, read now (the caller has found that
        `index` is not among those read); None when its stored rows cannot be read (the job
        is then failed, as `apply_batch` fails it)."""
        pk = job["pk"]
        ahead = self._ahead.get(pk)
        if ahead is not None and index == ahead.start + len(ahead.rows) and ahead.ends:
            offset = ahead.ends[-1]
        else:
            offset = int(job["source_offset"])
        fmt, content = self._sources.get(pk, ("", ""))
        try:
            rows, ends = read_ahead(fmt, content, offset, min(READ_AHEAD, job["total"] - index),
                                    job["plan"])
        except (csv.Error, ValueError) as exc:
            finish_many([unreadable_source(job, index, exc)])
            return None
        dues = row_dues(job, range(index, index + max(len(rows), 1) + 1))
        ahead = self._ahead[pk] = Ahead(index, rows, ends, dues,
                                        row_resolver(job, seed, self.workspace),
                                        job_policy(job), job["plan"].get("resolve", ""))
        self._policies[pk] = ahead.policy
        return ahead

    def _passed(self, frontier: tuple[float, int]) -> dict[int, list[Entry]]:
        """`Lanes.passed`, with each row's policy where `decide_rows` looks (a job that has
        finished since its whole visit is gone from there: its plan's policy is the same)."""
        out = self.lanes.passed(frontier)
        for entries in out.values():
            for entry in entries:
                self._policies.setdefault(entry[1], job_policy(entry[4]))
        return out

    def _qualifies(self, job: dict[str, Any], ahead: Ahead) -> bool:
        """`Lanes.qualifies` for the job's list, its rows' keys found as the job finds them."""
        resolve, keys, at = ahead.resolve, ahead.keys, self.target

        def keys_of(row: dict[str, Any]) -> Any:
            return keys(row if resolve is None else resolve(dict(row), at))

        return self.lanes.qualifies(job["list_pk"], ahead.folds, keys_of)

    def _soonest(self, conn: Connection, max_jobs: int) -> tuple[float, int] | None:
        """The stream's next place due by `target` (not taken from it), reading the next jobs
        in due-time order when the ones read so far run out."""
        due = self._due
        while True:
            if not self._all_read and (not due or due[0] > self._read_to):
                self._read(conn, 2 * (max_jobs + 1))
                continue
            if not due or due[0][0] > self.target:
                return None
            return due[0]

    def _move(self, pk: int, place: float | None) -> None:
        """Give the job at the head of the stream its next place (None: none in this round)."""
        if place is not None and place <= self.target:
            heapq.heapreplace(self._due, (place, pk))
        else:
            heapq.heappop(self._due)
            self._left.append(pk)

    def _leave(self, pk: int) -> None:
        """Take a job out of the stream wherever it is (one whose row failed it, after its
        next place was given): rare, so a pass over the heap."""
        self._due = [place for place in self._due if place[1] != pk]
        heapq.heapify(self._due)
        self._left.append(pk)

    def _read(self, conn: Connection, n: int) -> None:
        rows, sources = due_jobs_after(conn, self.workspace, self.target, self._read_to, n)
        self._sources.update(sources)
        for job in rows:
            self.lanes.note(job, sources.get(job["pk"]))
            self.jobs[job["pk"]] = job
            self.was[job["pk"]] = as_read(job)
            heapq.heappush(self._due, (float(job["due_at"]), job["pk"]))
        if len(rows) < n:
            self._all_read = True
        else:
            self._read_to = (float(rows[-1]["due_at"]), int(rows[-1]["pk"]))



_by_pk = operator.itemgetter("pk")


def _finish_order(job: dict[str, Any]) -> tuple[float, int]:
    return float(job["completed_at"]), int(job["pk"])
