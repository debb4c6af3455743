"""Driver-level statements (core/sql.py) answer exactly what SQLAlchemy's execution answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, insert, select, update

from sandbox.core import store as t
from sandbox.core.sql import Fast
from sandbox.core.store import Store


@pytest.fixture()
def conn() -> Iterator[Connection]:
    store = Store()
    with store.begin() as c:
        yield c


@pytest.fixture(params=["driver", "sqlalchemy"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlalchemy":
        # What every database other than SQLite gets.
        monkeypatch.setattr(Fast, "_compiled", lambda self, conn, values: None)
    return str(request.param)


WORKSPACE: dict[str, Any] = dict(
    id="ws1", created_at=1.5, anchor_wall=2.0, anchor_virtual=3.0, speed=1.0, frozen=True,
    settings={"pacing": {"inboxapp": {"queue_wait": 0}}, "flag": None}, last_seen_wall=2.0,
    next_due=None)

LOAD = Fast(select(t.workspaces).where(t.workspaces.c.id == bindparam("ws_id")))


def test_rows_convert_json_and_booleans_like_sqlalchemy(conn: Connection, path: str) -> None:
    conn.execute(insert(t.workspaces), WORKSPACE)
    expected = dict(conn.execute(select(t.workspaces)).mappings().one())
    row = LOAD.first(conn, {"ws_id": "ws1"})
    assert row == expected == WORKSPACE
    assert row is not None and row["frozen"] is True and type(row["speed"]) is float
    assert LOAD.first(conn, {"ws_id": "nope"}) is None
    assert LOAD.all(conn, {"ws_id": "nope"}) == []


def test_insert_stores_what_sqlalchemy_stores_and_returns_the_pk(conn: Connection,
                                                                path: str) -> None:
    fast = Fast(insert(t.journal))
    values = dict(workspace="ws1", at=1.0, kind="request", vendor="inboxapp",
                  operation_id="op", method="POST", path="/p", query="", status=200,
                  body="{}", errors=[{"field": "data.type"}], detail=None)
    first = fast.insert(conn, values)
    second = fast.insert(conn, {**values, "status": 400})
    assert second == first + 1
    rows = conn.execute(select(t.journal).order_by(t.journal.c.pk)).mappings().all()
    assert [r["pk"] for r in rows] == [first, second]
    assert rows[0]["errors"] == [{"field": "data.type"}] and rows[0]["detail"] is None
    assert rows[1]["status"] == 400


def test_literals_in_the_statement_and_repeated_parameters(conn: Connection, path: str) -> None:
    scenarios = Fast(insert(t.scenarios))
    for remaining in (0, 2, 1):
        scenarios.run(conn, dict(workspace="ws1", operation_id="op", status=503, delay=None,
                                 remaining=remaining, retry_after=None, message=None))
    armed = Fast(select(t.scenarios.c.remaining).where(
        t.scenarios.c.workspace == bindparam("ws"), t.scenarios.c.remaining > 0)
        .order_by(t.scenarios.c.pk).limit(1))
    assert armed.scalar(conn, {"ws": "ws1"}) == 2
    assert armed.scalar(conn, {"ws": "other"}) is None


def test_update_returning_and_rowcount(conn: Connection, path: str) -> None:
    conn.execute(insert(t.workspaces), WORKSPACE)
    touch = (update(t.workspaces).where(t.workspaces.c.id == bindparam("ws_id"))
             .values(last_seen_wall=bindparam("seen")))
    assert Fast(touch).run(conn, {"ws_id": "ws1", "seen": 9.0}) == 1
    assert Fast(touch).run(conn, {"ws_id": "nope", "seen": 9.0}) == 0
    row = Fast(touch.returning(t.workspaces.c.last_seen_wall, t.workspaces.c.settings)).first(
        conn, {"ws_id": "ws1", "seen": 10.0})
    assert row == {"last_seen_wall": 10.0, "settings": WORKSPACE["settings"]}


def test_many_inserts_every_row(conn: Connection, path: str) -> None:
    Fast(insert(t.sequences)).many(conn, [{"workspace": "ws1", "name": f"n{i}", "value": i}
                                          for i in range(5)])
    Fast(insert(t.sequences)).many(conn, [])
    values = conn.execute(select(t.sequences.c.value).order_by(t.sequences.c.value)).scalars()
    assert list(values) == [0, 1, 2, 3, 4]


def test_an_insert_missing_a_defaulted_column_is_refused_on_the_driver_path(
        conn: Connection) -> None:
    # The driver path does not apply Python-side column defaults: a forgotten column must
    # fail loudly in the tests, not store NULL.
    values = {k: v for k, v in WORKSPACE.items() if k != "speed"}
    with pytest.raises(ValueError, match="speed"):
        Fast(insert(t.workspaces)).run(conn, values)
