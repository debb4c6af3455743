"""Properties of settling (hypothesis): every row is accounted for, no lead twice, and the
result is a pure function of the plan and the clock, whatever the settling steps."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from sandbox.core import jobs
from sandbox.core import store as t
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import Pacing
from tests.core.jobkit import T0, VENDOR, Core

POOL = [f"p{i}@example.com" for i in range(12)]
ODD = ["not-an-email", "x@blocked.example", "Y@Blocked.Example", ""]

row_st = st.one_of(
    st.builds(lambda e, v: {"email": e, "v": v}, st.sampled_from(POOL), st.integers(0, 2)),
    st.builds(lambda e: {"email": e}, st.sampled_from(ODD)),
)
pacing_st = st.builds(Pacing, st.sampled_from([0, 0.5, 1.25]), st.sampled_from([0, 0.3]),
                      st.sampled_from([1, 3, 7, 20, None]))
job_st = st.tuples(st.lists(row_st, max_size=25), pacing_st,
                   st.sampled_from(["skip", "update", "update_if_changed", "merge",
                                    "overwrite"]),
                   st.sampled_from([0, 0.2, 1]))
plan_st = st.tuples(st.lists(st.sampled_from(POOL), max_size=5, unique=True),
                    st.lists(job_st, min_size=1, max_size=3),
                    st.lists(st.sampled_from([0.05, 0.1, 0.33, 0.5, 1, 2.5]), max_size=20))


def _build(plan: Any, *, fail_at: int | None = None, source: str = "jsonl"
           ) -> tuple[Core, int, list[int]]:
    existing, job_specs, _steps = plan
    core = Core()
    lst = core.new_list()
    with core.backend.store.begin() as conn:
        conn.execute(insert(t.block_list).values(workspace=core.key, vendor=VENDOR,
                                                 value="blocked.example", created_at=T0))
    if existing:
        core.run_now(lst, [{"email": e, "v": 0} for e in existing])
    pks = []
    for n, (rows, pacing, on_existing, delay) in enumerate(job_specs):
        rows = [dict(r) for r in rows]
        if fail_at is not None and n == 0 and fail_at < len(rows):
            rows[fail_at] = {"email": "fail_rate_limit@example.com"}
        policy = ImportPolicy(key_fields=("email",), on_existing=on_existing,
                              check_block_list=True)
        pks.append(core.create(lst, rows, pacing=pacing, policy=policy, at=T0 + delay,
                               source=source))
    return core, lst, pks


def _accounted(job: dict[str, Any]) -> int:
    c = job["counts"]
    return int(c["added"] + c["updated"] + c["unchanged"] + c["skipped"] + c["blocked"]
               + c["failed"])


def _snapshot(core: Core, lst: int, pks: list[int]) -> tuple[Any, ...]:
    leads = sorted((ld["key"], ld["job_id"], ld["created_at"], ld["updated_at"],
                    sorted(ld["data"].items())) for ld in core.leads(lst))
    return tuple((j["status"], j["processed"], j["counts"], j["updated_at"], j["completed_at"])
                 for j in map(core.job, pks)), leads


def _check(core: Core, lst: int, pks: list[int], at: float) -> None:
    for pk in pks:
        job = core.job(pk)
        assert _accounted(job) == job["processed"]
        if job["status"] in {"queued", "starting", "running", "completed"}:
            assert job["processed"] == jobs.due_count(job, at)
        if job["status"] == "failed":
            assert job["processed"] <= jobs.due_count(job, at)
    keys = [ld["key"] for ld in core.leads(lst)]
    assert len(keys) == len(set(keys)) == core.lead_count(lst)


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan_st)
def test_counts_are_conserved_and_results_do_not_depend_on_settling_steps(plan: Any) -> None:
    stepped, lst, pks = _build(plan)
    at = T0
    for step in plan[2]:
        at += step
        stepped.settle(at)
        _check(stepped, lst, pks, at)
    final = T0 + 120
    stepped.settle(final)
    _check(stepped, lst, pks, final)
    for pk in pks:
        assert stepped.job(pk)["status"] == "completed"
    valid = {r["email"].lower() for rows, *_ in plan[1] for r in rows
             if r["email"] in POOL}
    assert {ld["key"] for ld in stepped.leads(lst)} == valid | set(plan[0])

    at_once, lst_once, pks_once = _build(plan)
    at_once.settle(final)
    assert _snapshot(at_once, lst_once, pks_once) == _snapshot(stepped, lst, pks)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan_st, st.integers(0, 24))
def test_a_failing_row_stops_only_its_job_and_loses_nothing(plan: Any, fail_at: int) -> None:
    core, lst, pks = _build(plan, fail_at=fail_at)
    at = T0
    for step in plan[2]:
        at += step
        core.settle(at)
        _check(core, lst, pks, at)
    core.settle(T0 + 120)
    _check(core, lst, pks, T0 + 120)
    first = core.job(pks[0])
    if fail_at < first["total"]:
        assert (first["status"], first["error"]) == ("failed", "Rate limit exceeded")
        assert first["processed"] == fail_at + 1
    assert all(core.job(pk)["status"] == "completed" for pk in pks[1:])
