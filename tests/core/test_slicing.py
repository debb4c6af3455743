"""Settling in slices (the background ticker's way): each slice stays within its budget of jobs
and rows, and the slices end exactly where one settle to the same instant ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from sandbox.core import settle as settling
from sandbox.core import slicing, webhooks, workspaces
from sandbox.core import store as t
from sandbox.core.jobs import Pacing
from tests.core.jobkit import T0, Core
from tests.core.test_properties import _build, _snapshot, plan_st

# 40 jobs of 6 rows, one started every 0.05 s, at 10 rows/s: about 12 running at once, and
# every job shares keys with the others, so the order rows are applied in shows in the leads.
JOBS, ROWS = 40, 6


def _busy(seed: int) -> tuple[Core, int, list[int]]:
    core = Core(seed=seed)
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
    """(jobs changed, rows applied) of every slice the ticker settles in `core`'s workspace."""
    seen: list[tuple[int, int]] = []
    original = slicing.settle_part

    def spy(conn: Any, workspace: str, *args: Any, **kwargs: Any) -> Any:
        def state() -> dict[int, tuple[str, int]]:
            return {r.pk: (r.status, r.processed) for r in conn.execute(
                select(t.jobs.c.pk, t.jobs.c.status, t.jobs.c.processed).where(
                    t.jobs.c.workspace == workspace))}
        before = state()
        result = original(conn, workspace, *args, **kwargs)
        after = state()
        if workspace == core.key:
            seen.append((sum(after[pk] != before[pk] for pk in after),
                         sum(after[pk][1] - before[pk][1] for pk in after)))
        return result

    monkeypatch.setattr(slicing, "settle_part", spy)
    return seen


def test_the_ticker_settles_a_busy_workspace_in_slices_within_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sliced, lst, pks = _busy(seed=7101)
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

    at_once, lst_once, pks_once = _busy(seed=7102)
    at_once.settle(T0 + 4.0)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    # Later slices start from what earlier ones wrote: the rest settles the same way too.
    _advance(sliced, 60)
    asyncio.run(webhooks.tick(sliced.backend))
    at_once.settle(T0 + 64)
    assert _snapshot(sliced, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    assert {s for s, _ in _jobs_state(sliced).values()} == {"completed"}


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
