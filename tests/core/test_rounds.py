"""A ticker round (rounds.Round) settles its jobs' rows as one stream in due-time order, a
slice at a time: whatever the budget, the rows' format, a row that fails its job or a source
that cannot be read, and with a request settling the workspace between two slices, it ends
exactly where one settle to the same instant ends."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from sandbox.core import store as t
from tests.core.jobkit import T0, Core
from tests.core.test_properties import _build, _check, _snapshot, plan_st
from tests.core.test_slicing import _advance, _round_with_pauses

FINAL = T0 + 120


def _round(core: Core, *, max_jobs: int, max_rows: int, settle_at: int | None = None) -> None:
    """One round over `core`'s workspace; a request settles the workspace (writing the round's
    jobs first) in pause number `settle_at`, if the round gets that far."""
    def between(n: int) -> None:
        if n == settle_at:
            with core.backend.workspace(core.key):
                pass

    with pytest.MonkeyPatch.context() as mp:
        _round_with_pauses(core.backend, core.key, mp, between, max_jobs=max_jobs,
                           max_rows=max_rows)
    assert core.key not in core.backend.rounds


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan_st, st.sampled_from(["jsonl", "csv"]), st.one_of(st.none(), st.integers(0, 24)),
       st.integers(1, 4), st.integers(1, 9), st.one_of(st.none(), st.integers(1, 6)))
def test_rounds_end_where_settling_at_once_ends(plan: Any, source: str, fail_at: int | None,
                                                max_jobs: int, max_rows: int,
                                                settle_at: int | None) -> None:
    rounds, lst, pks = _build(plan, fail_at=fail_at, source=source)
    stepped, lst_stepped, pks_stepped = _build(plan, fail_at=fail_at, source=source)
    at = T0
    # Rounds to instants where jobs are part way (queued, starting, between two rows) hold
    # what settles to those instants hold, and every row is accounted for.
    for step in plan[2][:4]:
        at += step
        _advance(rounds, step)
        _round(rounds, max_jobs=max_jobs, max_rows=max_rows, settle_at=settle_at)
        stepped.settle(at)
        _check(rounds, lst, pks, at)
        assert _snapshot(rounds, lst, pks) == _snapshot(stepped, lst_stepped, pks_stepped)
    _advance(rounds, FINAL - at)
    _round(rounds, max_jobs=max_jobs, max_rows=max_rows, settle_at=settle_at)
    at_once, lst_once, pks_once = _build(plan, fail_at=fail_at, source=source)
    at_once.settle(FINAL)
    _check(rounds, lst, pks, FINAL)
    assert _snapshot(rounds, lst, pks) == _snapshot(at_once, lst_once, pks_once)


@pytest.mark.parametrize("source", ["jsonl", "csv"])
def test_a_job_whose_rows_cannot_be_read_fails_as_a_settle_fails_it(source: str) -> None:
    """A stored source that no longer parses (written by an older build) fails its job once,
    at the row it stopped at, with the parser's message; the other jobs carry on."""
    def build() -> tuple[Core, int, list[int]]:
        core = Core()
        lst = core.new_list()
        pks = [core.create(lst, [{"email": f"r{n}x{i}@example.com", "v": str(i)}
                                 for i in range(6)], at=T0 + n * 0.05, source=source)
               for n in range(4)]
        with core.backend.store.begin() as conn:
            source_of = t.job_sources.c.job_pk == pks[1]
            content = conn.execute(select(t.job_sources.c.content).where(source_of)).scalar_one()
            # The rows after the header (a CSV's) become an unterminated quote, or cut JSON.
            broken = (content.split("\r\n", 1)[0] + '\r\n"unterminated,x\r\n'
                      if source == "csv" else '{"email": ')
            conn.execute(update(t.job_sources).where(source_of).values(content=broken))
        return core, lst, pks

    rounds, lst, pks = build()
    _advance(rounds, 0.3)  # job 1 has rows due: its read fails
    _round(rounds, max_jobs=2, max_rows=3)
    _advance(rounds, 60)
    _round(rounds, max_jobs=2, max_rows=3)
    at_once, lst_once, pks_once = build()
    at_once.settle(T0 + 0.3)
    at_once.settle(T0 + 60.3)
    assert _snapshot(rounds, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    failed = rounds.job(pks[1])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("the import source could not be read")
    assert failed["error"] == at_once.job(pks_once[1])["error"]
    assert [rounds.job(pk)["status"] for pk in pks] == ["completed", "failed", "completed",
                                                         "completed"]


def test_a_source_shorter_than_its_total_moves_on_as_a_settle_moves_on() -> None:
    """A job whose total counts more rows than its source holds (an older build's count) is
    carried past the missing rows by the clock, as a settle carries it."""
    def build() -> tuple[Core, int, list[int]]:
        core = Core()
        lst = core.new_list()
        pks = [core.create(lst, [{"email": f"s{n}x{i}@example.com"} for i in range(5)],
                           at=T0 + n * 0.05) for n in range(3)]
        with core.backend.store.begin() as conn:
            conn.execute(update(t.jobs).where(t.jobs.c.pk == pks[0]).values(total=9))
        return core, lst, pks

    rounds, lst, pks = build()
    at_once, lst_once, pks_once = build()
    elapsed = 0.0
    for at in (0.35, 0.72, 30.0):
        _advance(rounds, at - elapsed)
        elapsed = at
        _round(rounds, max_jobs=2, max_rows=2)
        at_once.settle(T0 + at)
        assert _snapshot(rounds, lst, pks) == _snapshot(at_once, lst_once, pks_once)
    assert rounds.job(pks[0])["processed"] == 9
    assert rounds.job(pks[0])["counts"]["added"] == 5
