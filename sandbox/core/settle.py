"""Settling: applying, in due-time order across every job of a list, exactly the rows a
workspace clock has made due, so a job's status and counts are a pure function of its plan and
the clock (a test that advances 90 s sees what a user who waited 90 s would see)."""

from __future__ import annotations

import csv
import gc
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from operator import is_not, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    literal_column,
    select,
    type_coerce,
    union_all,
    update,
)

from sandbox.core import lists
from sandbox.core import store as t
from sandbox.core.clock import quantise
from sandbox.core.errors import Conflict
from sandbox.core.imports import (
    ImportPolicy,
    ListState,
    RowResult,
    decide,
    normalise,
    read_rows,
    row_keys,
)
from sandbox.core.lifecycle import (
    ACTIVE,
    NEVER,
    STATUSES,
    US,
    due_at,
    due_count,
    row_due_at,
    timeline_status,
)
from sandbox.core.sql import Fast

MAX_ROWS_PER_BATCH = 20_000
# A list's leads are read into a lists.KeyFilter when a settle has at least this many rows to
# apply to it (and more rows than the list has leads).
_FILTER_FROM = 2048
MAX_ROW_ERRORS = 1000

# Row resolvers turn an identifier row into the lead to store (e.g. a username into an X
# profile). Registered by name so that the plan, which is data, can refer to one.
Resolver = Callable[[dict[str, Any], "ResolveContext"], dict[str, Any]]
RESOLVERS: dict[str, Resolver] = {}


class ResolveContext(NamedTuple):
    """What a resolver may draw on: one is built per row, so it is a plain tuple."""

    seed: int
    workspace: str
    at: float


# Statements of the settling path, built once: building a statement costs more than running it.
_BY_JOB_PK = t.jobs.c.pk == bindparam("job_pk")
_MOMENT = bindparam("moment", type_=t.jobs.c.updated_at.type)
# A settle changes its jobs in memory (status, progress, counts, finish, due time) and writes
# every job it changed once, at the end, in one executemany, on SQLite on the driver
# (core.sql.Fast): one UPDATE per job instead of up to three (10,000 queued jobs are 10,000
# rows to convert). The `processed` guard makes a concurrent settle of the same job a Conflict,
# not a double count.
_WRITE = Fast(update(t.jobs).where(_BY_JOB_PK, t.jobs.c.processed == bindparam("was")).values(
    status=bindparam("new_status"), started_at=bindparam("started"),
    updated_at=_MOMENT, due_at=bindparam("due"), processed=bindparam("now_processed"),
    counts=bindparam("new_counts", type_=t.jobs.c.counts.type),
    row_errors=bindparam("new_errors", type_=t.jobs.c.row_errors.type),
    source_offset=bindparam("offset"), error=bindparam("message"),
    completed_at=bindparam("done", type_=t.jobs.c.completed_at.type)))
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


Sink = dict[int, list[RowResult]]


def settle(conn: Connection, workspace: str, at: float, seed: int, sink: Sink | None = None
           ) -> list[dict[str, Any]]:
    """Apply everything due by `at`. Returns the jobs that reached a final status; `sink`, when
    given, receives every row result by job pk (synchronous imports answer per row)."""
    at = quantise(at)
    # Only the jobs that are due (an indexed range): the cost of settling follows the work to
    # do, not the number of jobs stored. NULL marks a job written without a due time.
    rows = _DUE.all(conn, {"ws": workspace, "at": at})
    if not rows:
        return []
    _decode_json(conn, rows)
    was = {job["pk"]: job["processed"] for job in rows}
    changed: dict[int, dict[str, Any]] = {}  # by pk: the jobs to write back
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
                                         changed))
    _write_jobs(conn, list(changed.values()), was)
    return finished


def _write_jobs(conn: Connection, jobs: list[dict[str, Any]], was: dict[int, int]) -> None:
    writes = [{"job_pk": j["pk"], "was": was[j["pk"]], "new_status": j["status"],
               "started": j["started_at"], "moment": j["updated_at"], "due": j["due_at"],
               "now_processed": j["processed"], "new_counts": j["counts"],
               "new_errors": j["row_errors"], "offset": j["source_offset"],
               "message": j["error"], "done": j["completed_at"]} for j in jobs]
    if not writes:
        return
    if conn.dialect.supports_sane_multi_rowcount:
        if _WRITE.many(conn, writes) == len(writes):
            return
    elif all(_WRITE.run(conn, w) == 1 for w in writes):
        return
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
        seen: dict[str, Any] = {}
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
                 at: float, seed: int, sink: Sink | None, changed: dict[int, dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    finished: list[dict[str, Any]] = []
    live = list(jobs)
    due_rows = sum(due_count(j, at) - j["processed"] for j in jobs)
    held = lists.key_filter(conn, list_pk, due_rows) if due_rows >= _FILTER_FROM else None
    sources: dict[int, tuple[str, str]] = {}  # read once for all the batches of the settle
    while live:
        targets = {j["pk"]: due_count(j, at) for j in live}
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
        finished.extend(_apply_batch(conn, workspace, list_pk, pending, targets, seed, sink,
                                     held, sources))
        live = [j for j in live if j["status"] == "running" and j["processed"] < j["total"]
                and cut < at]
    done = [j for j in jobs if j["status"] == "running" and j["processed"] >= j["total"]]
    _finish_many([(j, "completed", None, row_due_at(j, j["total"] - 1)
                   if j["total"] else float(j["running_from"])) for j in done])
    changed.update((j["pk"], j) for j in done)
    finished.extend(done)
    return finished


def _apply_batch(conn: Connection, workspace: str, list_pk: int, pending: list[dict[str, Any]],
                 targets: dict[int, int], seed: int, sink: Sink | None,
                 held: lists.KeyFilter | None, sources: dict[int, tuple[str, str]]
                 ) -> list[dict[str, Any]]:
    unread = [j["pk"] for j in pending if j["pk"] not in sources]
    if unread:
        sources.update((r.job_pk, (r.format, r.content)) for r in conn.execute(
            select(t.job_sources).where(t.job_sources.c.job_pk.in_(unread))))
    # (due, job pk, row index, row, job, the row's keys)
    batch: list[tuple[float, int, int, dict[str, Any], dict[str, Any],
                      tuple[str | None, str | None]]] = []
    policies: dict[int, ImportPolicy] = {}
    last_read: dict[int, int] = {}
    new_offsets: dict[int, int] = {}
    unreadable: list[tuple[dict[str, Any], str, str | None, float]] = []
    for job in list(pending):
        fmt, content = sources[job["pk"]]
        want = targets[job["pk"]] - job["processed"]
        try:
            rows, new_offsets[job["pk"]] = read_rows(fmt, content, job["source_offset"], want,
                                                     job["plan"])
        except (csv.Error, ValueError) as exc:
            # Stored rows that cannot be read (e.g. written by an older build) fail their job
            # once, instead of making every later clock move of the workspace an error.
            pending.remove(job)
            unreadable.append((job, "failed", f"the import source could not be read: {exc}",
                               row_due_at(job, int(job["processed"]))))
            continue
        resolver = RESOLVERS.get(job["plan"].get("resolve", ""))
        due_of = _row_clock(job)
        pk = job["pk"]
        policy = policies[pk] = _policy(job["plan"]["policy"])
        last_read[pk] = job["processed"] + len(rows) - 1
        for index, row in enumerate(rows, job["processed"]):
            due = due_of(index)
            if resolver:
                row = resolver(row, _context((seed, workspace, due)))
            batch.append((due, pk, index, row, job, row_keys(policy, row)))
    _finish_many(unreadable)
    if not pending:
        return [job for job, *_ in unreadable]
    if len(pending) > 1:
        # (due, pk, index) is unique, so the tuples order by it and never compare the rows.
        batch.sort()
    state = _load_state(conn, workspace, list_pk, pending, policies, batch, held)
    inserted: list[tuple[float, str]] = []  # instant and job of each insert, in insert order
    updated: dict[str, float] = {}  # lead key -> instant of its last update
    failed_jobs: dict[int, tuple[str, float, int]] = {}
    # Per job: its counts and row errors, carried on as rows are decided.
    tallies = {j["pk"]: (dict(j["counts"]), list(j["row_errors"])) for j in pending}
    results: dict[int, list[RowResult]] = defaultdict(list)
    added_total = 0
    for due, pk, index, row, job, keys in batch:
        if pk in failed_jobs:
            continue
        result, _stored = decide(policies[pk], index, row, state, keys)
        if sink is not None:
            results[pk].append(result)
        counts, errors = tallies[pk]
        outcome = result.outcome
        counts[outcome] += 1
        if outcome == "added":
            added_total += 1
            inserted.append((due, job["id"]))
        elif outcome == "updated":
            updated[result.key] = due  # type: ignore[index]
        elif outcome == "failed" and result.code and len(errors) < MAX_ROW_ERRORS:
            errors.append({"row_number": index + 1, "code": result.code,
                           "message": result.message or result.code})
        if result.invalid_email:
            counts["invalid_email"] += 1
        if result.invalid_sms:
            counts["invalid_sms"] += 1
        if result.fail_job:
            failed_jobs[pk] = (result.fail_job, due, index + 1)
    alt_field = next((policies[j["pk"]].alt_key_field for j in pending
                      if policies[j["pk"]].alt_key_field), None)
    _write_leads(conn, list_pk, state, inserted, updated, alt_field, held)
    if sink is not None:
        for pk, found in results.items():
            sink.setdefault(pk, []).extend(found)
    finished = [job for job, *_ in unreadable]
    for job in pending:
        counts, errors = tallies[job["pk"]]
        last_due = job["updated_at"]
        # Its last row decided: the failing one, else the last it read.
        failure = failed_jobs.get(job["pk"])
        last_row = failure[2] - 1 if failure else last_read[job["pk"]]
        if last_row >= job["processed"]:
            last_due = row_due_at(job, last_row)
        processed = targets[job["pk"]]
        if job["pk"] in failed_jobs:
            processed = failed_jobs[job["pk"]][2]
        job.update(processed=processed, counts=counts, row_errors=errors, updated_at=last_due,
                   source_offset=new_offsets[job["pk"]])
        job["due_at"] = due_at(job)
    failed = [j for j in pending if j["pk"] in failed_jobs]
    _finish_many([(j, "failed", failed_jobs[j["pk"]][0], failed_jobs[j["pk"]][1])
                  for j in failed])
    finished.extend(failed)
    if added_total:
        conn.execute(update(t.lists).where(t.lists.c.pk == list_pk)
                     .values(lead_count=t.lists.c.lead_count + added_total))
    return finished


def _row_clock(job: dict[str, Any]) -> Callable[[int], float]:
    """`row_due_at` for one job, with what it reads from the job looked up once."""
    rate = job["plan"].get("rate")
    start = float(job["running_from"])
    if rate is None:
        return lambda _index: start
    start_us = round(start * US)
    if start_us / US == start and abs(start) < 2**31:
        # `start` is a whole microsecond and the sum is within half a microsecond of one, so
        # quantise(start + offset) is that microsecond count over US: one exact division
        # instead of round(x, 6), a quarter of the cost (checked equal on 250,000 cases).
        return lambda index: (start_us + math.ceil((index + 1) * US / rate)) / US
    return lambda index: quantise(start + math.ceil((index + 1) * US / rate) / US)


_POLICIES: dict[tuple[Any, ...], ImportPolicy] = {}
_not_none = partial(is_not, None)
_context = partial(tuple.__new__, ResolveContext)  # without NamedTuple's Python-level __new__


def _policy(data: dict[str, Any]) -> ImportPolicy:
    # Jobs of one vendor share a handful of policies; 10,000 queued jobs need not each rebuild
    # theirs from JSON.
    token = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in data.items())
    policy = _POLICIES.get(token)
    if policy is None:
        if len(_POLICIES) >= 1024:
            _POLICIES.clear()
        policy = _POLICIES[token] = ImportPolicy.from_json(data)
    return policy


def _load_state(conn: Connection, workspace: str, list_pk: int, jobs: list[dict[str, Any]],
                policies: dict[int, ImportPolicy], batch: list[tuple[Any, ...]],
                held: lists.KeyFilter | None) -> ListState:
    pairs = list(map(itemgetter(5), batch))
    keys: Iterable[str] = filter(None, map(itemgetter(0), pairs))
    alts: Iterable[str] = filter(_not_none, map(itemgetter(1), pairs))
    if held is not None:
        keys, alts = held.may_hold(keys), held.may_hold(alts)
    state = ListState()
    # In pk order: when leads share an alternative key, the newest one answers for it.
    for lead in lists.matching_leads(conn, list_pk, keys, alts):
        state.by_key[lead["key"]] = dict(lead["data"])
        if lead["alt_key"]:
            state.by_alt[lead["alt_key"]] = lead["key"]
    if any(policies[j["pk"]].check_block_list for j in jobs):
        vendor = jobs[0]["vendor"]
        state.blocked = frozenset(
            v.lower() for v in conn.execute(select(t.block_list.c.value).where(
                t.block_list.c.workspace == workspace, t.block_list.c.vendor == vendor,
                # An entry scoped to a client (Smartlead) blocks only that client's campaigns;
                # imports carry no client, so only global entries apply to them.
                t.block_list.c.client_id.is_(None))
            ).scalars())
    return state


def _write_leads(conn: Connection, list_pk: int, state: ListState,
                 inserted: list[tuple[float, str]], updated: dict[str, float],
                 alt_field: str | None, held: lists.KeyFilter | None) -> None:
    inserts: list[tuple[Any, ...]] = []
    add, known_alt, last_update = inserts.append, state.inserted_alt.get, updated.get
    # state.inserts gained its keys in the order the rows were added: `inserted`'s order.
    for (key, data), (at, job_id) in zip(state.inserts.items(), inserted, strict=True):
        known = known_alt(key)
        if known is not None and known[0] == alt_field:
            alt = known[1]
        else:
            alt = normalise(alt_field, data[alt_field]) if alt_field and data.get(alt_field) \
                else None
        add((list_pk, key, alt, data, at, last_update(key, at), job_id))
    if held is not None:
        held.add(map(itemgetter(1), inserts))
        held.add(filter(_not_none, map(itemgetter(2), inserts)))
    if inserts:
        lists.insert_leads(conn, inserts)
    if state.updates:
        lists.update_leads(conn, list_pk, [(key, data, updated[key])
                                           for key, data in state.updates.items()])


def _finish_many(items: list[tuple[dict[str, Any], str, str | None, float]]) -> None:
    for job, status, error, at in items:
        job.update(status=status, error=error, completed_at=at, updated_at=at, due_at=NEVER)
