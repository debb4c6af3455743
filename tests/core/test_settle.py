"""Settling survives stored rows it cannot read (the job fails once, the workspace goes on), and
a large settle that skips lookups through a key filter decides every row as a small one does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from sandbox.core import lists
from sandbox.core import store as t
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import Pacing
from tests.core.jobkit import T0, Core, emails


def test_an_unreadable_source_fails_its_job_and_leaves_the_others_running() -> None:
    core = Core()
    lst = core.new_list()
    broken = core.create(lst, emails("a", "b", "c"))
    healthy = core.create(lst, emails("d", "e"))
    with core.backend.store.begin() as conn:  # as if written by an older, laxer build
        conn.execute(update(t.job_sources).where(t.job_sources.c.job_pk == broken)
                     .values(content='{"email": "a@x.test"}\n{not json\n'))
    finished = core.settle(T0 + 1)
    job = core.job(broken)
    assert job["status"] == "failed"
    assert job["error"].startswith("the import source could not be read")
    assert job["processed"] == 0
    assert core.job(healthy)["status"] == "completed"
    assert {j["pk"] for j in finished} == {broken, healthy}
    assert core.settle(T0 + 5) == []  # nothing raises on later clock moves
    assert core.lead_count(lst) == 2


def _import_in_steps(step: float) -> tuple[Any, ...]:
    """2,600 rows matching existing leads by email and by phone, some twice, applied to the
    list in clock steps of `step` seconds; what the list and the job end up as."""
    core = Core()
    lst = core.new_list()
    by_phone = ImportPolicy(key_fields=("email",), alt_key_field="phone", phone_field="phone",
                            on_existing="update")
    core.run_now(lst, [{"email": f"p{i}@example.com", "phone": f"+1 415 555 {i:04d}", "v": 0}
                       for i in range(0, 900, 9)], policy=by_phone)
    rows = [{"email": f"{'q' if i % 5 == 0 else 'p'}{i % 1100}@example.com",
             "phone": f"+1 (415) 555-{(i * 7) % 1000:04d}", "v": i} for i in range(2600)]
    pk = core.create(lst, rows, pacing=Pacing(0, 0, 1000), policy=by_phone)
    at = T0
    while at < T0 + 4:
        at += step
        core.settle(at)
    leads = sorted((ld["key"], ld["alt_key"], ld["job_id"], ld["created_at"], ld["updated_at"],
                    sorted(ld["data"].items())) for ld in core.leads(lst))
    job = core.job(pk)
    return job["status"], job["processed"], job["counts"], job["updated_at"], leads


def test_a_large_settle_reads_the_list_into_a_key_filter_and_decides_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[lists.KeyFilter | None] = []
    real = lists.key_filter

    def spy(*args: Any) -> lists.KeyFilter | None:
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(lists, "key_filter", spy)
    filtered = _import_in_steps(5.0)
    assert [f is not None for f in built] == [True]  # 2,600 rows due, 100 leads held
    monkeypatch.setattr(lists, "key_filter", lambda *_args: None)
    looked_up = _import_in_steps(5.0)  # every key looked up
    assert filtered == looked_up
    status, processed, counts, _, leads = filtered
    assert (status, processed) == ("completed", 2600)
    assert counts["added"] + counts["updated"] + counts["unchanged"] == 2600
    assert counts["updated"] > 100 and len(leads) == counts["added"] + 100


def test_a_key_filter_never_says_no_to_a_key_it_holds() -> None:
    held = lists.KeyFilter()
    keys = [f"k{i}@example.com" for i in range(50_000)]
    held.add(keys)
    assert held.may_hold(keys) == keys
    others = held.may_hold(f"other{i}" for i in range(50_000))
    assert len(others) < 1000  # ~0.6% false "maybe" at this fill
