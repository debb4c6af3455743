"""The default store: an in-memory database of its own per Store, held by SQLite's memdb VFS
(not ":memory:", whose commits slow down as it grows; bench/OPTIMISATIONS.md section 18c)."""

from __future__ import annotations

from sqlalchemy import text

from sandbox.core.store import Store


def test_the_in_memory_store_is_a_private_memdb_database() -> None:
    first, second = Store(), Store()
    try:
        assert first.in_memory and second.in_memory
        with first.begin() as conn:
            assert conn.execute(text("PRAGMA database_list")).all()[0][1:] == ("main",
                                                                               "sandbox")
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "memory"
            conn.execute(text("CREATE TABLE only_here (a)"))
            conn.execute(text("INSERT INTO only_here VALUES (1)"))
        with second.begin() as conn:  # another Store: another database
            assert conn.execute(text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'only_here'")).scalar() == 0
        with first.begin() as conn:  # every checkout of one Store: the same database
            assert conn.execute(text("SELECT a FROM only_here")).scalar() == 1
    finally:
        first.dispose()
        second.dispose()


def test_a_failed_transaction_rolls_back_on_the_memdb_database() -> None:
    store = Store()
    try:
        with store.begin() as conn:
            conn.execute(text("CREATE TABLE kept (a)"))
        try:
            with store.begin() as conn:
                conn.execute(text("INSERT INTO kept VALUES (1)"))
                raise RuntimeError("the caller fails")
        except RuntimeError:
            pass
        with store.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM kept")).scalar() == 0
    finally:
        store.dispose()
