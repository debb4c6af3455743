"""A store that cannot grow (an in-memory store at SQLite's 1 GiB memdb ceiling, a full disk
under a file store) answers in the vendor's error shape, names the problem, and keeps what it
had: nothing of the refused request is stored, and requests that need no room still work."""

from __future__ import annotations

from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from sandbox.app import create_app
from sandbox.core import store as t
from sandbox.settings import Settings
from tests.conftest import START, Sandbox
from tests.vendors.inboxkit import LIST, usernames_csv


def test_a_full_store_answers_503_in_the_vendor_shape_and_loses_nothing() -> None:
    app = create_app(Settings(validate_responses=True, clock_start=START, clock_mode="frozen",
                              background_ticker=False))
    with TestClient(app) as client:
        sb = Sandbox(client, "wbk_store_full_1")
        first = sb.call("inboxapp", "POST", f"/lists/{LIST}/import-jobs", json={"data": {
            "type": "csv", "content": usernames_csv(3), "fileName": "a.csv",
            "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"}],
            "mergeStrategy": "overwrite"}})
        assert first.status_code == 200, first.text
        app.backend.journal.flush()
        store = app.backend.store
        with store.begin() as conn:
            pages = conn.execute(text("PRAGMA page_count")).scalar()
            jobs_before = conn.execute(select(func.count()).select_from(t.jobs)).scalar()
            # What a store at its ceiling does: no page can be added.
            conn.execute(text(f"PRAGMA max_page_count = {pages}"))
        try:
            big = usernames_csv(3000)  # ~40 KB of rows: pages the store does not have
            refused = sb.call("inboxapp", "POST", f"/lists/{LIST}/import-jobs", json={"data": {
                "type": "csv", "content": big, "fileName": "b.csv",
                "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"}],
                "mergeStrategy": "overwrite"}})
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["status"] == 503
            assert "store is full" in error["message"]
            assert "reset or delete workspaces" in error["message"]
            listed = sb.call("inboxapp", "GET", f"/lists/{LIST}/import-jobs")
            assert listed.status_code == 200
            assert [j["id"] for j in listed.json()["data"]] == [first.json()["id"]]
        finally:
            with store.begin() as conn:
                conn.execute(text("PRAGMA max_page_count = 1073741823"))
        with store.begin() as conn:
            assert conn.execute(select(func.count()).select_from(t.jobs)).scalar() == jobs_before
        again = sb.call("inboxapp", "POST", f"/lists/{LIST}/import-jobs", json={"data": {
            "type": "csv", "content": big, "fileName": "b.csv",
            "columnMapping": [{"csvHeader": "username", "targetColumnId": "username"}],
            "mergeStrategy": "overwrite"}})
        assert again.status_code == 200, again.text
