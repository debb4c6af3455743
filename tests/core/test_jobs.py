"""Job lifecycle in the core: pacing, settling at chosen instants, forced transitions."""

from __future__ import annotations

import pytest

from sandbox.core import jobs
from sandbox.core import settle as settling
from sandbox.core.clock import Clock, quantise
from sandbox.core.errors import Conflict
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import FORCED_TRANSITIONS, STATUSES, TERMINAL, Pacing
from tests.core.jobkit import T0, Core, conserved, emails

CSV_PACING = Pacing(queue_wait=2, start_delay=1, rows_per_second=20)


@pytest.fixture
def core() -> Core:
    return Core()


def names(n: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# ---- due instants ---------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [20, 3, 7, 0.5, 200, 13.7, 1000])
def test_row_due_instants_agree_with_due_count(rate: float) -> None:
    job = {"running_from": T0 + 3, "total": 300, "plan": {"rate": rate}}
    for i in range(300):
        due = jobs.row_due_at(job, i)
        assert jobs.due_count(job, due) == i + 1
        assert jobs.due_count(job, quantise(due - 1e-6)) == i


def test_a_clock_advanced_in_small_steps_makes_one_row_due_per_step() -> None:
    job = {"running_from": T0 + 3, "total": 500, "plan": {"rate": 20}}
    c = Clock.starting_at(T0, frozen=True).advance(2).advance(1)
    seen = []
    for _ in range(40):
        c = c.advance(0.05)
        seen.append(jobs.due_count(job, c.now()))
    assert seen == list(range(1, 41))


def test_unpaced_job_has_every_row_due_at_once() -> None:
    job = {"running_from": T0, "total": 7, "plan": {"rate": None}}
    assert jobs.due_count(job, T0) == 7
    assert jobs.due_count(job, T0 - 1) == 0
    assert jobs.row_due_at(job, 6) == T0


# ---- lifecycle --------------------------------------------------------------------------------

def test_lifecycle_at_chosen_instants(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(100)), pacing=CSV_PACING)
    expected = [  # (offset from T0, status, processed, updated_at offset)
        (0, "queued", 0, 0), (1.999, "queued", 0, 0), (2, "starting", 0, 2),
        (2.999, "starting", 0, 2), (3, "running", 0, 3), (3.05, "running", 1, 3.05),
        (3.5, "running", 10, 3.5), (3.52, "running", 10, 3.5), (5.5, "running", 50, 5.5),
        (7.95, "running", 99, 7.95), (8, "completed", 100, 8), (60, "completed", 100, 8)]
    for offset, status, processed, updated in expected:
        core.settle(T0 + offset)
        job = core.job(pk)
        assert (job["status"], job["processed"], job["updated_at"]) == (
            status, processed, T0 + updated), offset
        assert job["counts"]["added"] == processed and conserved(job)
    job = core.job(pk)
    assert job["created_at"] == T0 and job["started_at"] == T0 + 2
    assert job["completed_at"] == T0 + 8 and job["error"] is None
    assert len(core.leads(lst)) == core.lead_count(lst) == 100


def test_one_step_or_many_small_steps_give_the_same_job() -> None:
    rows = emails(*names(30), "u3", "u7")
    once, stepped = Core(), Core()
    lists_ = [c.new_list() for c in (once, stepped)]
    pks = [c.create(lst, rows, pacing=CSV_PACING) for c, lst in zip((once, stepped), lists_,
                                                                       strict=True)]
    clock = Clock.starting_at(T0, frozen=True)
    for _ in range(100):
        clock = clock.advance(0.047)
        before = stepped.job(pks[1])["processed"]
        stepped.settle(clock.now())
        assert stepped.job(pks[1])["processed"] >= before
    once.settle(clock.now())
    one_job, many_job = once.job(pks[0]), stepped.job(pks[1])
    for name in ("status", "processed", "counts", "updated_at", "completed_at"):
        assert one_job[name] == many_job[name], name
    assert [(ld["key"], ld["created_at"]) for ld in once.leads(lists_[0])] == [
        (ld["key"], ld["created_at"]) for ld in stepped.leads(lists_[1])]


def test_a_fail_value_fails_the_job_at_that_row(core: Core) -> None:
    lst = core.new_list()
    rows = [*emails("a", "b", "c", "d"), {"email": "fail_quota-reached@example.com"},
            *emails("e", "f")]
    pk = core.create(lst, rows, pacing=Pacing(0, 0, 10))
    core.settle(T0 + 0.45)
    assert core.job(pk)["status"] == "running" and core.job(pk)["processed"] == 4
    core.settle(T0 + 100)
    job = core.job(pk)
    assert job["status"] == "failed" and job["error"] == "Quota reached"
    assert job["processed"] == 5 and job["total"] == 7
    assert job["counts"]["added"] == 4 and job["counts"]["failed"] == 1 and conserved(job)
    assert job["completed_at"] == job["updated_at"] == T0 + 0.5
    assert job["row_errors"] == [{"row_number": 5, "code": "job_failed",
                                  "message": "Quota reached"}]
    assert sorted(ld["key"] for ld in core.leads(lst)) == [f"{n}@example.com" for n in "abcd"]


@pytest.mark.parametrize(("value", "message"), [
    ("fail_rate_limit", "Rate limit exceeded"), ("fail-rate-limit", "Rate limit exceeded"),
    ("FAIL_timeout", "Timeout"), ("fail_", "Import failed")])
def test_fail_values_name_the_error(core: Core, value: str, message: str) -> None:
    lst = core.new_list()
    pk = core.create(lst, [{"email": f"{value}@example.com"}], pacing=Pacing(0, 0, None))
    core.settle(T0)
    assert (core.job(pk)["status"], core.job(pk)["error"]) == ("failed", message)


def test_cancel_keeps_what_was_processed_and_stops(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(100)), pacing=CSV_PACING)
    job = core.force(pk, "canceled", T0 + 3.5)
    assert job["status"] == "canceled" and job["processed"] == 10
    assert job["completed_at"] == job["updated_at"] == T0 + 3.5
    core.settle(T0 + 1000)
    assert core.job(pk) == job
    assert len(core.leads(lst)) == 10


def test_pause_holds_progress_and_resume_continues_at_the_same_pace(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(100)), pacing=CSV_PACING)
    paused = core.force(pk, "paused", T0 + 3.5)
    assert (paused["status"], paused["processed"]) == ("paused", 10)
    core.settle(T0 + 100)
    assert core.job(pk)["processed"] == 10 and core.job(pk)["status"] == "paused"
    resumed = core.force(pk, "running", T0 + 100)
    assert (resumed["status"], resumed["processed"]) == ("running", 10)
    assert jobs.next_due(resumed) == T0 + 100.05
    core.settle(T0 + 100.5)
    assert core.job(pk)["processed"] == 20
    core.settle(T0 + 104.5)
    job = core.job(pk)
    assert job["status"] == "completed" and job["completed_at"] == T0 + 104.5
    assert conserved(job) and job["counts"]["added"] == 100


def test_forced_starting_runs_a_second_later(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(50)), pacing=CSV_PACING)
    job = core.force(pk, "starting", T0 + 0.5)
    assert job["status"] == "starting" and jobs.next_due(job) == T0 + 1.5
    core.settle(T0 + 1.5)
    assert core.job(pk)["status"] == "running" and core.job(pk)["processed"] == 0
    core.settle(T0 + 1.55)
    assert core.job(pk)["processed"] == 1


def test_forced_completion_processes_every_remaining_row_at_once(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(40), "u1"), pacing=CSV_PACING)
    job = core.force(pk, "completed", T0 + 3.5)
    assert job["status"] == "completed" and job["processed"] == 41
    assert job["counts"]["added"] == 40 and job["counts"]["skipped"] == 1 and conserved(job)
    assert job["completed_at"] == T0 + 3.5


def test_forced_failure_records_the_error(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(40)), pacing=CSV_PACING)
    job = core.force(pk, "failed", T0 + 4, error="Upstream outage")
    assert (job["status"], job["error"], job["processed"]) == ("failed", "Upstream outage", 20)


def test_illegal_transitions_are_refused_with_the_legal_ones(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails("a"), pacing=CSV_PACING)
    core.force(pk, "completed", T0 + 1)
    with pytest.raises(Conflict) as info:
        core.force(pk, "running", T0 + 2)
    assert info.value.extra == {"legal": [], "current": "completed"}
    queued = core.create(lst, emails("b"), pacing=CSV_PACING, at=T0 + 2)
    with pytest.raises(Conflict) as info:
        core.force(queued, "created", T0 + 2)
    assert info.value.extra["legal"] == ["canceled", "completed", "failed", "paused", "running",
                                         "starting"]


def test_transition_table_covers_every_status_and_terminals_are_final() -> None:
    assert set(FORCED_TRANSITIONS) == set(STATUSES)
    for status, targets in FORCED_TRANSITIONS.items():
        assert targets <= set(STATUSES) and status not in targets
        assert (not targets) == (status in TERMINAL)


def test_settling_at_an_earlier_instant_changes_nothing(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails(*names(10)), pacing=CSV_PACING)
    core.settle(T0 + 3.2)
    before = core.job(pk)
    core.settle(T0 + 1)
    assert core.job(pk) == before


def test_an_empty_job_completes_when_it_starts_running(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, [], pacing=CSV_PACING)
    core.settle(T0 + 3)
    job = core.job(pk)
    assert (job["status"], job["processed"], job["completed_at"]) == ("completed", 0, T0 + 3)


def test_an_unstarted_job_waits_for_rows_and_start(core: Core) -> None:
    lst = core.new_list()
    pk = core.create(lst, emails("a", "b"), pacing=None)
    core.settle(T0 + 100)
    assert core.job(pk)["status"] == "created"
    with core.backend.store.begin() as conn:
        jobs.append_rows(conn, pk, '{"email":"c@example.com"}\n', 1)
        jobs.start(conn, pk, now=T0 + 100, pacing=Pacing(3, 2, 100))
    core.settle(T0 + 104.99)
    assert core.job(pk)["status"] == "starting"
    core.settle(T0 + 105.03)
    job = core.job(pk)
    assert job["status"] == "completed" and job["processed"] == job["total"] == 3
    assert job["completed_at"] == T0 + 105.03


def test_run_now_answers_every_row_in_order(core: Core) -> None:
    lst = core.new_list()
    core.run_now(lst, emails("a"))
    job, results = core.run_now(lst, [*emails("b", "a", "b"), {"email": "not-an-email"}],
                                at=T0 + 5)
    assert [(r.index, r.outcome) for r in results] == [
        (0, "added"), (1, "skipped"), (2, "skipped"), (3, "failed")]
    assert job["status"] == "completed" and job["completed_at"] == T0 + 5 and conserved(job)


# ---- several jobs on one list ---------------------------------------------------------------

def _overlapping(core: Core) -> tuple[int, int, int]:
    """Two jobs whose running windows interleave and share some keys."""
    lst = core.new_list()
    a = core.create(lst, emails(*names(20)), pacing=Pacing(0, 0, 10))  # due 0.1 .. 2.0
    # b's rows are due at 0.9, 1.4, 1.9, 2.4, 2.9; a's row ui at (i + 1) / 10.
    b = core.create(lst, emails("u5", "u15", "v1", "u19", "v2"),
                    pacing=Pacing(0, 0.4, 2))
    return lst, a, b


def _outcome(core: Core, lst: int, a: int, b: int) -> tuple[object, ...]:
    leads = core.leads(lst)
    return (core.job(a)["counts"], core.job(b)["counts"],
            sorted((ld["key"], ld["job_id"], ld["created_at"]) for ld in leads))


def test_overlapping_jobs_never_add_a_lead_twice_and_attribute_by_due_time(core: Core) -> None:
    lst, a, b = _overlapping(core)
    core.settle(T0 + 10)
    leads = core.leads(lst)
    keys = [ld["key"] for ld in leads]
    assert len(keys) == len(set(keys)) == 22 == core.lead_count(lst)
    owner = {ld["key"]: ld["job_id"] for ld in leads}
    assert owner["u5@example.com"] == "job1"    # a's row at 0.6 beats b's at 0.9
    assert owner["u15@example.com"] == "job2"   # b's row at 1.4 beats a's at 1.6
    assert owner["u19@example.com"] == "job1"   # a's row at 2.0 beats b's at 2.4
    assert owner["v1@example.com"] == "job2"
    assert core.job(a)["counts"]["skipped"] == 1 and core.job(b)["counts"]["skipped"] == 2
    assert conserved(core.job(a)) and conserved(core.job(b))


def test_attribution_is_the_same_in_one_step_or_many() -> None:
    one, many = Core(), Core()
    ids_one, ids_many = _overlapping(one), _overlapping(many)
    one.settle(T0 + 10)
    clock = Clock.starting_at(T0, frozen=True)
    while clock.now() < T0 + 10:
        clock = clock.advance(0.13)
        many.settle(clock.now())
    assert _outcome(one, *ids_one) == _outcome(many, *ids_many)


def test_memory_bounded_batches_keep_due_time_order(monkeypatch: pytest.MonkeyPatch) -> None:
    unbounded = Core()
    ids = _overlapping(unbounded)
    unbounded.settle(T0 + 10)
    monkeypatch.setattr(settling, "MAX_ROWS_PER_BATCH", 3)
    bounded = Core()
    ids_bounded = _overlapping(bounded)
    bounded.settle(T0 + 10)
    assert _outcome(bounded, *ids_bounded) == _outcome(unbounded, *ids)


def test_leads_record_the_instants_and_job_that_wrote_them(core: Core) -> None:
    lst = core.new_list()
    core.create(lst, emails("a", "b"), pacing=Pacing(0, 0, 10))
    updater = ImportPolicy(key_fields=("email",), email_field="email", on_existing="update")
    core.create(lst, [{"email": "a@example.com", "name": "A"}], pacing=Pacing(0, 1, 1),
                policy=updater)
    core.settle(T0 + 10)
    by_key = {ld["key"]: ld for ld in core.leads(lst)}
    a, b = by_key["a@example.com"], by_key["b@example.com"]
    assert (a["created_at"], a["updated_at"], a["job_id"]) == (T0 + 0.1, T0 + 2, "job1")
    assert a["data"] == {"email": "a@example.com", "name": "A"}
    assert (b["created_at"], b["updated_at"]) == (T0 + 0.2, T0 + 0.2)


def test_a_lead_matched_by_its_alternative_key_records_the_update_instant(core: Core) -> None:
    lst = core.new_list()
    by_phone = ImportPolicy(key_fields=("email",), alt_key_field="phone", on_existing="update")
    core.create(lst, [{"email": "a@example.com", "phone": "+14155550100"}],
                pacing=Pacing(0, 0, 10), policy=by_phone)
    core.create(lst, [{"email": "b@example.com", "phone": "+1 415 555 0100", "name": "B"}],
                pacing=Pacing(0, 2, 10), policy=by_phone)
    core.settle(T0 + 10)
    [lead] = core.leads(lst)
    assert lead["key"] == "a@example.com" and lead["data"]["name"] == "B"
    assert (lead["created_at"], lead["updated_at"]) == (T0 + 0.1, T0 + 2.1)


# ---- the create answer --------------------------------------------------------------------

@pytest.mark.parametrize("pacing", [CSV_PACING, None, Pacing(0, 0, 10)])
@pytest.mark.parametrize("policy", [
    ImportPolicy(key_fields=("email",), email_field="email"),
    ImportPolicy(key_fields=("platformId",), on_existing="overwrite", email_field=None,
                 keep=("firstSeenAt",), tags=("a", "b"), alt_key_field="phone"),
])
def test_add_answers_the_job_as_it_reads_back(core: Core, pacing: Pacing | None,
                                              policy: ImportPolicy) -> None:
    list_pk = core.new_list()
    with core.backend.store.begin() as conn:
        added = jobs.add(conn, workspace=core.key, vendor="kit", job_id="j1", list_pk=list_pk,
                         kind="csv", now=T0 + 0.25, source_format="jsonl", content="{}\n",
                         offset=0, total=1, policy=policy, pacing=pacing,
                         plan={"csv_header": ["email"], "csv_mapping": {"email": "email"}},
                         extra={"fileName": None})
        stored = jobs.get_by_pk(conn, added["pk"])
    assert added == stored
    assert list(added) == list(stored)
