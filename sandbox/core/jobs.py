"""Import jobs: creating, finding and forcing them. The lifecycle itself is data in
`lifecycle`, and the clock-driven progress is `settle`; both are re-exported here so that
callers have one module to import."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Connection, Text, bindparam, exists, insert, or_, select, update

from sandbox.core import store as t
from sandbox.core.clock import quantise
from sandbox.core.errors import Conflict, NotFound
from sandbox.core.imports import ImportPolicy, RowResult
from sandbox.core.lifecycle import (
    ACTIVE,
    DUE_SLACK,
    FORCED_TRANSITIONS,
    NEVER,
    STATUSES,
    TERMINAL,
    US,
    Pacing,
    due_at,
    due_count,
    legal_targets,
    next_due,
    offset_us,
    row_due_at,
)
from sandbox.core.settle import RESOLVERS, ResolveContext, Resolver, Sink, settle
from sandbox.core.sql import Fast, json_text

__all__ = ["ACTIVE", "FORCED_TRANSITIONS", "NEVER", "RESOLVERS", "STATUSES", "TERMINAL",
           "Pacing", "ResolveContext", "Resolver", "add", "append_rows", "create", "due_at",
           "due_count", "find", "find_any_vendor", "force", "get_by_pk", "has_due", "is_due",
           "legal_targets", "new_counts", "next_due", "row_due_at", "run_now", "settle", "start"]

COUNT_NAMES = ("added", "updated", "unchanged", "skipped", "blocked", "failed",
               "invalid_email", "invalid_sms")

# Statements of the request path, built once: building a statement costs more than running it.
_BY_PK = Fast(select(t.jobs).where(t.jobs.c.pk == bindparam("job_pk")))
_INSERT_JOB = Fast(insert(t.jobs))
# Where a JSON column may be bound as json.dumps's text (sql.json_text), this INSERT takes
# that text as given, so that what every new job stores alike (its counts, its row errors) is
# serialised once, not per request; elsewhere _INSERT_JOB binds the values.
_JSON_COLUMNS = tuple(c.key for c in t.jobs.c if isinstance(c.type, JSON))
_INSERT_JOB_TEXT = Fast(insert(t.jobs).values(
    {name: bindparam(name, type_=Text()) for name in _JSON_COLUMNS}))
_INSERT_SOURCE = Fast(insert(t.job_sources))


def new_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_NAMES, 0)


def create(conn: Connection, *, workspace: str, vendor: str, job_id: str, list_pk: int,
           kind: str, now: float, source_format: str, content: str, offset: int, total: int,
           policy: ImportPolicy, pacing: Pacing | None, plan: dict[str, Any] | None = None,
           extra: dict[str, Any] | None = None) -> int:
    """Store a job and its rows. pacing None leaves it `created` until `start` (Which50)."""
    return int(add(conn, workspace=workspace, vendor=vendor, job_id=job_id, list_pk=list_pk,
                   kind=kind, now=now, source_format=source_format, content=content,
                   offset=offset, total=total, policy=policy, pacing=pacing, plan=plan,
                   extra=extra)["pk"])


def add(conn: Connection, *, workspace: str, vendor: str, job_id: str, list_pk: int,
        kind: str, now: float, source_format: str, content: str, offset: int, total: int,
        policy: ImportPolicy, pacing: Pacing | None, plan: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`create`, answering the job as `get_by_pk` would read it back (a test holds them
    equal): the create answers of the request path need no second statement."""
    full_plan = {**(plan or {}), "policy": _policy_json(policy)}
    values: dict[str, Any] = dict(
        workspace=workspace, vendor=vendor, id=job_id, list_pk=list_pk, kind=kind,
        status="created", plan=full_plan, total=total, processed=0, counts=new_counts(),
        row_errors=[], created_at=now, updated_at=now, source_offset=offset,
        extra=extra or {}, due_at=NEVER)
    if pacing is not None:
        # What `start` would write, in the same INSERT (one statement instead of three).
        values.update(_queued(full_plan, now=now, pacing=pacing))
    encode = json_text(conn.dialect)
    if encode is not None:
        pk = _INSERT_JOB_TEXT.insert(conn, values | {
            "plan": encode(values["plan"]), "counts": _NEW_COUNTS_TEXT, "row_errors": "[]",
            "extra": encode(values["extra"])})
    else:
        pk = _INSERT_JOB.insert(conn, values)
    _INSERT_SOURCE.run(conn, {"job_pk": pk, "format": source_format, "content": content})
    # Every column, in the table's order, as get_by_pk reads it back (values names only columns).
    job = _UNSET_JOB | values
    job["pk"] = pk
    return job


_UNSET_JOB: dict[str, Any] = dict.fromkeys(t.jobs.c.keys())
_NEW_COUNTS_TEXT = json.dumps(new_counts())


@lru_cache(maxsize=256)
def _policy_json(policy: ImportPolicy) -> dict[str, Any]:
    """A policy as its job's plan stores it (lists, not tuples, as JSON reads back): a few
    policies serve every job, so each is converted once. Shared: never changed in place."""
    converted: dict[str, Any] = json.loads(json.dumps(policy.to_json()))
    return converted


def append_rows(conn: Connection, job_pk: int, rows_jsonl: str, added: int) -> None:
    """Add a batch of rows to a job that has not started (Which50 uploads)."""
    src = conn.execute(select(t.job_sources.c.content).where(
        t.job_sources.c.job_pk == job_pk)).scalar_one()
    conn.execute(update(t.job_sources).where(t.job_sources.c.job_pk == job_pk)
                 .values(content=src + rows_jsonl))
    conn.execute(update(t.jobs).where(t.jobs.c.pk == job_pk)
                 .values(total=t.jobs.c.total + added))


def start(conn: Connection, job_pk: int, *, now: float, pacing: Pacing) -> None:
    row = get_by_pk(conn, job_pk)
    conn.execute(update(t.jobs).where(t.jobs.c.pk == job_pk).values(
        **_queued(row["plan"], now=now, pacing=pacing)))


def _queued(plan: dict[str, Any], *, now: float, pacing: Pacing) -> dict[str, Any]:
    queued_until = quantise(now + pacing.queue_wait)
    return dict(status="queued", queued_until=queued_until,
                running_from=quantise(queued_until + pacing.start_delay), updated_at=now,
                plan={**plan, "rate": pacing.rows_per_second},
                due_at=queued_until - DUE_SLACK)


def get_by_pk(conn: Connection, pk: int) -> dict[str, Any]:
    row = _BY_PK.first(conn, {"job_pk": pk})
    if row is None:
        raise NotFound("import job not found")
    return row


# Whether settling would find work: asked at every workspace open, nearly always "no".
_HAS_DUE = Fast(select(or_(
    exists().where(t.jobs.c.workspace == bindparam("ws"), t.jobs.c.due_at <= bindparam("at")),
    exists().where(t.jobs.c.workspace == bindparam("ws"), t.jobs.c.due_at.is_(None)))))


def is_due(job: dict[str, Any], at: float) -> bool:
    """Whether settling at `at` would change this job (the test `has_due` makes in SQL)."""
    return job["due_at"] is None or job["due_at"] <= quantise(at)


def has_due(conn: Connection, workspace: str, at: float) -> bool:
    """Whether `settle(conn, workspace, at, ...)` has anything to do (same due-time test)."""
    return bool(_HAS_DUE.scalar(conn, {"ws": workspace, "at": quantise(at)}))


def find(conn: Connection, workspace: str, vendor: str, job_id: str,
         list_pk: int | None = None) -> dict[str, Any]:
    cond = [t.jobs.c.workspace == workspace, t.jobs.c.vendor == vendor, t.jobs.c.id == job_id]
    if list_pk is not None:
        cond.append(t.jobs.c.list_pk == list_pk)
    row = conn.execute(select(t.jobs).where(*cond)).mappings().first()
    if row is None:
        raise NotFound(f"import job '{job_id}' not found", field="importJobId")
    return dict(row)


def find_any_vendor(conn: Connection, workspace: str, job_id: str) -> dict[str, Any]:
    row = conn.execute(select(t.jobs).where(t.jobs.c.workspace == workspace,
                                            t.jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFound(f"job '{job_id}' not found in this workspace", field="jobId")
    return dict(row)


def run_now(conn: Connection, *, workspace: str, seed: int, at: float, **create_args: Any
            ) -> tuple[dict[str, Any], list[RowResult]]:
    """A synchronous import: create the job, process every row at `at`, return the job and
    the per-row results (in row order)."""
    pk = create(conn, workspace=workspace, now=at, pacing=Pacing.instant(), **create_args)
    sink: Sink = {}
    settle(conn, workspace, at, seed, sink)
    results = sorted(sink.get(pk, []), key=lambda r: r.index)
    return get_by_pk(conn, pk), results


def force(conn: Connection, job: dict[str, Any], to: str, *, at: float, seed: int,
          error: str | None = None, pacing: Pacing | None = None) -> dict[str, Any]:
    """Apply a transition a test or an endpoint asked for (after settling to `at`)."""
    at = quantise(at)
    status = job["status"]
    if to not in FORCED_TRANSITIONS.get(status, frozenset()):
        raise Conflict(f"cannot move a job from '{status}' to '{to}'",
                       legal=legal_targets(status), current=status)
    pk = job["pk"]
    if to == "queued":
        start(conn, pk, now=at, pacing=pacing or Pacing())
    elif to == "paused":
        conn.execute(update(t.jobs).where(t.jobs.c.pk == pk).values(
            status="paused", updated_at=at, extra={**job["extra"], "paused_from": status},
            due_at=NEVER))
    elif to in {"running", "starting"}:
        rate = job["plan"].get("rate")
        # Resume where it stopped: the next row is due one row-interval after (re)starting.
        resume_at = at + 1.0 if to == "starting" else at
        done = offset_us(rate, int(job["processed"])) / US if rate else 0.0
        running_from = quantise(resume_at - done)
        conn.execute(update(t.jobs).where(t.jobs.c.pk == pk).values(
            status=to, queued_until=min(at, job["queued_until"] or at),
            running_from=running_from, started_at=job["started_at"] or at, updated_at=at,
            due_at=due_at({**job, "status": to, "running_from": running_from})))
    elif to == "completed":
        # Everything left is processed now, as if the importer had caught up at once.
        plan = {**job["plan"], "rate": None}
        conn.execute(update(t.jobs).where(t.jobs.c.pk == pk).values(
            status="running", plan=plan, running_from=at, queued_until=min(
                at, job["queued_until"] or at), started_at=job["started_at"] or at,
            due_at=due_at({**job, "status": "running", "plan": plan, "running_from": at})))
        settle(conn, job["workspace"], at, seed)
    else:  # failed | canceled
        conn.execute(update(t.jobs).where(t.jobs.c.pk == pk).values(
            status=to, error=error if to == "failed" else None, completed_at=at, updated_at=at,
            due_at=NEVER))
    return get_by_pk(conn, pk)
