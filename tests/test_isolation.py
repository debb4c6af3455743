"""Tenants are walls: one API key's lists, jobs, leads and clock are invisible to another."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sandbox.core import jobs, lists
from sandbox.core.clock import parse_iso
from sandbox.core.errors import NotFound
from tests.conftest import START, Sandbox
from tests.vendors.inboxkit import create_csv, job, stored_leads, usernames_csv


@pytest.fixture
def other(client: TestClient, key: str) -> Sandbox:
    return Sandbox(client, key + "_other")


def test_jobs_of_one_key_are_not_found_by_another(sb: Sandbox, other: Sandbox) -> None:
    mine = create_csv(sb, usernames_csv(50, prefix="iso"))
    theirs = other.call("inboxapp", "GET", "/lists/demolist1/import-jobs")
    assert theirs.status_code == 200 and theirs.json() == {"data": [], "nextCursor": None}
    r = other.call("inboxapp", "POST", f"/lists/demolist1/import-jobs/{mine['id']}/cancel",
                   json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "IMPORT_JOB_NOT_FOUND"
    r = other.call("inboxapp", "GET", "/lists/demolist1/import-jobs",
                   params={"cursor": mine["id"]})
    assert r.status_code == 400 and r.json()["error"]["field"] == "cursor"
    assert job(sb, mine["id"])["status"] == "queued"  # the failed cancel changed nothing


def test_lists_of_one_key_are_not_found_by_another(app: Any, sb: Sandbox, other: Sandbox
                                                   ) -> None:
    with app.backend.workspace(sb.key) as (conn, ws):
        lists.create(conn, ws.id, "inboxapp", list_id="privatelist", kind="list",
                     name="Private", at=ws.now)
    assert sb.call("inboxapp", "GET", "/lists/privatelist/import-jobs").status_code == 200
    for method, path, body in (
            ("GET", "/lists/privatelist/import-jobs", None),
            ("POST", "/lists/privatelist/import-jobs",
             {"data": {"type": "csv", "content": "username\na\n"}}),
            ("POST", "/lists/privatelist/leads", {"platformIds": ["1234567"]})):
        r = other.call("inboxapp", method, path, json=body)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "LIST_NOT_FOUND"


def test_leads_and_counts_stay_in_their_workspace(app: Any, sb: Sandbox, other: Sandbox
                                                  ) -> None:
    ids = ["44196397", "50393960"]
    first = sb.call("inboxapp", "POST", "/lists/demolist2/leads", json={"platformIds": ids})
    assert first.json()["added"] == ids
    # The same ids are new to the other workspace: nothing of the first is visible there.
    second = other.call("inboxapp", "POST", "/lists/demolist2/leads", json={"platformIds": ids})
    assert second.json() == {"added": ids, "skipped": [], "failed": []}
    mine = stored_leads(app, sb.key, "demolist2")
    theirs = stored_leads(app, other.key, "demolist2")
    assert [p["platformId"] for p in mine] == [p["platformId"] for p in theirs] == ids
    # Each workspace's prospects carry its own external ids.
    assert {p["externalId"] for p in mine}.isdisjoint(p["externalId"] for p in theirs)


def test_each_key_has_its_own_clock(app: Any, sb: Sandbox, other: Sandbox) -> None:
    mine = create_csv(sb, usernames_csv(10, prefix="c"))
    theirs = create_csv(other, usernames_csv(10, prefix="c"))
    sb.advance(100)
    assert job(sb, mine["id"])["status"] == "completed"
    assert job(other, theirs["id"])["status"] == "queued"
    with app.backend.workspace(other.key) as (_conn, ws):
        assert ws.now == parse_iso(START)


def test_core_lookups_are_scoped_to_the_workspace(app: Any, sb: Sandbox, other: Sandbox
                                                  ) -> None:
    mine = create_csv(sb, usernames_csv(3))
    other.call("inboxapp", "GET", "/lists/demolist1/import-jobs")  # create the workspace
    with app.backend.workspace(other.key) as (conn, ws):
        with pytest.raises(NotFound):
            jobs.find(conn, ws.id, "inboxapp", mine["id"])
        with pytest.raises(NotFound):
            jobs.find_any_vendor(conn, ws.id, mine["id"])
