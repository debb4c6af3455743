"""Journal entries written in batches on an in-memory store (journal.Pending): every reader of
the journal or of a workspace's last use sees what was answered before it, in order; nothing
waits inside another transaction; any other store is written at once."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.app import create_app
from sandbox.core import journal
from sandbox.core import store as t
from sandbox.core.store import Store
from sandbox.settings import Settings
from tests.conftest import START, Sandbox
from tests.controlkit import CSV_JOB, csv_body, ctl
from tests.core.test_webhooks import advance, import_http, receiver, subscribe_http
from tests.webhook_receiver import Receiver

__all__ = ["receiver"]  # the fixture, used by name


def _stored(store: Store, workspace: str) -> int:
    with store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(t.journal).where(
            t.journal.c.workspace == workspace)).scalar_one())


def _entry(workspace: str, path: str) -> dict[str, Any]:
    return dict(workspace=workspace, at=0.0, vendor="inboxapp", operation_id="op",
                method="GET", path=path, query="", status=200, body=None, errors=None)


@pytest.fixture(autouse=True)
def no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the readers write what waits (the timer test sets its own delay)."""
    monkeypatch.setattr(journal.Pending, "FLUSH_AFTER", 3600)


@pytest.fixture
def backend(app: Any, client: Any) -> Any:
    return app.backend


def test_entries_wait_and_every_journal_read_sees_them_in_order(sb: Sandbox,
                                                                backend: Any) -> None:
    for i in range(3):
        assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body(f"u{i}")).status_code == 200
    waiting = _stored(backend.store, sb.key)
    assert len(backend.journal) >= 3  # not written by the requests themselves
    # The workspace view counts them.
    assert ctl(sb, "GET", "").json()["journalEntries"] == waiting + 3
    assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("u3")).status_code == 200
    waiting += 1
    listed = ctl(sb, "GET", "/requests").json()["data"]
    assert [e["operationId"] for e in listed[-3:]] == ["createImportJob"] * 3
    assert len(listed) == waiting + 3
    seqs = [e["seq"] for e in listed]
    assert seqs == sorted(seqs)


def test_a_reset_drops_entries_that_were_waiting(sb: Sandbox) -> None:
    assert sb.call("inboxapp", "POST", CSV_JOB, json=csv_body("ann")).status_code == 200
    assert ctl(sb, "POST", "/reset").status_code == 200
    # Written before the reset deleted the journal, not resurrected after it.
    assert ctl(sb, "GET", "/requests").json()["data"] == []


def test_a_webhook_attempt_comes_after_the_requests_answered_before_it(
        sb: Sandbox, backend: Any, receiver: Receiver) -> None:
    subscribe_http(sb, receiver.url("/leadlex"))
    job_id = import_http(sb)
    assert job_id and sb.call("leadlex", "GET", "/v1/contacts").status_code == 200
    assert len(backend.journal) > 0  # the GET's entry waits
    assert advance(sb, backend, 10) == 1  # the import finishes; its webhook is attempted
    kinds = [(e["kind"], e["method"]) for e in ctl(sb, "GET", "/requests").json()["data"]]
    assert kinds[-2:] == [("request", "GET"), ("webhook", "POST")]


def test_the_timer_writes_them_without_a_reader() -> None:
    store = Store()
    pending = journal.Pending(store)

    async def scenario() -> tuple[int, int]:
        pending.FLUSH_AFTER = 0  # the next turn of the loop: no wall-clock wait in the test
        pending.add(_entry("ws1", "/a"), touch=False)
        pending.add(_entry("ws1", "/b"), touch=False)
        before = _stored(store, "ws1")
        for _ in range(3):
            await asyncio.sleep(0)
        return before, _stored(store, "ws1")

    assert asyncio.run(scenario()) == (0, 2)
    with store.begin() as conn:
        assert journal.entries(conn, "ws1")[0]["path"] == "/a"


def test_a_full_batch_is_written_at_once() -> None:
    store = Store()
    pending = journal.Pending(store)

    async def scenario() -> int:
        for i in range(journal.Pending.FLUSH_AT):
            pending.add(_entry("ws1", f"/{i}"), touch=False)
        return _stored(store, "ws1")

    assert asyncio.run(scenario()) == journal.Pending.FLUSH_AT
    assert len(pending) == 0


def test_nothing_is_written_inside_another_transaction() -> None:
    store = Store()
    pending = journal.Pending(store)

    async def scenario() -> tuple[int, int]:
        pending.add(_entry("ws1", "/a"), touch=False)
        with store.begin() as conn:
            pending.flush()
            inside = int(conn.execute(select(func.count()).select_from(t.journal)).scalar_one())
            conn.rollback()
        pending.flush()
        return inside, _stored(store, "ws1")

    # The rollback of the other transaction did not take the entry with it.
    assert asyncio.run(scenario()) == (0, 1)


def test_without_an_event_loop_an_entry_is_written_at_once() -> None:
    store = Store()
    journal.Pending(store).add(_entry("ws1", "/a"), touch=True)
    assert _stored(store, "ws1") == 1


def test_a_file_store_is_written_at_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'j.db'}")
    pending = journal.Pending(store)

    async def scenario() -> int:
        pending.add(_entry("ws1", "/a"), touch=False)
        return _stored(store, "ws1")

    try:
        assert asyncio.run(scenario()) == 1
    finally:
        store.dispose()


@pytest.fixture
def two_workspace_sandbox() -> Any:
    app = create_app(Settings(clock_start=START, clock_mode="frozen", background_ticker=False,
                              rate_limits="off", max_workspaces=2))
    with app.test_client() as client:
        yield client


def test_eviction_sees_the_last_use_recorded_with_waiting_entries(
        two_workspace_sandbox: Any) -> None:
    client = two_workspace_sandbox

    def use(key: str) -> None:
        r = client.get(CSV_JOB.join(["/inboxapp", ""]),
                       headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text

    use("wbk_evict_a")
    use("wbk_evict_b")
    use("wbk_evict_a")
    # b is known now: admitted without a transaction, its last use waits with its entry.
    use("wbk_evict_b")
    use("wbk_evict_c")  # a third workspace: the least recently used (a) makes room
    live = {w["id"] for w in client.get("/__sandbox/workspaces").json()["data"]}
    assert live == {"wbk_evict_b", "wbk_evict_c"}


def test_the_timer_does_not_keep_the_request_context_alive() -> None:
    """A request's context holds Connexion's scope with its parsed body (20 MB of JSON in
    scenario D): the timer must not keep it for as long as it waits."""
    store = Store()
    pending = journal.Pending(store)
    request_body: contextvars.ContextVar[object] = contextvars.ContextVar("request_body")

    class Body:
        pass

    async def scenario() -> tuple[bool, bool]:
        body = Body()
        alive = weakref.ref(body)
        request_context = contextvars.copy_context()

        def request(parsed: Body) -> None:
            request_body.set(parsed)
            pending.add(_entry("ws1", "/a"), touch=False)

        request_context.run(request, body)  # the request's work, in a context of its own
        del request_context, body
        gc.collect()
        return alive() is None, pending._timer is not None

    assert asyncio.run(scenario()) == (True, True)
