"""Settling: applying, in due-time order across every job of a list, exactly the rows a
workspace clock has made due, so a job's status and counts are a pure function of its plan and
the clock (a test that advances 90 s sees what a user who waited 90 s would see). Which rows
are due, in which batches, how far a settle in parts goes, and the job writes are here;
applying a batch is `applying`."""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    exists,
    literal_column,
    select,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect

from sandbox.core import lists
from sandbox.core import store as t
from sandbox.core.applying import (
    RESOLVERS,
    ResolveContext,
    Resolver,
    Sink,
    apply_batch,
    finish_many,
)
from sandbox.core.clock import quantise
from sandbox.core.errors import Conflict
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
from sandbox.core.sql import Fast

__all__ = ["MAX_ROWS_PER_BATCH", "RESOLVERS", "ResolveContext", "Resolver", "Sink",
           "advance_jobs", "as_read", "due_jobs", "due_jobs_after", "has_untimed",
           "next_instant", "plan_part", "settle", "settle_part", "write_jobs"]

MAX_ROWS_PER_BATCH = 20_000
# A list's leads are read into a lists.KeyFilter when a settle has at least this many rows to
# apply to it (and more rows than the list has leads).
_FILTER_FROM = 2048

# Statements of the settling path, built once: building a statement costs more than running it.
_BY_JOB_PK = t.jobs.c.pk == bindparam("job_pk")
_MOMENT = bindparam("moment", type_=t.jobs.c.updated_at.type)
# A settle changes its jobs in memory (status, progress, counts, finish, due time) and writes
# every job it changed once, at the end, in one executemany, on SQLite on the driver
# (core.sql.Fast): one UPDATE per job instead of up to three (10,000 queued jobs are 10,000
# rows to convert). The `processed` guard makes a concurrent settle of the same job a Conflict,
# not a double count.


def _write(json_type: Any, status_too: bool) -> Fast:
    """The job write. Without `status_too` it leaves status, started_at, error and completed_at
    alone: most jobs a settle in slices writes only progressed, and an UPDATE that does not name
    an indexed column (status) skips that index (5.9 -> 3.6 us a job in SQLite). With
    `json_type` Text, counts and row_errors are bound as the text the JSON type would make of
    them (SQLite stores that text), from `_encoder`'s prebuilt C encoder."""
    values: dict[str, Any] = dict(
        updated_at=_MOMENT, due_at=bindparam("due"), processed=bindparam("now_processed"),
        counts=bindparam("new_counts", type_=json_type or t.jobs.c.counts.type),
        row_errors=bindparam("new_errors", type_=json_type or t.jobs.c.row_errors.type),
        source_offset=bindparam("offset"))
    if status_too:
        values.update(status=bindparam("new_status"), started_at=bindparam("started"),
                      error=bindparam("message"),
                      completed_at=bindparam("done", type_=t.jobs.c.completed_at.type))
    return Fast(update(t.jobs).where(_BY_JOB_PK, t.jobs.c.processed == bindparam("was"))
                .values(**values))


# (text bound, status written) -> statement
_WRITES = {(text, full): _write(Text if text else None, full)
           for text in (False, True) for full in (False, True)}
# The JSON columns come as text and are decoded by _decode_json, each distinct text once.
_JSON_COLUMNS = ("plan", "counts", "row_errors", "extra")
_JOB_COLUMNS = [type_coerce(c, Text).label(c.name) if c.name in _JSON_COLUMNS else c
                for c in t.jobs.c]
# Two index ranges (not one OR, which SQLite answers by scanning the workspace's jobs).
_DUE = Fast(union_all(
    select(*_JOB_COLUMNS).where(t.jobs.c.workspace == bindparam("ws"),
                                t.jobs.c.due_at <= bindparam("at")),
    select(*_JOB_COLUMNS).where(t.jobs.c.workspace == bindparam("ws"),
                                t.jobs.c.due_at.is_(None)),
).order_by(literal_column("pk")))
# For a settle in parts: the jobs due soonest, in due-time order (as `ix_jobs_due` holds them).
_SOONEST = Fast(select(*_JOB_COLUMNS).where(
    t.jobs.c.workspace == bindparam("ws"), t.jobs.c.due_at <= bindparam("at")
).order_by(t.jobs.c.due_at, t.jobs.c.pk).limit(bindparam("n")))
# The next jobs due by `at` after a (due_at, pk) position, in that order (a round's reads).
_DUE_AFTER = Fast(select(*_JOB_COLUMNS).where(
    t.jobs.c.workspace == bindparam("ws"), t.jobs.c.due_at <= bindparam("at"),
    tuple_(t.jobs.c.due_at, t.jobs.c.pk) > tuple_(bindparam("after_due"), bindparam("after_pk"))
).order_by(t.jobs.c.due_at, t.jobs.c.pk).limit(bindparam("n")))
# A job written without a due time is due at once and has no place in due-time order.
_UNTIMED = Fast(select(exists().where(t.jobs.c.workspace == bindparam("ws"),
                                      t.jobs.c.due_at.is_(None))))


def settle(conn: Connection, workspace: str, at: float, seed: int, sink: Sink | None = None
           ) -> list[dict[str, Any]]:
    """Apply everything due by `at`. Returns the jobs that reached a final status; `sink`, when
    given, receives every row result by job pk (synchronous imports answer per row)."""
    at = quantise(at)
    rows = due_jobs(conn, workspace, at)
    if not rows:
        return []
    return _settle_jobs(conn, workspace, rows, at, seed, sink)


def due_jobs(conn: Connection, workspace: str, at: float) -> list[dict[str, Any]]:
    """The jobs settling at `at` would read, decoded, in pk order."""
    # Only the jobs that are due (an indexed range): the cost of settling follows the work to
    # do, not the number of jobs stored. NULL marks a job written without a due time.
    rows = _DUE.all(conn, {"ws": workspace, "at": quantise(at)})
    if rows:
        _decode_json(conn, rows)
    return rows


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
    rows = _SOONEST.all(conn, {"ws": workspace, "at": at, "n": max_jobs + 1})
    if not rows:
        return at, []
    _decode_json(conn, rows)
    cut, due = plan_part(rows, at, max_jobs=max_jobs, max_rows=max_rows)
    if due is None:
        return cut, settle(conn, workspace, cut, seed)
    return cut, _settle_jobs(conn, workspace, due, cut, seed, None)


def due_jobs_after(conn: Connection, workspace: str, at: float, after: tuple[float, int],
                   n: int) -> list[dict[str, Any]]:
    """Up to `n` jobs due by `at` that come after `after` (due_at, pk) in due-time order,
    decoded, in that order (jobs without a due time are not among them)."""
    rows = _DUE_AFTER.all(conn, {"ws": workspace, "at": quantise(at), "after_due": after[0],
                                 "after_pk": after[1], "n": n})
    if rows:
        _decode_json(conn, rows)
    return rows


def has_untimed(conn: Connection, workspace: str) -> bool:
    """Whether a job of the workspace was written without a due time (due at once, with no
    place in due-time order: only a whole settle handles it)."""
    return bool(_UNTIMED.scalar(conn, {"ws": workspace}))


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


def as_read(job: dict[str, Any]) -> tuple[Any, ...]:
    """What `write_jobs` compares a job with: (processed, status, started_at, error,
    completed_at) as read."""
    return (job["processed"], job["status"], job["started_at"], job["error"],
            job["completed_at"])


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
    with _collector_paused():
        for list_pk, jobs_of_list in by_list.items():
            finished.extend(_settle_list(conn, workspace, list_pk, jobs_of_list, at, seed, sink,
                                         changed, sources))
    return finished


def write_jobs(conn: Connection, jobs: list[dict[str, Any]],
               was: dict[int, tuple[Any, ...]]) -> None:
    """Write the jobs back; `was` holds each one's `as_read` tuple. A job changed by someone
    else since (its `processed` moved) makes this a Conflict."""
    if not jobs:
        return
    encode = _encoder(conn.dialect)
    text = encode is not None
    if encode is None:
        def encode(value: Any) -> Any:
            return value
    groups: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for j in jobs:
        before = was[j["pk"]]
        full = (j["status"], j["started_at"], j["error"], j["completed_at"]) != before[1:]
        groups[full].append(
            {"job_pk": j["pk"], "was": before[0], "new_status": j["status"],
             "started": j["started_at"], "moment": j["updated_at"], "due": j["due_at"],
             "now_processed": j["processed"], "new_counts": encode(j["counts"]),
             "new_errors": encode(j["row_errors"]), "offset": j["source_offset"],
             "message": j["error"], "done": j["completed_at"]})
    for full, writes in groups.items():
        if not writes:
            continue
        statement = _WRITES[text, full]
        if conn.dialect.supports_sane_multi_rowcount:
            if statement.many(conn, writes) == len(writes):
                continue
        elif all(statement.run(conn, w) == 1 for w in writes):
            continue
        raise Conflict("the job was settled concurrently; retry")


def _encoder(dialect: Dialect) -> Callable[[Any], str] | None:
    """What the counts and row_errors columns' JSON type makes of a value, on SQLite with the
    default serializer (json.dumps' defaults: the same text); None elsewhere."""
    known = _ENCODERS.get(id(dialect), _UNSEEN)
    if known is not _UNSEEN:
        return known
    encode = None
    if (dialect.name == "sqlite" and dialect.paramstyle == "qmark"
            and getattr(dialect, "_json_serializer", None) is None
            and c_make_encoder is not None
            and all(_plain(t.jobs.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                    for name in ("counts", "row_errors"))):
        c_encode = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii,
                                  None, ": ", ", ", False, False, True)

        def encode(value: Any) -> str:
            return "".join(c_encode(value, 0))
    _ENCODERS[id(dialect)] = encode
    return encode


_ENCODERS: dict[int, Any] = {}


def _plain(process: Callable[[Any], Any] | None) -> bool:
    return process is not None and process({"a": [1]}) == '{"a": [1]}'


def _decode_json(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Decode the jobs' JSON columns as their column type does, each distinct text once: the
    10,000 queued jobs of one client share their plan (and, fresh, their counts) text. The
    decoded values may be shared between these job dicts; nothing changes them in place."""
    dialect = conn.dialect
    for name in _JSON_COLUMNS:
        process = t.jobs.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
        if process is None:
            continue  # the driver decodes JSON itself
        # Plans are decoded once per process, not once per settle: a settle in slices reads
        # each running job once per row, and its plan is its largest JSON.
        seen: dict[str, Any] = _PLANS if name == "plan" else {}
        if len(_PLANS) >= 4096:
            _PLANS.clear()
        for row in rows:
            raw = row[name]
            if type(raw) is str:
                value = seen.get(raw, _UNSEEN)
                if value is _UNSEEN:
                    value = seen[raw] = process(raw)
                row[name] = value
            else:
                row[name] = process(raw)


_UNSEEN = object()
_PLANS: dict[str, Any] = {}


@contextmanager
def _collector_paused() -> Iterator[None]:
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
