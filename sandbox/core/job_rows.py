"""The job rows settling works on: the statements that read due jobs (decoding their JSON
columns once per distinct text) and the one that writes settled jobs back in batches, guarded
against a concurrent settle."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    case,
    exists,
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
    update,
)

from sandbox.core import store as t
from sandbox.core.clock import quantise
from sandbox.core.errors import Conflict
from sandbox.core.lifecycle import DUE_SLACK
from sandbox.core.sql import Fast, json_text

__all__ = ["as_read", "due_jobs", "due_jobs_after", "has_untimed", "soonest_jobs",
           "start_waiting", "write_jobs"]

# Statements built once: building a statement costs more than running it.
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
    them (SQLite stores that text), from `sql.json_text`'s prebuilt C encoder."""
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
# The next jobs due by `at` after a (due_at, pk) position, in that order, with their stored
# rows (a round's reads: one statement, not a second one for the rows).
_DUE_AFTER = Fast(select(
    *_JOB_COLUMNS, t.job_sources.c.format.label("source_format"),
    t.job_sources.c.content.label("source_content"),
).select_from(t.jobs.outerjoin(t.job_sources, t.job_sources.c.job_pk == t.jobs.c.pk)).where(
    t.jobs.c.workspace == bindparam("ws"), t.jobs.c.due_at <= bindparam("at"),
    tuple_(t.jobs.c.due_at, t.jobs.c.pk) > tuple_(bindparam("after_due"), bindparam("after_pk"))
).order_by(t.jobs.c.due_at, t.jobs.c.pk).limit(bindparam("n")))
# A job written without a due time is due at once and has no place in due-time order.
_UNTIMED = Fast(select(exists().where(t.jobs.c.workspace == bindparam("ws"),
                                      t.jobs.c.due_at.is_(None))))

# Queued jobs whose wait ends by `at` and whose start does not: each becomes `starting` at the
# end of its wait, as `rounds.Round._start` moves it (the due time it was written with, the
# status the timeline gives at that instant, `started_at` if unset, `updated_at` that instant,
# due again when it runs). Only jobs whose due time is exactly the one `lifecycle.due_at`
# writes for a queued job (the same double subtraction in SQLite as in Python): any other
# (stale, forced) goes through the stream as before.
_J = t.jobs.c
_START_WAITING = Fast(update(t.jobs).where(_J.pk.in_(
    select(_J.pk).where(
        _J.workspace == bindparam("ws"), _J.due_at <= bindparam("at"), _J.status == "queued",
        _J.due_at == _J.queued_until - bindparam("slack"), _J.queued_until < _J.running_from,
        _J.running_from - bindparam("slack") > bindparam("at"),
    ).order_by(_J.due_at, _J.pk).limit(bindparam("n")))
).values(status="starting", updated_at=_J.queued_until,
         started_at=case((or_(_J.started_at.is_(None), _J.started_at == 0), _J.queued_until),
                         else_=_J.started_at),
         due_at=_J.running_from - bindparam("slack")))


def due_jobs(conn: Connection, workspace: str, at: float) -> list[dict[str, Any]]:
    """The jobs settling at `at` would read, decoded, in pk order."""
    # Only the jobs that are due (an indexed range): the cost of settling follows the work to
    # do, not the number of jobs stored. NULL marks a job written without a due time.
    rows = _DUE.all(conn, {"ws": workspace, "at": quantise(at)})
    if rows:
        _decode_json(conn, rows)
    return rows


def soonest_jobs(conn: Connection, workspace: str, at: float, n: int) -> list[dict[str, Any]]:
    """Up to `n` jobs due by `at`, soonest first (as `ix_jobs_due` holds them), decoded."""
    rows = _SOONEST.all(conn, {"ws": workspace, "at": quantise(at), "n": n})
    if rows:
        _decode_json(conn, rows)
    return rows


def due_jobs_after(conn: Connection, workspace: str, at: float, after: tuple[float, int],
                   n: int) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str]]]:
    """Up to `n` jobs due by `at` that come after `after` (due_at, pk) in due-time order,
    decoded, in that order (jobs without a due time are not among them); and by job pk, the
    (format, content) of their stored rows."""
    rows = _DUE_AFTER.all(conn, {"ws": workspace, "at": quantise(at), "after_due": after[0],
                                 "after_pk": after[1], "n": n})
    sources: dict[int, tuple[str, str]] = {}
    for row in rows:
        fmt, content = row.pop("source_format"), row.pop("source_content")
        if fmt is not None:
            sources[row["pk"]] = (fmt, content)
    if rows:
        _decode_json(conn, rows)
    return rows, sources


def start_waiting(conn: Connection, workspace: str, at: float, limit: int) -> int:
    """Move up to `limit` of the workspace's queued jobs whose wait ends by `at`, and that are
    not running by `at`, to `starting` in one statement (see _START_WAITING), the soonest due
    first; returns how many. A round would otherwise read, change and write each one for that
    alone (bench A: 1,200 a second)."""
    return _START_WAITING.run(conn, {"ws": workspace, "at": quantise(at), "slack": DUE_SLACK,
                                     "n": limit})


def has_untimed(conn: Connection, workspace: str) -> bool:
    """Whether a job of the workspace was written without a due time (due at once, with no
    place in due-time order: only a whole settle handles it)."""
    return bool(_UNTIMED.scalar(conn, {"ws": workspace}))


def as_read(job: dict[str, Any]) -> tuple[Any, ...]:
    """What `write_jobs` compares a job with: (processed, status, started_at, error,
    completed_at) as read."""
    return (job["processed"], job["status"], job["started_at"], job["error"],
            job["completed_at"])


def write_jobs(conn: Connection, jobs: list[dict[str, Any]],
               was: dict[int, tuple[Any, ...]]) -> None:
    """Write the jobs back; `was` holds each one's `as_read` tuple. A job changed by someone
    else since (its `processed` moved) makes this a Conflict."""
    if not jobs:
        return
    encode = json_text(conn.dialect)
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
