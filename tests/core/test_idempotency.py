"""Idempotency keys: replay within the TTL, conflict on a different body, expiry, scoping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from sandbox.core import idempotency
from sandbox.core import store as t
from sandbox.core.errors import Conflict
from sandbox.core.idempotency import Answer, body_hash, once
from sandbox.core.store import Store

T0 = 1_736_935_200.0


@pytest.fixture
def conn() -> Iterator[Connection]:
    store = Store("sqlite://")
    with store.begin() as c:
        yield c
    store.dispose()


class Counter:
    """A `run` callback that answers a new body each time, so a replay is recognisable."""

    def __init__(self, status: int = 200) -> None:
        self.calls = 0
        self.status = status

    def __call__(self) -> Answer:
        self.calls += 1
        return Answer(self.status, {"data": {"job_id": f"imp_{self.calls}"}})


def call(conn: Connection, run: Counter, *, key: str | None = "k1", body: Any = None,
         now: float = T0, workspace: str = "ws1", vendor: str = "leadlex") -> Answer:
    return once(conn, workspace=workspace, vendor=vendor, key=key,
                body={"rows": [{"email": "a@b.co"}]} if body is None else body, now=now, run=run)


def test_body_hash_ignores_key_order_and_whitespace() -> None:
    assert body_hash({"a": 1, "b": [1, {"y": 2, "x": 1}]}) == body_hash(
        {"b": [1, {"x": 1, "y": 2}], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
    assert body_hash({"name": "Müller"}) == body_hash({"name": "M\u00fcller"})
    assert len(body_hash(None)) == 64


def test_same_key_same_body_replays_the_first_answer(conn: Connection) -> None:
    run = Counter()
    first = call(conn, run)
    again = call(conn, run, now=T0 + 3600)
    assert run.calls == 1
    assert again == first == Answer(200, {"data": {"job_id": "imp_1"}})


def test_same_key_different_body_is_a_conflict_naming_the_header(conn: Connection) -> None:
    run = Counter()
    call(conn, run)
    with pytest.raises(Conflict) as caught:
        once(conn, workspace="ws1", vendor="leadlex", key="k1", body={"rows": []}, now=T0 + 1,
             run=run, vendor_code="idempotency_key_reused")
    assert caught.value.field == "Idempotency-Key"
    assert caught.value.extra == {"vendor_code": "idempotency_key_reused"}
    assert "different request body" in caught.value.message
    assert run.calls == 1


def test_key_is_free_again_after_the_ttl(conn: Connection) -> None:
    run = Counter()
    call(conn, run)
    # One second before expiry the key still replays; at 24 h it is free, whatever the body.
    assert call(conn, run, now=T0 + 86_399).body == {"data": {"job_id": "imp_1"}}
    fresh = call(conn, run, body={"csv": "email\nx@y.co\n"}, now=T0 + 86_400)
    assert fresh.body == {"data": {"job_id": "imp_2"}}
    # The new answer is the one replayed from now on, with its own 24 hours.
    assert call(conn, run, body={"csv": "email\nx@y.co\n"}, now=T0 + 86_400 + 10) == fresh
    assert conn.execute(select(func.count()).select_from(t.idempotency)).scalar_one() == 1


def test_custom_ttl(conn: Connection) -> None:
    run = Counter()
    once(conn, workspace="ws1", vendor="v", key="k", body={}, now=T0, run=run, ttl=60)
    once(conn, workspace="ws1", vendor="v", key="k", body={}, now=T0 + 60, run=run, ttl=60)
    assert run.calls == 2


def test_keys_are_scoped_per_workspace_and_vendor(conn: Connection) -> None:
    run = Counter()
    a = call(conn, run)
    b = call(conn, run, workspace="ws2", body={"other": True})
    c = call(conn, run, vendor="smartlead", body={"other": True})
    assert [a.body, b.body, c.body] == [{"data": {"job_id": f"imp_{i}"}} for i in (1, 2, 3)]


def test_no_key_always_runs(conn: Connection) -> None:
    run = Counter()
    call(conn, run, key=None)
    call(conn, run, key="")
    assert run.calls == 2
    assert conn.execute(select(func.count()).select_from(t.idempotency)).scalar_one() == 0


def test_failed_answers_are_not_remembered(conn: Connection) -> None:
    failing = Counter(status=500)
    call(conn, failing)
    ok = Counter()
    assert call(conn, ok, body={"different": 1}).status == 200
    assert ok.calls == 1


def test_lookup_and_remember_directly(conn: Connection) -> None:
    digest = body_hash({"x": 1})
    assert idempotency.lookup(conn, workspace="w", vendor="v", key="k", digest=digest,
                              now=T0) is None
    idempotency.remember(conn, workspace="w", vendor="v", key="k", digest=digest, now=T0,
                         answer=Answer(201, {"ok": True}))
    assert idempotency.lookup(conn, workspace="w", vendor="v", key="k", digest=digest,
                              now=T0 + 5) == Answer(201, {"ok": True})
    with pytest.raises(Conflict):
        idempotency.lookup(conn, workspace="w", vendor="v", key="k", digest="0" * 64,
                           now=T0 + 5, field="X-Idempotency-Key")



def test_a_key_stored_meanwhile_is_a_retryable_conflict(conn: Connection,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    digest = body_hash({"x": 1})
    answer = Answer(200, {"ok": True})
    idempotency.remember(conn, workspace="w", vendor="v", key="k", digest=digest, now=T0,
                         answer=answer)
    # A second process that looked the key up before the first one committed: its insert
    # meets the row (here: the delete that would clear an expired entry finds nothing).
    monkeypatch.setattr(idempotency, "_forget", lambda *args: None)
    with pytest.raises(Conflict) as caught:
        idempotency.remember(conn, workspace="w", vendor="v", key="k", digest=digest,
                             now=T0 + 1, answer=answer)
    assert caught.value.field == "Idempotency-Key"
    assert "retry" in caught.value.message
