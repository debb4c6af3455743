"""Helpers of the control-API tests: one app per module, InboxApp jobs, control calls."""

from __future__ import annotations

from typing import Any

from sandbox.app import create_app
from sandbox.settings import Settings
from tests.conftest import START, Sandbox

CSV_JOB = "/lists/demolist1/import-jobs"


def make_app(**changes: Any) -> Any:
    """The conftest app's settings. create_app takes seconds: modules share one, and every
    test has a workspace key of its own."""
    return create_app(Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                               background_ticker=False).with_(**changes))


def csv_body(*usernames: str) -> dict[str, Any]:
    return {"data": {"type": "csv", "fileName": "leads.csv",
                     "content": "username\n" + "".join(f"{u}\n" for u in usernames),
                     "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"}]}}


def create_job(sb: Sandbox, *usernames: str) -> dict[str, Any]:
    r = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body(*(usernames or ("alice", "bob"))))
    assert r.status_code == 200, r.text
    return dict(r.json())


def ctl(sb: Sandbox, method: str, path: str = "", **kwargs: Any) -> Any:
    """A call of the control API on the test's workspace."""
    return sb.client.request(method, f"/__sandbox/workspaces/{sb.key}{path}", **kwargs)


def error_of(r: Any, status: int) -> dict[str, Any]:
    """The sandbox's error envelope of a response that must have `status`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["status"] == status and err["code"] and err["message"]
    return dict(err)
