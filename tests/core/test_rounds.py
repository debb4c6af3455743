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
from sandbox.core.jobs import Pacing
from sandbox.core.rounds import Round
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


_COLUMNS = ("status", "started_at", "updated_at", "due_at", "processed", "counts",
            "completed_at", "queued_until", "running_from", "error")

waiting_st = st.lists(st.tuples(
    st.sampled_from([0, 0.5, 1.25, 2]),  # queue wait
    st.sampled_from([0, 0.3, 1]),  # start delay
    st.sampled_from([3, 20, None]),  # rows a second (None: all at once)
    st.sampled_from([0, 0.2, 1, 1.7]),  # created after T0
), min_size=1, max_size=6)


def _waiting_jobs(spec: list[tuple[float, float, int | None, float]]
                  ) -> tuple[Core, list[int]]:
    core = Core()
    lst = core.new_list()
    pks = [core.create(lst, [{"email": f"w{n}.{i}@example.com"} for i in range(3)],
                       pacing=Pacing(wait, delay, rate), at=T0 + created)
           for n, (wait, delay, rate, created) in enumerate(spec)]
    return core, pks


def _jobs_as_stored(core: Core, pks: list[int]) -> list[tuple[Any, ...]]:
    return [tuple(core.job(pk)[c] for c in _COLUMNS) for pk in pks]


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(waiting_st, st.lists(st.sampled_from([0.1, 0.4, 0.5, 1, 1.3]), min_size=1, max_size=6))
def test_jobs_whose_wait_ends_in_a_round_are_stored_as_a_settle_stores_them(
        spec: list[tuple[float, float, int | None, float]], steps: list[float]) -> None:
    # A round moves the queued jobs that only end their wait by its instant in one statement
    # (job_rows.start_waiting): every column a job's lifecycle writes is what a settle to the
    # same instant writes, whether the job starts, runs or completes in that round.
    rounds, pks = _waiting_jobs(spec)
    settled, pks_settled = _waiting_jobs(spec)
    at = T0
    for step in steps:
        at += step
        _advance(rounds, step)
        _round(rounds, max_jobs=2, max_rows=3)
        settled.settle(at)
        assert _jobs_as_stored(rounds, pks) == _jobs_as_stored(settled, pks_settled)


def _spy_start_waiting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many jobs each call of `start_waiting` moved, in order."""
    from sandbox.core import rounds as rounds_module

    moved: list[int] = []
    real = rounds_module.start_waiting

    def spy(conn: Any, workspace: str, at: float, limit: int) -> int:
        moved.append(real(conn, workspace, at, limit))
        return moved[-1]

    monkeypatch.setattr(rounds_module, "start_waiting", spy)
    return moved


def test_a_round_moves_only_the_jobs_that_just_end_their_wait_in_one_statement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    moved = _spy_start_waiting(monkeypatch)
    core, pks = _waiting_jobs([
        (1, 1, 20, 0),  # its wait ends at 1 s, it runs from 2 s: starting at 1.5 s
        (0.5, 0.3, 20, 0),  # waits and starts by 1.5 s: through the stream, rows and all
        (1, 0, 4, 0),  # no start delay: queued -> running at 1 s, through the stream
        (2, 1, 20, 0),  # still waiting at 1.5 s
        (2, 1, 20, 0),  # the same, due at 0 s (a stale due time): looked at, still waiting
    ])
    with core.backend.store.begin() as conn:
        conn.execute(update(t.jobs).where(t.jobs.c.pk == pks[4]).values(due_at=T0))
    _advance(core, 1.5)
    _round(core, max_jobs=4, max_rows=100)
    assert moved == [1]
    states = [(j["status"], j["processed"], j["started_at"], j["updated_at"])
              for j in map(core.job, pks)]
    assert states == [("starting", 0, T0 + 1, T0 + 1),
                      ("completed", 3, T0 + 0.5, T0 + 0.95),
                      ("running", 2, T0 + 1, T0 + 1.5),
                      ("queued", 0, None, T0), ("queued", 0, None, T0)]
    assert core.job(pks[4])["due_at"] == core.job(pks[3])["due_at"] == T0 + 2 - 2e-6


def test_waits_end_a_slice_budget_at_a_time_before_the_stream_reads_a_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Five waits end by 1.5 s: with 2 jobs a slice the statement moves 2, 2, then 1 (and the
    # stream starts in that last slice), so no slice holds the loop for all of them.
    moved = _spy_start_waiting(monkeypatch)
    slices: list[int] = []
    real_slice = Round._slice

    def counting(self: Round, *args: Any) -> list[dict[str, Any]]:
        slices.append(len(moved))
        return real_slice(self, *args)

    monkeypatch.setattr(Round, "_slice", counting)
    core, pks = _waiting_jobs([(1, 1, 20, 0)] * 5 + [(0.5, 0.3, 20, 0)])
    _advance(core, 1.5)
    _round(core, max_jobs=2, max_rows=100)
    assert moved == [2, 2, 1]
    assert slices[:3] == [0, 1, 2] and len(slices) >= 3
    assert [core.job(pk)["status"] for pk in pks] == ["starting"] * 5 + ["completed"]


def test_a_slice_writes_the_jobs_the_round_is_done_with_and_only_those() -> None:
    # Jobs of 1, 4, 7, 10, 13 and 16 rows at 10 rows a second: in a round to 0.75 s the
    # second and third complete in early slices, the last three still run at its end. Each
    # slice writes the jobs that left the stream for good (completed, or next due after the
    # round's instant) and keeps the others to write later; a written job is stored as the
    # round holds it.
    core = Core()
    lst = core.new_list()
    pks = [core.create(lst, [{"email": f"d{n}.{i}@example.com"} for i in range(3 * n + 1)],
                       pacing=Pacing(0, 0, 10), at=T0) for n in range(6)]
    # 2 rows by 0.25 s: the first job completes before the round looked at.
    _advance(core, 0.25)
    _round(core, max_jobs=6, max_rows=100)
    _advance(core, 0.5)
    current = Round(core.key, T0 + 0.75)
    with core.backend.workspace(core.key, create=False, settle=False) as (conn, ws):
        core.backend.rounds.begin(current)
    written_early: set[int] = set()
    kept_to_write: set[int] = set()
    while not current.complete:
        with core.backend.workspace(core.key, create=False, settle=False) as (conn, ws):
            current.next_slice(conn, ws.seed, 2, 3)
        current.kept_slice()
        stored = {pk: core.job(pk) for pk in pks}
        for pk, job in current.jobs.items():
            held = (job["status"], job["processed"])
            if job["due_at"] > current.target:  # done with: written by the slice
                assert pk not in current.changed
                assert (stored[pk]["status"], stored[pk]["processed"]) == held
                if not current.complete:
                    written_early.add(pk)
            elif pk in current.changed and (
                    stored[pk]["status"], stored[pk]["processed"]) != held:
                kept_to_write.add(pk)  # changed, due again in the round: written later
    with core.backend.store.begin() as conn:
        core.backend.rounds.flush(conn, core.key)
    assert {core.job(pk)["status"] for pk in pks[:3]} == {"completed"}
    assert {core.job(pk)["status"] for pk in pks[3:]} == {"running"}
    assert set(pks[1:3]) <= written_early
    assert kept_to_write
