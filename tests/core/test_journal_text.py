"""A journal entry's INSERT on SQLite takes its JSON columns as text (journal._INSERT_TEXT):
what it stores must be byte for byte what SQLAlchemy's JSON type stores through _INSERT."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from sandbox.core import journal
from sandbox.core import store as t

ERRORS: list[Any] = [None, [], [{"field": "data.type", "rule": "enum", "message": "ünïcode ☃"}],
                     [{"status": 422, "nested": {"a": [1, 2.5, None, True]}}]]
DETAILS: list[Any] = [None, {}, {"url": "http://x/é", "attempt": 1}]


def _engine(**kwargs: Any) -> Any:
    engine = create_engine("sqlite://", poolclass=StaticPool, **kwargs)
    t.metadata.create_all(engine)
    return engine


def _record_all(conn: Any) -> list[tuple[Any, ...]]:
    for errors in ERRORS:
        for detail in DETAILS:
            journal.record_request(conn, workspace="w", at=1.5, vendor="v", operation_id="op",
                                   method="POST", path="/p", query="", status=200,
                                   body=None, errors=errors, detail=detail)
    return [tuple(r) for r in conn.execute(text(
        "SELECT errors, detail, typeof(errors), typeof(detail) FROM journal ORDER BY pk"))]


def test_the_text_insert_stores_what_the_json_type_stores() -> None:
    with _engine().begin() as conn:
        fast = _record_all(conn)
    # json.dumps configured is what SQLAlchemy uses when none is, through the JSON type.
    with _engine(json_serializer=json.dumps).begin() as conn:
        reference = _record_all(conn)
    assert len(fast) == 12
    assert fast == reference
    assert fast[0] == ("null", "null", "text", "text")  # None is JSON null, not SQL NULL


def test_sqlite_takes_the_text_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("the JSON-typed INSERT ran on SQLite")

    monkeypatch.setattr(journal._INSERT, "insert", refuse)
    with _engine().begin() as conn:
        assert len(_record_all(conn)) == 12
