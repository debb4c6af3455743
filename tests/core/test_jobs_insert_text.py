"""A job's INSERT on SQLite takes its JSON columns as text (jobs._INSERT_JOB_TEXT): what it
stores must be byte for byte what SQLAlchemy's JSON type stores through jobs._INSERT_JOB."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import StaticPool

from sandbox.core import jobs
from sandbox.core import store as t
from sandbox.core.imports import ImportPolicy
from sandbox.core.jobs import Pacing

POLICIES = [
    ImportPolicy(key_fields=("email",), email_field="email"),
    ImportPolicy(key_fields=("platformId",), on_existing="update", email_field=None,
                 keep=("firstSeenAt",), tags=("a", "é"), alt_key_field="phone"),
]
PLANS: list[dict[str, Any] | None] = [
    None,
    {"resolve": "inboxapp.profile", "total_known": True, "csv_header": ["username", "Ünïcode"],
     "csv_mapping": {"username": "username", "Ünïcode": "custom_x"}},
]
EXTRAS: list[dict[str, Any] | None] = [None, {"fileName": None}, {"fileName": "a \"b\".csv"},
                                       {"source": "fail_me", "n": 1.5}]


def _engine(**kwargs: Any) -> Any:
    engine = create_engine("sqlite://", poolclass=StaticPool, **kwargs)
    t.metadata.create_all(engine)
    return engine


def _add_all(conn: Any, *, through: Any = None) -> list[tuple[Any, ...]]:
    """Every combination added, then the stored JSON columns as the raw text SQLite holds."""
    n = 0
    for policy in POLICIES:
        for plan in PLANS:
            for extra in EXTRAS:
                for pacing in (None, Pacing(2, 1, 20)):
                    n += 1
                    jobs.add(conn, workspace="w", vendor="v", job_id=f"j{n}", list_pk=1,
                             kind="csv", now=100.25, source_format="csv", content="a\n1\n",
                             offset=0, total=1, policy=policy, pacing=pacing, plan=plan,
                             extra=extra)
    rows = conn.execute(text("SELECT plan, counts, row_errors, extra FROM jobs ORDER BY pk"))
    return [tuple(r) for r in rows]


def test_the_text_insert_stores_what_the_json_type_stores() -> None:
    with _engine().begin() as conn:
        fast = _add_all(conn)
    # json.dumps configured as the serializer is what SQLAlchemy uses when none is, and it
    # sends the same jobs through the JSON-typed INSERT (the next tests hold both choices).
    with _engine(json_serializer=json.dumps).begin() as conn:
        reference = _add_all(conn)
    assert len(fast) == 32
    assert fast == reference


def test_sqlite_takes_the_text_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("the JSON-typed INSERT ran on SQLite")

    monkeypatch.setattr(jobs._INSERT_JOB, "insert", refuse)
    with _engine().begin() as conn:
        assert len(_add_all(conn)) == 32


def test_a_configured_serializer_keeps_the_json_type(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("the text INSERT ran with a configured serializer")

    monkeypatch.setattr(jobs._INSERT_JOB_TEXT, "insert", refuse)
    engine = _engine(json_serializer=lambda v: json.dumps(v, sort_keys=True))
    with engine.begin() as conn:
        stored = _add_all(conn)
        job = conn.execute(select(t.jobs).where(t.jobs.c.id == "j1")).mappings().one()
    assert stored[0][0] == json.dumps(job["plan"], sort_keys=True)
