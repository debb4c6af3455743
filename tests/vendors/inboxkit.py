"""Helpers for the InboxApp HTTP tests: one app per module, requests, and reading what the
sandbox stored."""

from __future__ import annotations

import re
from typing import Any

from sandbox.core import jobs, lists
from tests.conftest import Sandbox

LIST = "demolist1"
COMPANY = "custom_q5cktl47a6pqa74eu06fz89v"
STAGE = "custom_h2k9m4x7p1n6v3w8j5q0r8t2"
JOB_KEYS = {"id", "type", "status", "totalCount", "processedCount", "addedCount",
            "skippedCount", "failedCount", "error", "createdAt", "updatedAt", "completedAt"}


def at(seconds: float) -> str:
    """The ISO instant `seconds` after the tests' frozen start, 2025-01-15T10:00:00Z."""
    whole, frac = divmod(round(seconds * 1000), 1000)
    minutes, secs = divmod(whole, 60)
    return f"2025-01-15T10:{minutes:02d}:{secs:02d}.{frac:03d}Z"


def usernames_csv(n: int, prefix: str = "user", **extra_columns: str) -> str:
    header = ",".join(["username", *extra_columns])
    lines = [",".join([f"{prefix}{i}", *extra_columns.values()]) for i in range(n)]
    return header + "\n" + "\n".join(lines) + "\n"


def create(sb: Sandbox, data: dict[str, Any], list_id: str = LIST) -> dict[str, Any]:
    r = sb.call("inboxapp", "POST", f"/lists/{list_id}/import-jobs", json={"data": data})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def create_csv(sb: Sandbox, content: str, list_id: str = LIST, **data: Any) -> dict[str, Any]:
    return create(sb, {"type": "csv", "content": content, **data}, list_id)


def job(sb: Sandbox, job_id: str, list_id: str = LIST) -> dict[str, Any]:
    r = sb.call("inboxapp", "GET", f"/lists/{list_id}/import-jobs", params={"limit": 100})
    assert r.status_code == 200, r.text
    found = [j for j in r.json()["data"] if j["id"] == job_id]
    assert len(found) == 1
    assert set(found[0]) == JOB_KEYS
    c = found[0]
    assert c["addedCount"] + c["skippedCount"] + c["failedCount"] == c["processedCount"]
    return c


def cancel(sb: Sandbox, job_id: str, list_id: str = LIST) -> Any:
    return sb.call("inboxapp", "POST", f"/lists/{list_id}/import-jobs/{job_id}/cancel", json={})


def stored_leads(app: Any, key: str, list_id: str = LIST, kind: str = "list"
                 ) -> list[dict[str, Any]]:
    with app.backend.workspace(key) as (conn, ws):
        target = lists.get(conn, ws.id, "inboxapp", list_id, kind=kind)
        return [ld["data"] for ld in lists.leads(conn, target["pk"], limit=10_000)]


def force(app: Any, key: str, job_id: str, to: str) -> None:
    backend = app.backend
    with backend.workspace(key) as (conn, ws):
        found = jobs.find(conn, ws.id, "inboxapp", job_id)
        jobs.force(conn, found, to, at=ws.now, seed=ws.seed)


def assert_prospect(p: dict[str, Any]) -> None:
    assert p["platform"] == "twitter"
    assert re.fullmatch(r"[1-9][0-9]{5,19}", p["platformId"])
    assert re.fullmatch(r"[a-z0-9_]{1,15}", p["username"])
    assert p["handle"] == "@" + p["username"]
    assert p["profileUrl"] == f"https://x.com/{p['username']}"
    assert p["verified"] in {"none", "verified", "business", "government"}
    assert p["profileType"] in {"personal", "business"}
    assert re.fullmatch(r"[a-z][0-9a-z]{23}", p["externalId"])
    assert p["image"].startswith("https://") and p["displayName"]
    assert isinstance(p["isProtected"], bool)
    for count in ("followerCount", "followingCount", "postCount"):
        assert isinstance(p[count], int) and p[count] >= 0
    for instant in ("platformCreatedAt", "firstSeenAt", "lastUpdatedAt"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p[instant])
