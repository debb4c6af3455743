"""A ticker round folds a row into the next row of the same lead from the same source row (jobs
importing one file, applying.decide_rows): it counts it without resolving or merging it, and
the round still ends exactly where one settle ends, byte for byte, whatever the policy, the
fields a lead keeps, empty values, a row that fails its jobs, other sources touching the same
leads, and a request settling the workspace between two slices."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import sandbox.vendors.inboxapp  # registers the profile resolver
from sandbox.core import applying
from sandbox.core.backend import Backend
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import Pacing, new_counts
from sandbox.settings import Settings
from tests.core.jobkit import START, T0, Core, rounds_match_settles
from tests.core.test_rounds import _round
from tests.core.test_slicing import _advance

POOL = ["a@example.com", "b@example.com", "c@example.com"]
FAIL = "fail_rate_limit@example.com"
FINAL = T0 + 60

row_st = st.fixed_dictionaries({"email": st.sampled_from(POOL),
                                "v": st.sampled_from(["", "x", "y"]),
                                "w": st.sampled_from(["", "kept", "new"])})
# (rows of the shared source, where its failing row goes (None: none), jobs importing it,
# rows of another source touching the same leads, policy, fields kept, leads there before
# (with or without the kept field), seconds between job starts)
case_st = st.tuples(st.lists(row_st, min_size=1, max_size=4),
                    st.one_of(st.none(), st.integers(0, 4)), st.integers(2, 7),
                    st.lists(row_st, max_size=3),
                    st.sampled_from(["update", "overwrite"]), st.sampled_from([(), ("w",)]),
                    st.lists(st.tuples(st.sampled_from(POOL), st.booleans()), max_size=3,
                             unique_by=lambda e: e[0]),
                    st.sampled_from([0.01, 0.05, 0.13]))


def _list_and_policy(existing: list[tuple[str, bool]], kept: str, on_existing: str,
                     keep: tuple[str, ...]) -> tuple[Core, int, ImportPolicy]:
    """A new list holding the leads of `existing` (each with the field `kept` or without it),
    and the policy of the jobs importing into it."""
    core = Core()
    lst = core.new_list()
    if existing:
        core.run_now(lst, [{"email": e, "v": "old", **({kept: "before"} if has_it else {})}
                           for e, has_it in existing])
    return core, lst, ImportPolicy(key_fields=("email",), email_field="email",
                                   on_existing=on_existing, keep=keep)  # type: ignore[arg-type]


def _build(case: Any) -> tuple[Core, int, list[int]]:
    shared, fail_at, copies, other, on_existing, keep, existing, gap = case
    rows = [dict(r) for r in shared]
    if fail_at is not None:
        rows.insert(min(fail_at, len(rows)), {"email": FAIL, "v": "x", "w": ""})
    core, lst, policy = _list_and_policy(existing, "w", on_existing, keep)
    pacing = Pacing(0, 0, 10)
    pks = [core.create(lst, rows, pacing=pacing, policy=policy, at=T0 + n * gap, source="csv")
           for n in range(copies)]
    if other:
        pks.append(core.create(lst, other, pacing=pacing, policy=policy, at=T0 + gap / 2,
                               source="csv"))
    return core, lst, pks


def _state(core: Core, lst: int, pks: list[int]) -> tuple[Any, ...]:
    """Every job's outcome and every lead as stored, its fields in their stored order."""
    jobs = tuple((j["status"], j["processed"], j["counts"], j["row_errors"], j["updated_at"],
                  j["completed_at"], j["error"]) for j in map(core.job, pks))
    leads = tuple((ld["key"], ld["job_id"], ld["created_at"], ld["updated_at"],
                   list(ld["data"].items())) for ld in core.leads(lst))
    return jobs, leads


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case_st, st.integers(1, 6), st.integers(1, 12), st.one_of(st.none(), st.integers(1, 5)),
       st.lists(st.sampled_from([0.05, 0.1, 0.3, 1.0]), max_size=4))
# One key four times in a file (its rows fold into each other), a job failing at the third
# row, and slices of one row: found by 2 of 11 seeds against a round that took a job's rows
# to its instant in one visit (bench/OPTIMISATIONS.md 24), so it is run every time.
@example(([{"email": "a@example.com", "v": "", "w": ""}] * 4, 2, 4, [], "update", (), [], 0.05),
         1, 1, None, [0.1, 0.3])
def test_folded_rounds_end_where_one_settle_ends(case: Any, max_jobs: int, max_rows: int,
                                                 settle_at: int | None, steps: list[float]
                                                 ) -> None:
    rounds_match_settles(lambda: _build(case),
                         lambda core: _round(core, max_jobs=max_jobs, max_rows=max_rows,
                                             settle_at=settle_at),
                         _state, steps, FINAL)


def _profiles(copies: int, *, merge: str = "overwrite") -> tuple[Core, int, list[int]]:
    """InboxApp-style jobs: usernames resolved to profiles (three instants, custom columns
    nested), the lead keeping when it was first seen. In a backend of its own, in a workspace
    of one key: the profiles derive from it, and are compared between two such cores."""
    backend = Backend(Settings(seed=1234, clock_start=START, clock_mode="frozen",
                               background_ticker=False))
    core = Core(backend=backend, key="wbk_core_profiles")
    lst = core.new_list()
    rows = [{"username": f"prospect{i:02d}", "custom_q5": f"Company {i}"} for i in range(4)]
    policy = sandbox.vendors.inboxapp._policy(merge)
    pks = [core.create(lst, rows, pacing=Pacing(0, 0, 20), policy=policy, at=T0 + n * 0.011,
                       plan={"resolve": "inboxapp.profile"}, source="csv")
           for n in range(copies)]
    return core, lst, pks


@pytest.mark.parametrize("merge", ["overwrite", "merge", "skip"])
def test_profile_rows_fold_into_the_same_leads_a_settle_writes(merge: str) -> None:
    rounds, lst, pks = _profiles(40, merge=merge)
    _advance(rounds, 0.7)
    _round(rounds, max_jobs=25, max_rows=30, settle_at=3)
    _advance(rounds, FINAL - T0 - 0.7)
    _round(rounds, max_jobs=25, max_rows=30)
    once, lst_once, pks_once = _profiles(40, merge=merge)
    once.settle(FINAL)
    assert _state(rounds, lst, pks) == _state(once, lst_once, pks_once)
    leads = rounds.leads(lst)
    assert len(leads) == 4
    assert all(ld["data"]["columns"] == {"custom_q5": f"Company {i}"}
               for i, ld in enumerate(leads))


def test_rows_of_one_source_are_folded_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """40 jobs of one 4-row file in one round: each slice resolves and merges a handful of
    rows per lead, not every row, and counts every row all the same."""
    core, _lst, pks = _profiles(40)
    decided = []
    real = applying.decide

    def spy(*args: Any, **kwargs: Any) -> Any:
        decided.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(applying, "decide", spy)
    _advance(core, FINAL - T0)
    _round(core, max_jobs=300, max_rows=400)
    assert len(decided) <= 4 * 3  # per lead: its first row, one to learn it is clean, its last
    jobs = [core.job(pk) for pk in pks]
    assert [(j["status"], j["processed"]) for j in jobs] == [("completed", 4)] * 40
    assert sum(j["counts"]["updated"] for j in jobs) == 4 * 39
    assert sum(j["counts"]["added"] for j in jobs) == 4


# ---- decide_rows given unresolved rows, against the same rows resolved --------------------

def _stamp(row: dict[str, Any], at: float) -> dict[str, Any]:
    """A resolver of the kind FOLDABLE names: the instant changes one non-empty text value."""
    return {**row, "seen": f"t{at:.3f}", "columns": {"c": row["v"] or "-"}}


source_st = st.fixed_dictionaries({"email": st.sampled_from([*POOL, FAIL]),
                                   "v": st.sampled_from(["", "x", "y"])})
batch_st = st.tuples(st.lists(source_st, min_size=1, max_size=3),
                     st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1,
                              max_size=14),
                     st.sampled_from(["update", "overwrite"]), st.sampled_from([(), ("seen",)]),
                     st.lists(st.tuples(st.sampled_from(POOL), st.booleans()), max_size=3,
                              unique_by=lambda e: e[0]))


def _decide(case: Any, *, unresolved: bool) -> tuple[Any, ...]:
    """One decide_rows call over a batch built from `case`: which source row each row is
    (sources are shared objects, as rounds hand them over) and which of three jobs it is."""
    sources, picks, on_existing, keep, existing = case
    core, lst, policy = _list_and_policy(existing, "seen", on_existing, keep)
    keys_of = applying.row_keys_reader(policy)
    pending = [{"pk": n, "id": f"job{n}", "counts": new_counts(), "row_errors": []}
               for n in range(3)]
    batch = []
    for n, (which, job) in enumerate(picks):
        source = sources[which % len(sources)]
        due = T0 + n / 1000
        row = _stamp(dict(source), due)
        index = sum(1 for _w, j in picks[:n] if j == job)
        batch.append((due, job, index, (source, _stamp) if unresolved else row, pending[job],
                      keys_of(row)))
    with core.backend.store.begin() as conn:
        tallies, failed = applying.decide_rows(conn, core.key, lst, pending, batch,
                                               dict.fromkeys(range(3), policy), None, None,
                                               unresolved=unresolved)
    leads = tuple((ld["key"], ld["job_id"], ld["created_at"], ld["updated_at"],
                   list(ld["data"].items())) for ld in core.leads(lst))
    return tallies, failed, leads, core.lead_count(lst)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(batch_st)
def test_unresolved_rows_decide_as_the_same_rows_resolved(case: Any) -> None:
    """Whatever the order of jobs, a job failing between two rows of one source row, fields
    kept from a lead that lacks them, or rows of other sources in between."""
    assert _decide(case, unresolved=True) == _decide(case, unresolved=False)


def test_rows_met_once_are_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of distinct rows (none shared with another job) costs no more than before
    folding: each row is resolved once, where it is taken."""
    backend = Backend(Settings(seed=1234, clock_start=START, clock_mode="frozen",
                               background_ticker=False))
    core = Core(backend=backend, key="wbk_core_distinct")
    lst = core.new_list()
    rows = [{"username": f"user{i:03d}", "custom_q5": f"Company {i}"} for i in range(120)]
    pk = core.create(lst, rows, pacing=Pacing(0, 0, 20),
                     policy=sandbox.vendors.inboxapp._policy("overwrite"),
                     plan={"resolve": "inboxapp.profile"}, source="csv")
    resolved = []
    real = applying.RESOLVERS["inboxapp.profile"]

    def spy(row: dict[str, Any], ctx: Any) -> dict[str, Any]:
        resolved.append(row["username"])
        return real(row, ctx)

    monkeypatch.setitem(applying.RESOLVERS, "inboxapp.profile", spy)
    _advance(core, FINAL - T0)
    _round(core, max_jobs=5, max_rows=40)
    assert sorted(resolved) == sorted(r["username"] for r in rows)
    assert (core.job(pk)["status"], core.job(pk)["counts"]["added"]) == ("completed", 120)
