"""Settling survives stored rows it cannot read: the job fails once, the workspace goes on."""

from __future__ import annotations

from sqlalchemy import update

from sandbox.core import store as t
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
