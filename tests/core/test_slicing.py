"""Settling in slices (the background ticker's way): each slice stays within its budget of jobs
and rows, and the slices end exactly where one settle to the same instant ends."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sandbox.core import rounds, slicing, webhooks, workspaces
from sandbox.core import settle as settling
from sandbox.core import store as t
from sandbox.core.backend import Backend
from sandbox.core.errors import NotFound
from sandbox.core.jobs import Pacing
from tests.core.jobkit import T0, Core, file_backend
from tests.core.test_properties import _build, _check, _snapshot, plan_st

# 40 jobs of 6 rows, one started every 0.05 s, at 10 rows/s: about 12 running at once, and
# every job shares keys with the others, so the order rows are applied in shows in the leads.
JOBS, ROWS = 40, 6


def _busy(seed: int, backend: Backend | None = None) -> tuple[Core, int, list[int]]:
    core = Core(seed=seed, backend=backend)
    lst = core.new_list()
    pks = [core.create(lst, [{"email": f"p{(n + i) % 9}@example.com", "v": n}
                             for i in range(ROWS)],
                       at=T0 + n * 0.05, pacing=Pacing(0.5, 0.25, 10)) for n in range(JOBS)]
    return core, lst, pks


def _advance(core: Core, seconds: float) -> None:
    with core.backend.workspace(core.key, settle=False) as (conn, ws):
        workspaces.save_clock(conn, ws, ws.clock.advance(seconds))


def _jobs_state(core: Core) -> dict[int, tuple[str, int]]:
    with core.backend.store.begin() as conn:
        return {r.pk: (r.status, r.processed) for r in conn.execute(
            select(t.jobs.c.pk, t.jobs.c.status, t.jobs.c.processed).where(
                t.jobs.c.workspace == core.key))}


def _record_slices(monkeypatch: pytest.MonkeyPatch, core: Core) -> list[tuple[int, int]]:
    """(jobs changed, rows applied) of every slice the ticker settles in `core`'s workspace,
    on either path: reading the jobs each slice (settle_part) or a round's (Round.next_slice,
    whose jobs' SLICE_FIELDS as they were before it are in `_before` until it is kept)."""
    seen: list[tuple[int, int]] = []
    part, next_slice = slicing.settle_part, rounds.Round.next_slice

    def spy_part(conn: Any, workspace: str, *args: Any, **kwargs: Any) -> Any:
        def state() -> dict[int, tuple[str, int]]:
            return {r.pk: (r.status, r.processed) for r in conn.execute(
                select(t.jobs.c.pk, t.jobs.c.status, t.jobs.c.processed).where(
                    t.jobs.c.workspace == workspace))}
        before = state()
        result = part(conn, workspace, *args, **kwargs)
        after = state()
        if workspace == core.key:
            seen.append((sum(after[pk] != before[pk] for pk in after),
                         sum(after[pk][1] - before[pk][1] for pk in after)))
        return result

    def spy_slice(current: rounds.Round, *args: Any) -> Any:
        result = next_slice(current, *args)
        if current.workspace == core.key:
            was = {pk: dict(zip(rounds.SLICE_FIELDS, fields, strict=True))
                   for pk, fields in current._before.items()}
            now = {pk: (current.jobs[pk]["status"], current.jobs[pk]["processed"])
                   for pk in was}
            seen.append((sum(now[pk] != (job["status"], job["processed"])
                             for pk, job in was.items()),
                         sum(now[pk][1] - job["processed"] for pk, job in was.items())))
        return result

    monkeypatch.setattr(slicing, "settle_part", spy_part)
    monkeypatch.setattr(rounds.Round, "next_slice", spy_slice)
    return seen


@pytest.mark.parametrize("store", ["memory", "file"])
def test_the_ticker_settles_a_busy_workspace_in_slices_within_budget(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store: str) -> None:
    backend = file_backend(str(tmp_path / "db.sqlite"), 7101) if store == "file" else None
    sliced, lst, pks = _busy(seed=7101, backend=backend)
    assert sliced.backend.store.in_memory is (store == "memory")
    _advance(sliced, 4.0)  # every job started, most finished: 40 jobs, 240 rows due
    monkeypatch.setattr(slicing, "MAX_JOBS", 8)
    monkeypatch.setattr(slicing, "MAX_ROWS", 12)
    monkeypatch.setattr(slicing, "PAUSE", 0.0)
    seen = _record_slices(monkeypatch, sliced)
    asyncio.run(webhooks.tick(sliced.backend))
    assert len(seen) >= JOBS * ROWS // 12
    assert all(changed <= 8 and rows <= 12 for changed, rows in seen), seen
    assert sum(rows for _, rows in seen) == JOBS * ROWS - sum(
        ROWS - p for _, p in _jobs_state(sliced).values())
    assert sliced.key not in sliced.backend.rounds  # written

    at_once, lst_once, pks_once = _busy(seed=7102)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    # Later slices start from what earlier ones wrote: the rest settles the same way too.
    _advance(sliced, 60)
    asyncio.run(webhooks.tick(sliced.backend))
    at_once.settle(T0 + 64)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    assert {s for s, _ in _jobs_state(sliced).values()} == {"completed"}


def _stored_processed(core: Core) -> int:
    return sum(p for _, p in _jobs_state(core).values())


def _tick_with_pauses(core: Core, monkeypatch: pytest.MonkeyPatch,
                      between: Any) -> None:
    """One ticker round over `core` (budget 8 jobs, 12 rows), calling `between(n)` in the n-th
    pause between two slices (where requests run)."""
    _round_with_pauses(core.backend, core.key, monkeypatch, between, max_jobs=8, max_rows=12)


def _round_with_pauses(backend: Backend, key: str, monkeypatch: pytest.MonkeyPatch,
                       between: Any, *, max_jobs: int, max_rows: int) -> None:
    monkeypatch.setattr(slicing, "MAX_JOBS", max_jobs)
    monkeypatch.setattr(slicing, "MAX_ROWS", max_rows)
    pauses = iter(range(1, 10_000))

    async def pause(_seconds: float) -> None:
        between(next(pauses))

    monkeypatch.setattr(slicing.asyncio, "sleep", pause)
    asyncio.run(slicing.settle_in_slices(backend, key))


def test_a_round_writes_its_jobs_once_and_a_settle_in_between_writes_them_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The slices of a round leave the stored jobs behind the leads until the round ends; a
    request that settles the workspace in between writes the round's jobs first (else it
    would apply their rows again) and ends the round."""
    sliced, lst, pks = _busy(seed=7104)
    _advance(sliced, 4.0)
    stored: list[int] = []

    def between(n: int) -> None:
        stored.append(_stored_processed(sliced))
        if n == 3:
            with sliced.backend.workspace(sliced.key) as (_conn, _ws):  # a request's open
                pass

    _tick_with_pauses(sliced, monkeypatch, between)
    assert stored[:3] == [0, 0, 0]  # the rounds' jobs were not written after each slice
    assert len(stored) == 3  # the request's settle ended the round
    assert sliced.key not in sliced.backend.rounds
    at_once, lst_once, pks_once = _busy(seed=7105)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    _check(sliced, lst, pks, T0 + 4.0)


@pytest.mark.parametrize("step", [0.01, 0.2])
def test_a_round_after_the_first_covers_at_least_min_round_span(
        monkeypatch: pytest.MonkeyPatch, step: float) -> None:
    """On a real clock the clock moves while a round runs. The next round starts only once
    MIN_ROUND_SPAN of it has passed since the last round's target: rounds a few ms apart read
    every running job for a row each (bench B). A smaller rest is left to the next call, and
    what was settled is exactly a settle to the last target."""
    sliced, lst, pks = _busy(seed=7110)
    _advance(sliced, 2.0)
    targets: list[float] = []
    begin = rounds.Round.__init__

    def spy(current: rounds.Round, workspace: str, target: float) -> None:
        targets.append(target)
        begin(current, workspace, target)

    monkeypatch.setattr(rounds.Round, "__init__", spy)
    _tick_with_pauses(sliced, monkeypatch, lambda _n: _advance(sliced, step))
    spans = [b - a for a, b in itertools.pairwise(targets)]
    assert targets[0] == pytest.approx(T0 + 2.0)
    if step == 0.01:  # ~10 slices: the clock moved ~0.1 s during the round
        assert len(targets) == 1
    else:
        assert len(targets) > 1 and all(span >= slicing.MIN_ROUND_SPAN for span in spans)
    at_once, lst_once, pks_once = _busy(seed=7111)
    at_once.settle(targets[-1])
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    _check(sliced, lst, pks, targets[-1])


def test_a_round_written_by_a_request_that_then_fails_is_still_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sliced, lst, pks = _busy(seed=7106)
    _advance(sliced, 4.0)

    def between(n: int) -> None:
        if n == 2:
            with pytest.raises(NotFound), sliced.backend.workspace(sliced.key) as (conn, _ws):
                written = conn.execute(select(func.sum(t.jobs.c.processed)).where(
                    t.jobs.c.workspace == sliced.key)).scalar()
                assert written > 0  # written inside this transaction...
                raise NotFound("no such job", field="jobId")
            assert _stored_processed(sliced) == 0
            assert sliced.key in sliced.backend.rounds  # ...rolled back: still to write

    _tick_with_pauses(sliced, monkeypatch, between)
    assert sliced.key not in sliced.backend.rounds
    at_once, lst_once, pks_once = _busy(seed=7107)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)


def test_a_slice_that_fails_keeps_what_the_slices_before_it_settled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing slice rolls back its lead writes and its jobs' changes; what the round
    settled before it is written (the leads of those slices are committed), and the next
    round carries on: nothing is lost or applied twice."""
    sliced, lst, pks = _busy(seed=7108)
    _advance(sliced, 4.0)
    apply, calls = rounds.decide_rows, []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        result = apply(*args, **kwargs)  # its rows applied, then the slice fails
        if len(calls) == 4:
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(rounds, "decide_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        _tick_with_pauses(sliced, monkeypatch, lambda n: None)
    assert sliced.key not in sliced.backend.rounds
    partial_processed = _stored_processed(sliced)
    assert 0 < partial_processed < JOBS * ROWS
    _check_leads_match_jobs(sliced, lst)
    monkeypatch.setattr(rounds, "decide_rows", apply)
    _tick_with_pauses(sliced, monkeypatch, lambda n: None)
    at_once, lst_once, pks_once = _busy(seed=7109)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)


def test_a_slice_whose_transaction_fails_after_it_settled_is_reverted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the slice itself (a finished-job hook, the commit) rolls back its
    leads: its jobs go back too, and the slices before it are kept."""
    sliced, lst, pks = _busy(seed=7112)
    _advance(sliced, 4.0)
    finished: list[int] = []

    def hook(_conn: Any, _ws: Any, job: dict[str, Any]) -> None:
        finished.append(job["pk"])
        if len(finished) == 5:
            raise RuntimeError("delivery table locked")

    monkeypatch.setattr(sliced.backend, "job_finished_hooks", [hook])
    with pytest.raises(RuntimeError, match="locked"):
        _tick_with_pauses(sliced, monkeypatch, lambda n: None)
    assert 0 < _stored_processed(sliced) < JOBS * ROWS
    _check_leads_match_jobs(sliced, lst)
    monkeypatch.setattr(sliced.backend, "job_finished_hooks", [])
    _tick_with_pauses(sliced, monkeypatch, lambda n: None)
    at_once, lst_once, pks_once = _busy(seed=7113)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)


def _check_leads_match_jobs(core: Core, lst: int) -> None:
    """Every row a stored job counts as processed (and only those) reached the leads."""
    with core.backend.store.begin() as conn:
        jobs_rows = conn.execute(select(t.jobs.c.counts).where(
            t.jobs.c.workspace == core.key)).scalars().all()
    added = sum(c["added"] for c in jobs_rows)
    assert added == len(core.leads(lst)) == core.lead_count(lst)


def test_a_round_cancelled_between_slices_writes_what_it_settled() -> None:
    sliced, lst, _pks = _busy(seed=7110)
    _advance(sliced, 4.0)

    async def cancelled_after_two_slices() -> None:
        task = asyncio.create_task(slicing.settle_in_slices(
            sliced.backend, sliced.key, max_jobs=8, max_rows=12, pause=3600))
        while sliced.key not in sliced.backend.rounds:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_after_two_slices())
    assert sliced.key not in sliced.backend.rounds
    assert 0 < _stored_processed(sliced) < JOBS * ROWS
    _check_leads_match_jobs(sliced, lst)


@pytest.mark.parametrize("drop", ["reset", "delete"])
def test_a_workspace_reset_or_deleted_during_a_round_ends_it(
        monkeypatch: pytest.MonkeyPatch, drop: str) -> None:
    sliced, _lst, _pks = _busy(seed=7111)
    _advance(sliced, 4.0)
    dropped = []

    def between(n: int) -> None:
        if n == 2:
            getattr(sliced.backend, drop)(sliced.key)
            dropped.append(drop)

    _tick_with_pauses(sliced, monkeypatch, between)
    assert dropped == [drop] and sliced.key not in sliced.backend.rounds
    if drop == "reset":
        assert _jobs_state(sliced) == {}


def test_a_budget_smaller_than_what_falls_due_at_one_instant_still_moves_on() -> None:
    core = Core(seed=7103)
    lst = core.new_list()
    # Five jobs whose 20 rows all fall due at the same instant (no pacing rate).
    for n in range(5):
        core.create(lst, [{"email": f"q{n}x{i}@example.com"} for i in range(20)], at=T0,
                    pacing=Pacing(0.5, 0.5, None))
    reached = []
    for _ in range(3):
        with core.backend.store.begin() as conn:
            reached.append(settling.settle_part(conn, core.key, T0 + 5, core.seed, max_jobs=2,
                                                max_rows=3)[0])
    # queued -> starting at T0 + 0.5, then every row (and the finish) at T0 + 1.
    assert reached == [T0 + 0.5, T0 + 1, T0 + 5]
    assert len(core.leads(lst)) == 100


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan_st, st.integers(1, 4), st.integers(1, 9))
def test_settling_in_parts_ends_where_settling_at_once_ends(plan: Any, max_jobs: int,
                                                             max_rows: int) -> None:
    parts, lst, pks = _build(plan)
    final = T0 + 120
    for _ in range(10_000):
        with parts.backend.store.begin() as conn:
            reached, _finished = settling.settle_part(conn, parts.key, final, parts.seed,
                                                      max_jobs=max_jobs, max_rows=max_rows)
        if reached >= final:
            break
    at_once, lst_once, pks_once = _build(plan)
    at_once.settle(final)
    assert _snapshot(parts, lst, pks) == _snapshot(at_once, lst_once, pks_once)


def test_vendor_reads_between_slices_see_what_settling_at_once_shows(
        app: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP: InboxApp jobs settled by a ticker round, with the job list read between two
    of its slices (the read writes the round's jobs and settles the rest), answer exactly
    what a workspace whose clock moved at once answers; every count adds up."""
    from tests.conftest import Sandbox
    from tests.vendors.inboxkit import LIST, create_csv, stored_leads, usernames_csv

    def jobs_after_four_seconds(key: str, with_ticker: bool) -> tuple[Any, Any]:
        sb = Sandbox(client, key)
        for n in range(12):  # overlapping usernames: the order rows land in shows
            create_csv(sb, usernames_csv(8, prefix=f"u{n % 3}_"))
        if with_ticker:
            with app.backend.workspace(key, settle=False) as (conn, ws):
                workspaces.save_clock(conn, ws, ws.clock.advance(4.0))
            listed: list[Any] = []

            def between(n: int) -> None:
                if n == 2:
                    listed.append(sb.call("inboxapp", "GET", f"/lists/{LIST}/import-jobs",
                                          params={"limit": 100}).json()["data"])

            _round_with_pauses(app.backend, key, monkeypatch, between, max_jobs=3, max_rows=5)
            assert listed, "the round ended before its second pause"
            answer = listed[0]
        else:
            sb.advance(4.0)
            answer = sb.call("inboxapp", "GET", f"/lists/{LIST}/import-jobs",
                             params={"limit": 100}).json()["data"]
        for job in answer:
            assert job["addedCount"] + job["skippedCount"] + job["failedCount"] == job[
                "processedCount"]
        # Ids and the list's seeded leads are drawn per workspace; the rest must match.
        return ([{k: v for k, v in j.items() if k != "id"} for j in answer],
                sorted(json.dumps({k: v for k, v in lead.items() if k != "externalId"},
                                  sort_keys=True) for lead in stored_leads(app, key)
                       if re.fullmatch(r"u[0-9]_[0-9]", lead["username"])))

    sliced = jobs_after_four_seconds("wbk_slicing_http_rounds", with_ticker=True)
    at_once = jobs_after_four_seconds("wbk_slicing_http_at_once", with_ticker=False)
    assert sliced == at_once
    assert any(j["processedCount"] for j in sliced[0]) and len(sliced[1]) == 24
