"""Id counters on an in-memory store come from blocks taken from the database at once
(Backend.next_number), and hand out exactly the numbers the database alone gives: across
block boundaries, failed transactions, resets, deletes and evictions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.app import create_app
from sandbox.core import backend as backend_module
from sandbox.core import store
from sandbox.core.backend import Backend
from sandbox.settings import Settings
from tests.conftest import START

COUNTER = "inboxapp-job"


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 3, so that a handful of ids crosses several boundaries."""
    monkeypatch.setattr(backend_module, "ID_BLOCK", 3)


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[tuple[Backend, Backend]]:
    """An in-memory store (blocks) and a file store (a statement per id), same seed."""
    memory = Backend(Settings(clock_mode="frozen", background_ticker=False))
    on_file = Backend(Settings(db_url=f"sqlite:///{tmp_path / 'ids.db'}", clock_mode="frozen",
                               background_ticker=False))
    yield memory, on_file
    memory.store.dispose()
    on_file.store.dispose()


class Failed(Exception):
    pass


def draws(backend: Backend, key: str, plan: str) -> list[str]:
    """Ids drawn by one transaction per letter of `plan`: `o` commits one id, `f` draws one
    and fails, `F` draws two and fails, `r` resets the workspace, `d` deletes it."""
    out: list[str] = []
    for step in plan:
        if step == "r":
            backend.reset(key)
            continue
        if step == "d":
            backend.delete(key)
            continue
        try:
            with backend.workspace(key) as (conn, ws):
                out.append(backend.new_cuid(conn, ws, COUNTER))
                if step == "F":
                    out.append(backend.new_cuid(conn, ws, COUNTER))
                if step in "fF":
                    raise Failed
        except Failed:
            out.append("-")
    return out


@pytest.mark.parametrize("plan", [
    "oooooooooo",          # three blocks and a bit
    "oofoooFooof",         # failures inside a block, at its end, across a boundary
    "ooofFoo",             # a failure that took the next block
    "ooooroooo",           # a reset starts the counter again
    "oooodooo",            # so does a delete (the next open creates the workspace)
    "ooFroFoo",
])
def test_the_numbers_are_those_the_database_alone_gives(
        backends: tuple[Backend, Backend], plan: str) -> None:
    memory, on_file = backends
    assert draws(memory, "wbk_ids", plan) == draws(on_file, "wbk_ids", plan)


def test_one_statement_per_block(backends: tuple[Backend, Backend],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    memory, _ = backends
    calls: list[int] = []
    real = store.next_sequence

    def counting(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(backend_module, "next_sequence", counting)
    draws(memory, "wbk_ids", "o" * 7)
    assert len(calls) == 3  # blocks of 3: ids 1-3, 4-6, 7-9


def test_outside_a_workspace_transaction_the_database_is_used(
        backends: tuple[Backend, Backend]) -> None:
    memory, _ = backends
    with memory.workspace("wbk_ids") as (_conn, ws):
        first = memory.next_number(_conn, ws, COUNTER)
    with memory.store.begin() as conn:
        # No transaction of `workspace` to put a block back into: one number, from the store.
        assert memory.next_number(conn, ws, COUNTER) == first + 3
        assert store.next_sequence(conn, "wbk_ids", COUNTER) == first + 4


def test_an_evicted_workspace_counts_from_its_start_again() -> None:
    backend = Backend(Settings(clock_mode="frozen", background_ticker=False,
                               max_workspaces=2))
    try:
        first = draws(backend, "wbk_one", "oo")
        draws(backend, "wbk_two", "o")
        draws(backend, "wbk_three", "o")  # evicts wbk_one, the least recently used
        assert draws(backend, "wbk_one", "oo") == first
    finally:
        backend.store.dispose()


def test_over_http_the_job_ids_match_a_file_store(tmp_path: Path) -> None:
    bodies = [{"data": {"type": "csv", "content": f"username\nu{i}\n"}} for i in range(5)]
    bodies.insert(2, {"data": {"type": "csv", "content": "username\n"}})  # 422: no rows

    def job_ids(db_url: str) -> list[Any]:
        app = create_app(Settings(db_url=db_url, clock_start=START, clock_mode="frozen",
                                  background_ticker=False, rate_limits="off"))
        with app.test_client() as client:
            answers = [client.post("/inboxapp/lists/demolist1/import-jobs", json=body,
                                   headers={"Authorization": "Bearer wbk_http_ids"})
                       for body in bodies]
        return [(a.status_code, a.json().get("id")) for a in answers]

    in_memory = job_ids("sqlite://")
    assert [status for status, _ in in_memory] == [200, 200, 422, 200, 200, 200]
    assert in_memory == job_ids(f"sqlite:///{tmp_path / 'http.db'}")
