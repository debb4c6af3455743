"""Overlapping imports from parallel HTTP clients into one list: every job's counts add up and
the list holds each distinct lead exactly once (paced InboxApp jobs settled while the clock
moves under them, and synchronous Leadlex imports)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.reliability.conftest import Server, auth
from tests.reliability.kit import new_key

CLIENTS = 50
ROWS = 40
POOL = 300  # distinct identifiers shared by all the jobs: every job overlaps the others


def _usernames(i: int) -> list[str]:
    # Every 8th identifier is an unresolvable account: failed rows, counted but never stored.
    names = [f"cc{(i * 7 + j * 13) % POOL}" for j in range(ROWS)]
    return [f"suspended_{n}" if int(n[2:]) % 8 == 0 else n for n in names]


def _lead_count(client: httpx.Client, key: str, vendor: str, list_id: str) -> int:
    ws = client.get(f"/__sandbox/workspaces/{key}").json()
    return int(next(x["leadCount"] for x in ws["lists"][vendor] if x["id"] == list_id))


def test_fifty_parallel_csv_jobs_into_one_list(server: Server) -> None:
    key = new_key("conc")
    with server.client() as c:
        before = _lead_count(c, key, "inboxapp", "demolist1")
    stop = threading.Event()

    def create(i: int) -> dict[str, Any]:
        csv = "username\n" + "\n".join(_usernames(i)) + "\n"
        with server.client() as c:
            r = c.post("/inboxapp/lists/demolist1/import-jobs", **auth("inboxapp", key),
                       json={"data": {"type": "csv", "content": csv, "mergeStrategy": "skip"}})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def move_clock() -> int:
        # The clock moves while jobs are being created: settling races the creations.
        moves = 0
        with server.client() as c:
            while not stop.is_set() and moves < 500:
                r = c.post(f"/__sandbox/workspaces/{key}/clock/advance", json={"seconds": 0.5})
                assert r.status_code == 200, r.text
                moves += 1
        return moves

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        mover = pool.submit(move_clock)
        created = list(pool.map(create, range(CLIENTS)))
        stop.set()
        assert mover.result() > 0
    server.advance(key, 3600)

    with server.client() as c:
        r = c.get("/inboxapp/lists/demolist1/import-jobs", params={"limit": 100},
                  **auth("inboxapp", key))
        jobs = {j["id"]: j for j in r.json()["data"]}
        after = _lead_count(c, key, "inboxapp", "demolist1")
    assert set(jobs) == {j["id"] for j in created}
    for job in jobs.values():
        assert job["status"] == "completed", job
        assert job["totalCount"] == job["processedCount"] == ROWS
        assert job["addedCount"] + job["skippedCount"] + job["failedCount"] == ROWS
    distinct = {n for i in range(CLIENTS) for n in _usernames(i)}
    valid = {n for n in distinct if not n.startswith("suspended_")}
    assert sum(j["failedCount"] for j in jobs.values()) == sum(
        1 for i in range(CLIENTS) for n in _usernames(i) if n.startswith("suspended_"))
    # Each distinct lead added exactly once, by exactly one job, and nothing else stored.
    assert sum(j["addedCount"] for j in jobs.values()) == len(valid)
    assert after - before == len(valid)


def test_fifty_parallel_synchronous_imports_store_each_contact_once(server: Server) -> None:
    key = new_key("conc")

    def rows(i: int) -> list[dict[str, str]]:
        out = [{"email": f"p{(i * 11 + j * 7) % POOL}@example.com", "full_name": f"P {i} {j}"}
               for j in range(ROWS)]
        out[0] = {"email": "not-an-email", "full_name": "Bad"}
        return out

    def run(i: int) -> dict[str, Any]:
        with server.client() as c:
            r = c.post("/leadlex/v1/import/contacts", **auth("leadlex", key),
                       json={"rows": rows(i)})
        assert r.status_code == 200, r.text
        return dict(r.json()["data"])

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(run, range(CLIENTS)))
    for res in results:
        assert res["created_count"] + res["updated_count"] + res["skipped_count"] + len(
            res["errors"]) == ROWS, res
    distinct = {r["email"] for i in range(CLIENTS) for r in rows(i)} - {"not-an-email"}
    assert sum(r["created_count"] for r in results) == len(distinct)

    emails: list[str] = []
    with server.client() as c:
        page = 1
        while page < 100:
            r = c.get("/leadlex/v1/contacts", params={"per_page": 100, "page": page},
                      **auth("leadlex", key))
            found = r.json()["data"]["contacts"]
            emails += [x["email"] for x in found]
            if len(found) < 100:
                break
            page += 1
    mine = [e for e in emails if e in distinct]
    assert sorted(mine) == sorted(distinct)  # each exactly once
