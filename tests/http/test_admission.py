"""A vendor request on an in-memory store is admitted from what the process remembers of its
workspace (no transaction of its own), and every change to the workspace or its scenarios
is still seen by the very next request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from sandbox.core import journal, workspaces
from sandbox.core import store as t
from sandbox.core.backend import Backend
from sandbox.core.store import Store
from sandbox.settings import Settings
from tests.conftest import Sandbox
from tests.controlkit import CSV_JOB, csv_body, ctl


@pytest.fixture
def sb(sb: Sandbox) -> Sandbox:
    """The test's workspace with rate limits off: with nothing to count, a request of a known
    workspace needs no admission transaction (rate limits count in one)."""
    assert ctl(sb, "PUT", "/settings", json={"rateLimits": "off"}).status_code == 200
    return sb


def _count_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened: list[int] = []
    real = Store.begin

    def counting(self: Store) -> Any:
        opened.append(1)
        return real(self)

    monkeypatch.setattr(Store, "begin", counting)
    return opened


def test_a_known_workspace_is_admitted_without_a_transaction(
        sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # The journal's timed flush would add a transaction whenever its timer, armed by the
    # first request, fires among the counted ones (a slow CI machine): not what is counted.
    monkeypatch.setattr(journal.Pending, "FLUSH_AFTER", 3600)
    assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")).status_code == 200
    opened = _count_transactions(monkeypatch)
    answers = [sb.call("inboxapp", "POST", CSV_JOB, json=csv_body(f"u{i}")) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # The handler's transaction per request; admission adds none, and the journal entries
    # wait to be written together (journal.Pending).
    assert len(opened) == 3
    listed = ctl(sb, "GET", "/requests").json()["data"]
    assert [e["status"] for e in listed] == [200] * 4


def test_the_next_request_sees_a_clock_change(sb: Sandbox) -> None:
    first = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")).json()
    sb.advance(3600)
    second = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("bob")).json()
    assert first["createdAt"] == "2025-01-15T10:00:00.000Z"
    assert second["createdAt"] == "2025-01-15T11:00:00.000Z"


def test_the_next_request_sees_a_settings_change(sb: Sandbox) -> None:
    r = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice"))
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    assert ctl(sb, "PUT", "/settings", json={"rateLimits": "vendor"}).status_code == 200
    limited = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("bob"))
    assert limited.status_code == 200 and "X-RateLimit-Limit" in limited.headers


def test_the_next_request_sees_an_armed_scenario_and_its_end(sb: Sandbox) -> None:
    assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")).status_code == 200
    armed = ctl(sb, "POST", "/scenarios", json={"operationId": "createImportJob",
                                                 "status": 503, "times": 1})
    assert armed.status_code == 201, armed.text
    statuses = [sb.call("inboxapp", "POST", CSV_JOB, json=csv_body(f"u{i}")).status_code
                for i in range(2)]
    assert statuses == [503, 200]


def test_a_reset_workspace_is_seen_as_reset(sb: Sandbox) -> None:
    job = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")).json()
    assert ctl(sb, "POST", "/reset").status_code == 200
    listed = sb.call("inboxapp", "GET", CSV_JOB).json()["data"]
    assert job["id"] not in [j["id"] for j in listed]
    again = sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("bob"))
    assert again.status_code == 200 and again.json()["id"] == job["id"]  # ids start afresh


def test_requests_still_mark_the_workspace_as_used(sb: Sandbox) -> None:
    def last_seen() -> str:
        rows = sb.client.get("/__sandbox/workspaces").json()["data"]
        return str(next(r for r in rows if r["id"] == sb.key)["lastSeenAt"])

    assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("alice")).status_code == 200
    before = last_seen()
    with sb.client.app.backend.store.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("UPDATE workspaces SET last_seen_wall = 0 WHERE id = ?",
                             (sb.key,))
    assert last_seen() == "1970-01-01T00:00:00.000Z"
    assert sb.call("inboxapp", "GET", CSV_JOB).status_code == 200
    assert last_seen() >= before


def test_a_file_store_is_read_every_time(tmp_path: Any) -> None:
    # Another process may write a database file: nothing is remembered across requests.
    backend = Backend(Settings(db_url=f"sqlite:///{tmp_path / 's.db'}", clock_mode="frozen",
                               background_ticker=False))
    with backend.workspace("wbk_file") as (_conn, ws):
        pass
    backend.remember("wbk_file", ws)
    assert backend.known_workspace("wbk_file") is None
    memory = Backend(Settings(clock_mode="frozen", background_ticker=False))
    with memory.workspace("wbk_file") as (_conn, ws):
        pass
    memory.remember("wbk_file", ws)
    assert memory.known_workspace("wbk_file") is ws
    memory.store.dispose()
    backend.store.dispose()


def test_a_list_row_is_remembered_until_a_workspace_changes(tmp_path: Any) -> None:
    for backend, remembers in ((Backend(Settings(clock_mode="frozen")), True),
                               (Backend(Settings(db_url=f"sqlite:///{tmp_path / 'l.db'}",
                                                 clock_mode="frozen")), False)):
        def name(backend: Backend = backend) -> str:
            with backend.workspace("wbk_lists") as (conn, ws):
                row = backend.list_fixed(conn, ws, "inboxapp", "demolist1")
                assert "lead_count" not in row  # settling changes it: never remembered
                return str(row["name"])

        first = name()
        with backend.store.begin() as conn:
            conn.execute(update(t.lists).where(t.lists.c.id == "demolist1",
                                               t.lists.c.workspace == "wbk_lists")
                         .values(name="renamed behind its back"))
        assert name() == (first if remembers else "renamed behind its back")
        with backend.workspace("wbk_lists") as (conn, ws):
            workspaces.save_settings(conn, ws)  # any workspace change: forget
        assert name() == "renamed behind its back"
        backend.store.dispose()
