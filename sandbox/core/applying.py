"""Applying one batch of due rows to a list: reading and resolving them, deciding each against
the list's leads in due-time order, writing the leads, and carrying each job's counts, errors
and progress (settle decides which rows are due and writes the jobs)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, select, update

from sandbox.core import lists
from sandbox.core import store as t
from sandbox.core.clock import quantise
from sandbox.core.imports import (
    ImportPolicy,
    ListState,
    RowResult,
    decide,
    key_reader,
    normalise,
    read_rows,
)
from sandbox.core.lifecycle import NEVER, US, due_at, row_due_at
from sandbox.core.memo import per_object

MAX_ROW_ERRORS = 1000

# Row resolvers turn an identifier row into the lead to store (e.g. a username into an X
# profile). Registered by name so that the plan, which is data, can refer to one.
Resolver = Callable[[dict[str, Any], "ResolveContext"], dict[str, Any]]
RESOLVERS: dict[str, Resolver] = {}
# Resolvers that read nothing but the row (no context is built for each row they resolve).
ROW_RESOLVERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
# Resolvers (of RESOLVERS) whose rows resolved at two instants differ only in the values of
# fields that are non-empty text and no key: a ticker round may then fold a row into the next
# row of the same lead from the same source row (see `decide_rows`).
FOLDABLE: set[str] = set()


class ResolveContext(NamedTuple):
    """What a resolver may draw on: one is built per row, so it is a plain tuple."""

    seed: int
    workspace: str
    at: float


Sink = dict[int, list[RowResult]]
# A row to decide: (due, job pk, row index, row, job, the row's keys). The row may be given
# unresolved, as a tuple (source row, resolver or None), by a caller that knows its keys.
Entry = tuple[float, int, int, Any, dict[str, Any], tuple[str | None, str | None]]


class LaneRow(tuple[Any, ...]):
    """An unresolved row (source row, resolver) whose counts its job already holds (a round's
    whole visit, `lanes`): deciding it applies its data, and counts nothing."""

    __slots__ = ()


def apply_batch(conn: Connection, workspace: str, list_pk: int, pending: list[dict[str, Any]],
                targets: dict[int, int], seed: int, sink: Sink | None,
                held: lists.KeyFilter | None, sources: dict[int, tuple[str, str]]
                ) -> list[dict[str, Any]]:
    """Apply the rows of `pending` up to `targets` (by job pk) in due order and update the job
    dicts; returns the jobs that failed. `held` (when given) filters the keys to look up and
    learns the keys inserted; `sources` caches the jobs' stored rows across batches."""
    unread = [j["pk"] for j in pending if j["pk"] not in sources]
    if unread:
        sources.update((r.job_pk, (r.format, r.content)) for r in conn.execute(
            select(t.job_sources).where(t.job_sources.c.job_pk.in_(unread))))
    batch: list[Entry] = []
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
            pending.remove(job)
            unreadable.append(unreadable_source(job, int(job["processed"]), exc))
            continue
        pk = job["pk"]
        policy = policies[pk] = _policy(job["plan"]["policy"])
        indexes = range(job["processed"], job["processed"] + len(rows))
        last_read[pk] = indexes.stop - 1
        dues = row_dues(job, indexes)
        # Rows resolved, and their keys worked out, by map: no Python-level loop per row.
        name = job["plan"].get("resolve", "")
        if name in ROW_RESOLVERS:
            rows = list(map(ROW_RESOLVERS[name], rows))
        elif name in RESOLVERS:
            rows = list(map(RESOLVERS[name], rows,
                            map(_context, zip(repeat(seed), repeat(workspace), dues))))
        batch.extend(zip(dues, repeat(pk), indexes, rows, repeat(job),
                         map(_key_reader(policy), rows)))
    finish_many(unreadable)
    if not pending:
        return [job for job, *_ in unreadable]
    if len(pending) > 1:
        # (due, pk, index) is unique, so the tuples order by it and never compare the rows.
        batch.sort()
    return [job for job, *_ in unreadable] + _carry(
        conn, workspace, list_pk, pending, batch, policies, targets, last_read, new_offsets,
        sink, held)


class Decided(NamedTuple):
    """What deciding a batch did to its jobs: each one's counts and row errors (new objects),
    and the jobs a row failed: pk -> (error, instant, that row's number)."""

    tallies: dict[int, tuple[dict[str, int], list[dict[str, Any]]]]
    failed: dict[int, tuple[str, float, int]]


def decide_rows(conn: Connection, workspace: str, list_pk: int, pending: list[dict[str, Any]],
                batch: list[Entry], policies: dict[int, ImportPolicy], sink: Sink | None,
                held: lists.KeyFilter | None, *, unresolved: bool = False,
                learn: dict[int, Any] | None = None) -> Decided:
    """Decide the rows of `batch` (in due order) against the list's leads and write the leads
    and the list's lead count; the jobs of `pending` (in pk order) are left to the caller.
    `unresolved`: some rows are given unresolved (rounds), and may fold. `learn` (by id of
    source row) gets each unresolved row's source decided added or updated: its flags and
    keys."""
    state = _load_state(conn, workspace, list_pk, pending, policies, batch, held)
    inserted: list[tuple[float, str]] = []  # instant and job of each insert, in insert order
    updated: dict[str, float] = {}  # lead key -> instant of its last update
    failed_jobs: dict[int, tuple[str, float, int]] = {}
    # Per job: its counts and row errors, carried on as rows are decided.
    tallies = {j["pk"]: (dict(j["counts"]), list(j["row_errors"])) for j in pending}
    results: dict[int, list[RowResult]] = defaultdict(list)
    added_total = 0
    folds = _foldable(batch) if unresolved and sink is None else ()
    # Of the rows folded: each key's last one (applied instead, should the next row of its key
    # not be applied), and the invalid-value flags of each source row decided added or updated.
    folded: dict[str, Entry] = {}
    clean: dict[int, tuple[bool, bool]] = {}
    for position, entry in enumerate(batch):
        due, pk, index, row, job, keys = entry
        if pk in failed_jobs:
            if folded and keys[0] in folded:
                _unfold(folded.pop(keys[0]), policies, state, updated)
            continue
        if row.__class__ is tuple:
            source, resolve = row
            if position in folds:
                flags = clean.get(id(source))
                if flags is not None:
                    # Its source row was decided added or updated before in this batch: the
                    # lead exists and holds every value of it a policy keeps (no value leaves
                    # a lead), and the row updates it, as the next row of its key will do
                    # again over all it writes. So it is counted, not resolved nor merged.
                    counts = tallies[pk][0]
                    counts["updated"] += 1
                    counts["invalid_email"] += flags[0]
                    counts["invalid_sms"] += flags[1]
                    folded[keys[0]] = entry  # type: ignore[index]
                    continue
            row = _resolved(source, resolve, due)
        elif row.__class__ is LaneRow:
            # Counted already: its data is applied unless the next row of its lead, from the
            # same source row, overwrites it (and is kept, should that one not be applied).
            if position in folds:
                folded[keys[0]] = entry  # type: ignore[index]
                continue
            if folded:
                folded.pop(keys[0], None)  # type: ignore[arg-type]
            _unfold(entry, policies, state, updated)
            continue
        else:
            source = None
        if folded:
            folded.pop(keys[0], None)  # type: ignore[arg-type]
        result, _stored = decide(policies[pk], index, row, state, keys)
        if source is not None and result.outcome in _APPLIED:
            flags = clean[id(source)] = (result.invalid_email, result.invalid_sms)
            if learn is not None:
                learn[id(source)] = (source, flags, keys)
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
    if added_total:
        conn.execute(update(t.lists).where(t.lists.c.pk == list_pk)
                     .values(lead_count=t.lists.c.lead_count + added_total))
    return Decided(tallies, failed_jobs)


_APPLIED = frozenset({"added", "updated"})


def _foldable(batch: list[Entry]) -> set[int]:
    """Positions in `batch` of unresolved rows whose key's next row in the batch comes from
    the same source row. Such a row need not be resolved nor merged: the next one overwrites
    every value it writes (the caller gives unresolved rows only for policies where that
    holds: the row's values replace the lead's, no alternative key, no tags added)."""
    after: dict[Any, Any] = {}  # key -> the source row of the next row with that key
    out: set[int] = set()
    for position in range(len(batch) - 1, -1, -1):
        _due, _pk, _index, row, _job, keys = batch[position]
        source = row[0] if row.__class__ is tuple or row.__class__ is LaneRow else None
        if source is not None and after.get(keys[0]) is source:
            out.add(position)
        after[keys[0]] = source
    return out


def _unfold(entry: Entry, policies: dict[int, ImportPolicy], state: ListState,
            updated: dict[str, float]) -> None:
    """Apply an unresolved row's data, not its counts (kept already): a folded row whose key's
    next row was not applied (its job failed first), or a row a whole visit counted."""
    due, pk, index, (source, resolve), _job, keys = entry
    decide(policies[pk], index, _resolved(source, resolve, due), state, keys)
    updated[keys[0]] = due  # type: ignore[index]


def _resolved(source: dict[str, Any],
              resolve: Callable[[dict[str, Any], float], dict[str, Any]] | None,
              due: float) -> dict[str, Any]:
    """An unresolved row resolved as of the instant it falls due (a copy: sources are shared)."""
    return dict(source) if resolve is None else resolve(dict(source), due)


def _carry(conn: Connection, workspace: str, list_pk: int, pending: list[dict[str, Any]],
           batch: list[Entry], policies: dict[int, ImportPolicy], targets: dict[int, int],
           last_read: dict[int, int], offsets: dict[int, int], sink: Sink | None,
           held: lists.KeyFilter | None) -> list[dict[str, Any]]:
    """`decide_rows`, then each job of `pending` carried to `targets[pk]` rows: its counts,
    errors, progress (`last_read[pk]`: its last row in the batch), source offset and due time.
    Returns the jobs that failed."""
    tallies, failed_jobs = decide_rows(conn, workspace, list_pk, pending, batch, policies,
                                       sink, held)
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
                   source_offset=offsets[job["pk"]])
        job["due_at"] = due_at(job)
    failed = [j for j in pending if j["pk"] in failed_jobs]
    finish_many([(j, "failed", failed_jobs[j["pk"]][0], failed_jobs[j["pk"]][1])
                 for j in failed])
    return failed


def row_dues(job: dict[str, Any], indexes: range) -> list[float]:
    """`row_due_at` of each of a job's rows in `indexes`, with what it reads from the job looked
    up once."""
    rate = job["plan"].get("rate")
    start = float(job["running_from"])
    if rate is None:
        return [start] * len(indexes)
    start_us = round(start * US)
    if start_us / US == start and abs(start) < 2**31:
        # `start` is a whole microsecond and the sum is within half a microsecond of one, so
        # quantise(start + offset) is that microsecond count over US: one exact division
        # instead of round(x, 6), a quarter of the cost (checked equal on 250,000 cases).
        return [(start_us + math.ceil((index + 1) * US / rate)) / US for index in indexes]
    return [quantise(start + math.ceil((index + 1) * US / rate) / US) for index in indexes]


def job_policy(job: dict[str, Any]) -> ImportPolicy:
    return _policy(job["plan"]["policy"])


def row_keys_reader(policy: ImportPolicy) -> Callable[[dict[str, Any]], Any]:
    """`key_reader(policy)`, built once per policy."""
    return _key_reader(policy)


def row_resolver(job: dict[str, Any], seed: int, workspace: str
                 ) -> Callable[[dict[str, Any], float], dict[str, Any]] | None:
    """What resolves one of the job's rows falling due at an instant (None: rows are kept as
    read), for a caller that takes rows one at a time."""
    name = job["plan"].get("resolve", "")
    if name in ROW_RESOLVERS:
        by_row = ROW_RESOLVERS[name]
        return lambda row, _at: by_row(row)
    if name in RESOLVERS:
        resolver = RESOLVERS[name]
        return lambda row, at: resolver(row, _context((seed, workspace, at)))
    return None


_POLICIES: dict[tuple[Any, ...], ImportPolicy] = {}
_not_none = partial(is_not, None)
_context = partial(tuple.__new__, ResolveContext)  # without NamedTuple's Python-level __new__


# `key_reader(policy)`, built once per policy, not once per job of every batch.
_key_reader: Callable[[ImportPolicy], Callable[[dict[str, Any]], Any]] = per_object(
    key_reader, limit=1024)


def _policy_of_value(data: dict[str, Any]) -> ImportPolicy:
    # Jobs of one vendor share a handful of policies; 10,000 queued jobs need not each rebuild
    # theirs from JSON.
    token = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in data.items())
    policy = _POLICIES.get(token)
    if policy is None:
        if len(_POLICIES) >= 1024:
            _POLICIES.clear()
        policy = _POLICIES[token] = ImportPolicy.from_json(data)
    return policy


# A settle in slices meets the same (decoded, shared) plan once per row of each job: known by
# identity first, then by value.
_policy: Callable[[dict[str, Any]], ImportPolicy] = per_object(_policy_of_value, limit=1024)


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


def unreadable_source(job: dict[str, Any], index: int, exc: Exception
                      ) -> tuple[dict[str, Any], str, str | None, float]:
    """The `finish_many` item of a job whose stored rows cannot be read from row `index` on
    (e.g. written by an older build): it fails once, at that row, instead of making every
    later clock move of the workspace an error."""
    return job, "failed", f"the import source could not be read: {exc}", row_due_at(job, index)


def finish_many(items: list[tuple[dict[str, Any], str, str | None, float]]) -> None:
    for job, status, error, at in items:
        job.update(status=status, error=error, completed_at=at, updated_at=at, due_at=NEVER)
