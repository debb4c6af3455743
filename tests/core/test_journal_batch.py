"""A batch of journal entries (journal.record_requests, what journal.Pending writes) leaves
the journal exactly as writing its entries one by one does: the same rows, keys and trims."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Connection, select

from sandbox.core import journal
from sandbox.core import store as t
from sandbox.core.store import Store

WORKSPACES = ("w1", "w2", "w3")
ERRORS: list[Any] = [None, [{"field": "data.type", "rule": "enum", "message": "ünïcode"}]]


def _entries(rng: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    return [dict(workspace=rng.choice(WORKSPACES), at=float(start + i), vendor="inboxapp",
                 operation_id="createImportJob", method="POST", path=f"/p/{start + i}",
                 query="", status=rng.choice((200, 400)), body=rng.choice((None, "{}")),
                 errors=rng.choice(ERRORS), **({"detail": {"n": i}} if i % 7 == 0 else {}))
            for i in range(n)]


def _journal(conn: Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(t.journal).order_by(t.journal.c.pk))]


@pytest.fixture
def small_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trims every few entries, so that batches cross many trim points."""
    monkeypatch.setattr(journal, "MAX_ENTRIES", 6)
    monkeypatch.setattr(journal, "TRIM_EVERY", 4)


def _write(store: Store, batch: list[dict[str, Any]], *, batched: bool) -> None:
    with store.begin() as conn:
        if batched:
            journal.record_requests(conn, batch)
        else:
            for entry in batch:
                journal.record_request(conn, **entry)


@pytest.mark.parametrize("seed", range(5))
def test_a_batch_writes_what_its_entries_write_one_by_one(small_journal: None,
                                                           seed: int) -> None:
    rng = random.Random(seed)
    batches = [_entries(rng, rng.choice((1, 2, 3, 9, 17)), start=100 * b) for b in range(12)]
    one_by_one, batched = Store("sqlite://"), Store("sqlite://")
    for batch in batches:
        _write(one_by_one, batch, batched=False)
        _write(batched, batch, batched=True)
    with one_by_one.begin() as conn:
        expected = _journal(conn)
    with batched.begin() as conn:
        assert _journal(conn) == expected
    assert len(expected) < sum(len(b) for b in batches)  # trims happened


def test_a_batch_after_deleted_entries_still_trims_at_its_own_keys(small_journal: None) -> None:
    """Rows removed from the end (a reset deletes a workspace's journal) do not shift the keys
    the batch reads back: SQLite's next rowid follows the largest one left."""
    rng = random.Random(7)
    first, second = _entries(rng, 9, start=0), _entries(rng, 9, start=100)
    journals = []
    for batched in (False, True):
        store = Store("sqlite://")
        _write(store, first, batched=batched)
        with store.begin() as conn:
            journal.clear(conn, first[-1]["workspace"])
        _write(store, second, batched=batched)
        with store.begin() as conn:
            journals.append(_journal(conn))
    assert journals[1] == journals[0]


def test_workspaces_taking_turns_are_each_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trims fall on keys that are multiples of TRIM_EVERY, each for its entry's workspace.
    Two keys taking turns get keys of one parity each: with an even TRIM_EVERY, one of them
    was never trimmed (1,500 entries kept here, without bound in a long run)."""
    monkeypatch.setattr(journal, "MAX_ENTRIES", 6)
    store = Store("sqlite://")
    turns = [dict(workspace=WORKSPACES[i % 2], at=float(i), vendor="inboxapp",
                  operation_id="op", method="GET", path="/p", query="", status=200, body=None,
                  errors=None) for i in range(6 * journal.TRIM_EVERY)]
    _write(store, turns, batched=True)
    with store.begin() as conn:
        rows = _journal(conn)
    kept = {w: sum(1 for row in rows if row[1] == w) for w in WORKSPACES[:2]}
    assert max(kept.values()) <= 6 + journal.TRIM_EVERY, kept
