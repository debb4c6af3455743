"""Whole visits of a ticker round: a running job's rows whose outcome the round already knows are
counted to the round's target in one visit; each lead's latest such row is applied once the
stream passes it, and a round that ends first writes those jobs as if the visit had not
counted them.

Why this is exact (bench/OPTIMISATIONS.md 25). A list qualifies when every job of the round
importing into it reads one small file with one plan, whose rows have distinct keys, and its
policy folds (`ahead.Ahead.folds`). Then every row of a lead in the round comes from one source
row. Once that row was decided added or updated in the list, every later row of it updates the
lead with the same flags, and the latest one overwrites all the others wrote: its counts are
known without deciding it, and only the lead's latest row (by due time) needs applying. It is
applied where the stream would apply it, in the batch of the slice whose stream passes it, so
the leads never hold a row the stream has not reached. A round flushed before its stream passes
a counted row writes that row's job back to before it (`Round.to_write`): the reader's settle
then applies it in its turn.
"""

from __future__ import annotations

import heapq
import math
from typing import Any, NamedTuple

from sandbox.core.ahead import Ahead
from sandbox.core.applying import Entry, LaneRow
from sandbox.core.lifecycle import DUE_SLACK
from sandbox.core.sources import PARSED_UP_TO, read_ahead

# (place, job pk): where a row, or a job's next event, stands in a round's stream.
Position = tuple[float, int]
PASSED_ALL: Position = (math.inf, 0)
# A source row decided added or updated in a list: (that row, its invalid-email and
# invalid-SMS flags, its keys).
Learnt = tuple[dict[str, Any], tuple[bool, bool], tuple[str | None, str | None]]


class Segment(NamedTuple):
    """The rows one whole visit counted, and what the job held before it."""

    start: int  # the index of the first
    dues: list[float]  # when each one falls due, and the next row after them
    ends: list[int]  # the source offset after each
    flags: list[tuple[bool, bool]]  # each one's invalid-email and invalid-SMS flags
    counts: dict[str, int]
    updated_at: float
    source_offset: int

    def end(self, pk: int) -> Position:
        """The position of its last row."""
        return self.dues[-2] - DUE_SLACK, pk


class Lanes:
    """A round's whole visits: which lists qualify, the source rows learnt in each, the rows
    counted and not yet applied, and the jobs counted ahead of the stream."""

    def __init__(self) -> None:
        # list pk -> (format, content, plan, lowest offset) its jobs share; None: they differ.
        self._sources: dict[int, tuple[str, str, dict[str, Any], int] | None] = {}
        self._jobs: dict[int, int] = {}  # list pk -> jobs read
        self.qualified: dict[int, bool] = {}  # on the jobs read so far
        self.learnt: dict[int, dict[int, Learnt]] = {}  # list pk -> id(source row) -> ...
        self.pending: dict[int, dict[str, Entry]] = {}  # list pk -> key -> latest counted row
        self.segments: dict[int, Segment] = {}  # job pk -> its last whole visit
        self.held: list[tuple[Position, int]] = []  # (segment end, pk): left, not written
        self.frontier: Position = (-math.inf, -1)  # every row before it is applied
        self._saved: tuple[Any, ...] | None = None

    def note(self, job: dict[str, Any], source: tuple[str, str] | None) -> None:
        """A job the round read. A list whose jobs do not share one source stops qualifying
        (what its whole visits counted stays exact: they took no row beyond the jobs read,
        and every row of this job comes after those); otherwise it is looked at again."""
        list_pk = job["list_pk"]
        self._jobs[list_pk] = self._jobs.get(list_pk, 0) + 1
        self.qualified.pop(list_pk, None)
        if source is None:
            self._sources[list_pk] = None
            return
        fmt, content = source
        offset = int(job["source_offset"])
        if list_pk not in self._sources:
            self._sources[list_pk] = (fmt, content, job["plan"], offset)
            return
        shared = self._sources[list_pk]
        if shared is None:
            return
        plan = job["plan"]  # decoded once per distinct text in a read: mostly the same object
        if shared[0] != fmt or shared[1] != content or (shared[2] is not plan
                                                         and shared[2] != plan):
            self._sources[list_pk] = None
        elif offset < shared[3]:
            self._sources[list_pk] = (fmt, content, shared[2], offset)

    def qualifies(self, list_pk: int, folds: bool, keys_of: Any) -> bool:
        """Whether the list's jobs read so far may take whole visits (`keys_of(row)`: a row's
        keys, resolved as its job resolves it). Their source must be one, small enough to be
        parsed once and shared by them, and its rows from the lowest offset of any of them on
        must have distinct keys. A list of one job does not: its rows are distinct source
        rows, none learnt before it."""
        shared = self._sources.get(list_pk)
        verdict = False
        if (folds and shared is not None and self._jobs[list_pk] > 1 and shared[0] == "csv"
                and len(shared[1]) <= PARSED_UP_TO):
            fmt, content, plan, offset = shared
            rows, _ends = read_ahead(fmt, content, offset, len(content) + 1, plan)
            keys = [k for k in (keys_of(row)[0] for row in rows) if k is not None]
            verdict = len(keys) == len(set(keys))
        self.qualified[list_pk] = verdict
        if verdict:
            self.learnt.setdefault(list_pk, {})
            self.pending.setdefault(list_pk, {})
        return verdict

    def visit(self, job: dict[str, Any], ahead: Ahead, k: int, bound: float) -> int:
        """Count the running job's rows from its read-ahead row `k` on, while their source
        rows are learnt in its list and their place is at most `bound` (the round's target,
        or before the jobs it has not read: their rows may be of the same leads). Moves the
        job past them, to the place of its next row, or, past its last, of that row: the
        stream finishes it there, in finish order. Returns how many (0: none, the stream
        takes the row)."""
        learnt = self.learnt[job["list_pk"]]
        rows, dues = ahead.rows, ahead.dues
        stop = min(len(rows), job["total"] - ahead.start)
        end = k
        while end < stop and dues[end] - DUE_SLACK <= bound:
            hit = learnt.get(id(rows[end]))
            if hit is None or hit[0] is not rows[end]:
                break
            end += 1
        if end == k:
            return 0
        pk = job["pk"]
        pending = self.pending[job["list_pk"]]
        counts = dict(job["counts"])
        flags: list[tuple[bool, bool]] = []
        start = ahead.start
        for j in range(k, end):
            source, flag, keys = learnt[id(rows[j])]
            flags.append(flag)
            counts["invalid_email"] += flag[0]
            counts["invalid_sms"] += flag[1]
            due = dues[j]
            latest = pending.get(keys[0])  # type: ignore[arg-type]
            if latest is None or (latest[0], latest[1]) < (due, pk):
                pending[keys[0]] = (due, pk, start + j, LaneRow((source, ahead.resolve)),  # type: ignore[index]
                                    job, keys)
        counts["updated"] += end - k
        self.segments[pk] = Segment(start + k, dues[k:end + 1],
                                    ahead.ends[k:end], flags, job["counts"],
                                    job["updated_at"], job["source_offset"])
        job["counts"] = counts
        job["processed"] = start + end
        job["updated_at"] = dues[end - 1]
        job["source_offset"] = ahead.ends[end - 1]
        job["due_at"] = (dues[end] if start + end < job["total"] else dues[end - 1]) - DUE_SLACK
        return end - k

    def passed(self, frontier: Position) -> dict[int, list[Entry]]:
        """Take the counted rows the stream has passed (its head is at `frontier`): by list,
        each lead's latest, to apply in the slice's batch."""
        out: dict[int, list[Entry]] = {}
        for list_pk, pending in self.pending.items():
            due_now = [key for key, e in pending.items() if (e[0] - DUE_SLACK, e[1]) < frontier]
            if due_now:
                out[list_pk] = [pending.pop(key) for key in due_now]
        return out

    def ahead(self, pk: int, frontier: Position) -> bool:
        """Whether the job has counted rows the stream has not passed."""
        segment = self.segments.get(pk)
        return segment is not None and segment.end(pk) >= frontier

    def hold(self, pk: int) -> None:
        """A job that left the stream with rows ahead of it: written once they are passed."""
        heapq.heappush(self.held, (self.segments[pk].end(pk), pk))

    def released(self, frontier: Position) -> list[int]:
        """The held jobs whose counted rows the stream has now passed."""
        out = []
        held = self.held
        while held and held[0][0] < frontier:
            out.append(heapq.heappop(held)[1])
        return out

    def as_if_not_visited(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job as it would stand had the stream taken its counted rows one by one up to
        the frontier (a copy; the job itself is the round's, should its writing fail)."""
        pk = job["pk"]
        segment = self.segments[pk]
        frontier = self.frontier
        n = 0
        while n < len(segment.flags) and (segment.dues[n] - DUE_SLACK, pk) < frontier:
            n += 1
        counts = dict(segment.counts)
        counts["updated"] += n
        counts["invalid_email"] += sum(f[0] for f in segment.flags[:n])
        counts["invalid_sms"] += sum(f[1] for f in segment.flags[:n])
        out = dict(job)
        out.update(counts=counts, processed=segment.start + n,
                   updated_at=segment.dues[n - 1] if n else segment.updated_at,
                   source_offset=segment.ends[n - 1] if n else segment.source_offset,
                   due_at=segment.dues[n] - DUE_SLACK)
        return out

    def save(self) -> None:
        """Keep what a slice may change, to put back should it fail."""
        self._saved = ({k: dict(v) for k, v in self.learnt.items()},
                       {k: dict(v) for k, v in self.pending.items()},
                       dict(self.segments), list(self.held), self.frontier)

    def restore(self) -> None:
        if self._saved is not None:
            learnt, pending, segments, held, frontier = self._saved
            self.learnt, self.pending, self.segments = learnt, pending, segments
            self.held, self.frontier = held, frontier
            self._saved = None

    def kept(self) -> None:
        self._saved = None
