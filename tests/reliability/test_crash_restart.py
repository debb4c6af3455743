"""SIGKILL a live server on a file database while jobs are queued, running and being created,
restart it on the same file: every acknowledged job is there, exactly where the workspace
clock says, finishes, and no lead is added twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.reliability.conftest import Server, auth
from tests.reliability.kit import new_key

ROWS = 100
POOL = 150  # every job overlaps the others: dedup must hold across the crash


def _csv(i: int) -> str:
    return "username\n" + "\n".join(f"rs{(i * 37 + j) % POOL}" for j in range(ROWS)) + "\n"


def _create(c: httpx.Client, key: str, i: int) -> dict[str, Any]:
    r = c.post("/inboxapp/lists/demolist1/import-jobs", **auth("inboxapp", key),
               json={"data": {"type": "csv", "content": _csv(i), "mergeStrategy": "skip"}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _jobs(c: httpx.Client, key: str) -> dict[str, dict[str, Any]]:
    r = c.get("/inboxapp/lists/demolist1/import-jobs", params={"limit": 100},
              **auth("inboxapp", key))
    assert r.status_code == 200, r.text
    return {j["id"]: j for j in r.json()["data"]}


def _lead_count(c: httpx.Client, key: str) -> int:
    ws = c.get(f"/__sandbox/workspaces/{key}").json()
    return int(next(x["leadCount"] for x in ws["lists"]["inboxapp"] if x["id"] == "demolist1"))


def test_sigkill_with_jobs_queued_running_and_in_flight(own_server: Callable[..., Server]
                                                          ) -> None:
    srv = own_server().start()
    key = new_key("crash")
    with srv.client() as c:
        before = _lead_count(c, key)
        acknowledged = [_create(c, key, i)["id"] for i in range(3)]
        srv.advance(key, 5)  # queued 2 s + starting 1 s: the three run, 40 rows each so far
        acknowledged += [_create(c, key, i)["id"] for i in range(3, 6)]  # queued behind
        snapshot = _jobs(c, key)
    statuses = {j["status"] for j in snapshot.values()}
    assert {"running", "queued"} <= statuses, statuses
    assert any(0 < j["processedCount"] < ROWS for j in snapshot.values())

    # A client keeps creating jobs; the server dies under it, mid-stream.
    acked_in_flight: list[str] = []
    enough = threading.Event()

    def keep_creating() -> None:
        with srv.client(timeout=10) as c:
            for i in range(6, 200):
                try:
                    acked_in_flight.append(_create(c, key, i)["id"])
                except (httpx.TransportError, AssertionError):
                    return
                if len(acked_in_flight) >= 5:
                    enough.set()

    writer = threading.Thread(target=keep_creating)
    writer.start()
    assert enough.wait(timeout=60)
    srv.kill()
    writer.join(timeout=60)
    assert not writer.is_alive()

    srv.start()  # same port, same database file
    with srv.client() as c:
        after_restart = _jobs(c, key)
        # Nothing acknowledged is lost; nothing half-written appears.
        assert set(acknowledged + acked_in_flight) <= set(after_restart)
        assert len(after_restart) <= len(acknowledged) + len(acked_in_flight) + 1
        # The frozen clock was re-read from the database: every job is where it was.
        for job_id, job in snapshot.items():
            assert after_restart[job_id] == job
        srv.advance(key, 3600)
        done = _jobs(c, key)
        after = _lead_count(c, key)
    for job in done.values():
        assert job["status"] == "completed", job
        assert job["processedCount"] == job["totalCount"] == ROWS
        assert job["addedCount"] + job["skippedCount"] + job["failedCount"] == ROWS
    # Every distinct identifier was added exactly once, across the crash and all the jobs.
    assert sum(j["addedCount"] for j in done.values()) == after - before == POOL


def test_a_restart_resumes_jobs_on_the_clock_not_on_the_wall(
        own_server: Callable[..., Server]) -> None:
    """Killed mid-job, down for a while, restarted: the job's progress is exactly the
    clock's, then it goes on as the clock moves (no rows replayed, none skipped)."""
    srv = own_server().start()
    key = new_key("resume")
    with srv.client() as c:
        job = _create(c, key, 0)
        srv.advance(key, 3 + 2.5)  # 2.5 s of running at 20 rows/s: 50 rows
        mid = _jobs(c, key)[job["id"]]
    assert mid["status"] == "running" and mid["processedCount"] == 50
    srv.kill()
    srv.start()
    with srv.client() as c:
        assert _jobs(c, key)[job["id"]] == mid
        srv.advance(key, 1)
        later = _jobs(c, key)[job["id"]]
        assert later["processedCount"] == 70
        srv.advance(key, 60)
        final = _jobs(c, key)[job["id"]]
    assert final["status"] == "completed" and final["processedCount"] == ROWS
    assert final["addedCount"] + final["skippedCount"] + final["failedCount"] == ROWS
