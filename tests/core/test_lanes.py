"""Whole visits (lanes.Lanes): a round counts a running job's rows whose outcome it already knows
to its target in one visit and applies each lead's latest row once the stream passes it. It
still ends exactly where one settle ends, and where settles to each step's instant end, with a
second list importing the same file, a job of another file joining a list part way through the
round, a request settling the workspace between any two slices, and a slice failing anywhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.core import applying, lanes, rounds, slicing
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import Pacing
from tests.core.jobkit import T0, Core, rounds_match_settles
from tests.core.test_folding import _state
from tests.core.test_slicing import _advance

POOL = [f"{name}@example.com" for name in "abcdefg"]
FINAL = T0 + 60


def _stamped(row: dict[str, Any], context: applying.ResolveContext) -> dict[str, Any]:
    """A resolver whose rows differ by the instant they fall due (as X profiles do): a lead
    then shows which of its rows was applied last, and a reordered row is seen."""
    return {**row, "seen": f"{context.at:.6f}"}


applying.RESOLVERS["test.stamped"] = _stamped
applying.FOLDABLE.add("test.stamped")

# (the shared file's rows: distinct keys; jobs importing it into the first list; into a
# second list (0: none); another file's job in the first list: its rows (empty: none), its
# policy and which job's start it shares (from the last: read late, with small budgets);
# the policy; seconds between job starts; rows a second; whether rows are stamped when due)
case_st = st.tuples(
    st.lists(st.fixed_dictionaries({"email": st.sampled_from(POOL),
                                    "v": st.sampled_from(["", "x", "y"])}),
             min_size=1, max_size=6, unique_by=lambda r: r["email"]),
    st.integers(2, 7), st.integers(0, 3),
    st.tuples(st.lists(st.fixed_dictionaries({"email": st.sampled_from(POOL),
                                              "v": st.sampled_from(["x", "other"])}),
                       max_size=3),
              st.sampled_from(["update", "update_if_changed", "merge"]), st.integers(0, 7)),
    st.sampled_from(["update", "overwrite"]), st.sampled_from([0.01, 0.04, 0.13]),
    st.sampled_from([10, 20]), st.booleans())


def _build(case: Any) -> tuple[Core, list[int], list[int]]:
    shared, copies, second, other, on_existing, gap, rate, stamped = case
    plan = {"resolve": "test.stamped"} if stamped else None
    core = Core()
    first_list, second_list = core.new_list("l1"), core.new_list("l2")
    policy = ImportPolicy(key_fields=("email",), email_field="email",
                          on_existing=on_existing)
    pacing = Pacing(0, 0, rate)
    pks = [core.create(first_list, shared, pacing=pacing, policy=policy, at=T0 + n * gap,
                       plan=plan, source="csv") for n in range(copies)]
    pks += [core.create(second_list, shared, pacing=pacing, policy=policy,
                        at=T0 + (n + 0.5) * gap, plan=plan, source="csv") for n in range(second)]
    other_rows, other_policy, start = other
    if other_rows:
        policy = ImportPolicy(key_fields=("email",), email_field="email",
                              on_existing=other_policy)
        pks.append(core.create(first_list, other_rows, pacing=pacing, policy=policy,
                               at=T0 + max(0, copies - start) * gap, plan=plan, source="csv"))
    return core, [first_list, second_list], pks


def _states(core: Core, lists: list[int], pks: list[int]) -> tuple[Any, ...]:
    return tuple(_state(core, lst, pks) for lst in lists)


def _round(core: Core, *, max_jobs: int, max_rows: int, settle_at: int | None,
           fail_at: int | None) -> None:
    """One round: a request settles the workspace in pause `settle_at`; the slice of the
    `fail_at`th batch decided fails, after writing its leads, and, when `fail_at` is even,
    after the slice itself (in the hook of a job it finished, or, if none, at its end: its
    transaction rolls back what it wrote). The round is then run again, as the next tick
    runs it."""
    decide, calls = rounds.decide_rows, []
    next_slice = rounds.Round.next_slice

    def failing(*args: Any, **kwargs: Any) -> Any:
        result = decide(*args, **kwargs)
        calls.append(1)
        if len(calls) == fail_at and fail_at % 2:
            raise RuntimeError("disk full")
        return result

    def failing_after(current: rounds.Round, *args: Any) -> list[dict[str, Any]]:
        done = len(calls)
        finished = next_slice(current, *args)
        if done < fail_at <= len(calls) and not fail_at % 2:  # type: ignore[operator]
            raise RuntimeError("disk full, at commit")
        return finished

    pauses = iter(range(1, 10_000))

    async def pause(_seconds: float) -> None:
        if next(pauses) == settle_at:
            with core.backend.workspace(core.key):
                pass

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(slicing.asyncio, "sleep", pause)
        mp.setattr(rounds, "decide_rows", failing)
        if fail_at is not None:
            mp.setattr(rounds.Round, "next_slice", failing_after)
        try:
            asyncio.run(slicing.settle_in_slices(core.backend, core.key, max_jobs=max_jobs,
                                                 max_rows=max_rows))
        except RuntimeError as exc:
            assert "disk full" in str(exc)
            mp.setattr(rounds, "decide_rows", decide)
            mp.setattr(rounds.Round, "next_slice", next_slice)
            asyncio.run(slicing.settle_in_slices(core.backend, core.key, max_jobs=max_jobs,
                                                 max_rows=max_rows))
    assert core.key not in core.backend.rounds


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case_st, st.integers(1, 8), st.integers(1, 24), st.one_of(st.none(), st.integers(1, 6)),
       st.one_of(st.none(), st.integers(1, 12)),
       st.lists(st.sampled_from([0.05, 0.1, 0.3, 1.0]), max_size=4))
def test_rounds_with_whole_visits_end_where_settles_end(
        case: Any, max_jobs: int, max_rows: int, settle_at: int | None, fail_at: int | None,
        steps: list[float]) -> None:
    rounds_match_settles(lambda: _build(case),
                         lambda core: _round(core, max_jobs=max_jobs, max_rows=max_rows,
                                             settle_at=settle_at, fail_at=fail_at),
                         _states, steps, FINAL)


# Eight jobs of one five-row file, 20 rows a second, started 10 ms apart (bench A in small):
# once the first job's rows are decided, the others' are counted by whole visits.
BUSY: tuple[Any, ...] = ([{"email": e, "v": "x"} for e in POOL[:5]], 8, 0, ([], "update", 0),
                         "update", 0.01, 20, True)


def _spy(mp: pytest.MonkeyPatch, name: str) -> list[Any]:
    """What each call of `Lanes.<name>` returned."""
    calls: list[Any] = []
    real = getattr(lanes.Lanes, name)

    def spy(self: lanes.Lanes, *args: Any) -> Any:
        result = real(self, *args)
        calls.append(result)
        return result

    mp.setattr(lanes.Lanes, name, spy)
    return calls


def _busy_round(seconds: float, *, settle_at: int | None, fail_at: int | None
                ) -> tuple[list[int], list[Any], list[Any]]:
    """BUSY settled to `seconds` by a round of small slices, compared with one settle there;
    returns the rows each whole visit counted, the jobs written as if not visited, and the
    segments of whole visits a failed slice found (and put back)."""
    core, lists, pks = _build(BUSY)
    with pytest.MonkeyPatch.context() as mp:
        counted = _spy(mp, "visit")
        rolled_back = _spy(mp, "as_if_not_visited")
        put_back: list[Any] = []
        restore = lanes.Lanes.restore

        def spy_restore(self: lanes.Lanes) -> None:
            put_back.extend(self._saved[2] if self._saved else ())
            restore(self)

        mp.setattr(lanes.Lanes, "restore", spy_restore)
        _advance(core, seconds)
        _round(core, max_jobs=3, max_rows=4, settle_at=settle_at, fail_at=fail_at)
    once, lists_once, pks_once = _build(BUSY)
    once.settle(T0 + seconds)
    assert _states(core, lists, pks) == _states(once, lists_once, pks_once), (
        seconds, settle_at, fail_at)
    return counted, rolled_back, put_back


def test_whole_visits_count_most_rows() -> None:
    counted, rolled_back, _put_back = _busy_round(1.0, settle_at=None, fail_at=None)
    assert sum(counted) >= 25  # of 40 rows: all but the first job's, and a few more
    assert rolled_back == []


@pytest.mark.parametrize("seconds", [0.17, 0.23, 1.0])
def test_a_request_between_any_two_slices_sees_what_one_settle_leaves(seconds: float) -> None:
    """Whatever the slice, and when whole visits have counted rows ahead of the stream (the
    request writes their jobs as if not visited: its own settle applies those rows)."""
    rolled_back = 0
    for settle_at in range(1, 20):
        _counted, written, _put_back = _busy_round(seconds, settle_at=settle_at, fail_at=None)
        rolled_back += bool(written)
    assert rolled_back >= 2


@pytest.mark.parametrize("seconds", [0.17, 0.23, 1.0])
def test_a_failing_slice_puts_back_what_its_whole_visits_counted(seconds: float) -> None:
    """A slice that fails after its whole visits: their counts, lanes and learnt rows go back
    with its jobs, the round writes what the slices before it settled, and the next round
    ends where one settle ends."""
    put_back = 0
    for fail_at in range(1, 16):
        _counted, _written, segments = _busy_round(seconds, settle_at=None, fail_at=fail_at)
        put_back += bool(segments)
    assert put_back >= 2


def test_a_list_of_one_file_with_a_key_twice_takes_no_whole_visit() -> None:
    rows = [{"email": POOL[0], "v": "x"}, {"email": POOL[1], "v": "y"},
            {"email": POOL[0], "v": "z"}]
    core, lists, pks = _build((rows, 5, 0, ([], "update", 0), "update", 0.01, 20, True))
    with pytest.MonkeyPatch.context() as mp:
        counted = _spy(mp, "visit")
        _advance(core, 1.0)
        _round(core, max_jobs=3, max_rows=4, settle_at=None, fail_at=None)
    assert counted == []
    once, lists_once, pks_once = _build((rows, 5, 0, ([], "update", 0), "update", 0.01, 20, True))
    once.settle(T0 + 1.0)
    assert _states(core, lists, pks) == _states(once, lists_once, pks_once)
