"""Workspace growth in `open` auth mode: a flood of distinct keys stays within --max-workspaces
(least recently used evicted), the active workspace of another client survives and stays
fast, memory plateaus; and one workspace's journal is capped too."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sandbox.core import journal
from tests.reliability.conftest import Server, auth
from tests.reliability.kit import new_key

CAP = 40
FLOOD = 400  # distinct keys, ten times the cap (tests/README.md: the 100,000-key run)
FLOODERS = 4
PATH = "/inboxapp/lists/demolist1/import-jobs"


def _live(srv: Server) -> int:
    with srv.client() as c:
        return len(c.get("/__sandbox/workspaces", params={"limit": 1000}).json()["data"])


def test_a_flood_of_distinct_keys_stays_within_the_cap(own_server: Callable[..., Server]
                                                        ) -> None:
    srv = own_server("--max-workspaces", str(CAP), memory=True).start()
    bystander = new_key("bystander")
    with srv.client() as c:
        job = c.post(PATH, **auth("inboxapp", bystander),
                     json={"data": {"type": "csv", "content": "username\nann\n"}}).json()
    done = threading.Event()
    bystander_latency: list[float] = []
    flood_latency: dict[int, float] = {}
    rss: dict[str, int] = {}

    def flood(part: int) -> None:
        with srv.client() as c:
            for i in range(part, FLOOD, FLOODERS):
                started = time.monotonic()
                r = c.get(PATH, **auth("inboxapp", f"wbk_flood_{i:06d}"))
                flood_latency[i] = time.monotonic() - started
                assert r.status_code == 200, r.text
                if i == FLOOD // 4:
                    rss["quarter"] = srv.rss_kib()

    def keep_using() -> None:
        with srv.client() as c:
            while not done.is_set():
                started = time.monotonic()
                r = c.get(PATH, **auth("inboxapp", bystander))
                bystander_latency.append(time.monotonic() - started)
                assert r.status_code == 200
                assert [j["id"] for j in r.json()["data"]] == [job["id"]]

    with ThreadPoolExecutor(FLOODERS + 1) as pool:
        user = pool.submit(keep_using)
        list(pool.map(flood, range(FLOODERS)))
        done.set()
        user.result()
    rss["end"] = srv.rss_kib()

    assert _live(srv) == CAP
    # Requests stay fast for everyone: the 95th percentile of the bystander's, and the
    # flood's own cost does not grow as keys pile up (eviction is O(1) per new key).
    assert statistics.quantiles(bystander_latency, n=20)[-1] < 0.5, bystander_latency
    early = statistics.median(flood_latency[i] for i in range(CAP, CAP + 100))
    late = statistics.median(flood_latency[i] for i in range(FLOOD - 100, FLOOD))
    assert late < 3 * early + 0.05, (early, late)
    # Memory plateaus at the cap: 300 more keys (16 KiB each uncapped) add almost nothing.
    assert rss["end"] - rss["quarter"] < 16 * 1024, rss
    # The bystander was never evicted: it still has its seeded lists and its job.
    with srv.client() as c:
        r = c.get(PATH, **auth("inboxapp", bystander))
        assert [j["id"] for j in r.json()["data"]] == [job["id"]]


def test_an_evicted_workspace_starts_afresh(own_server: Callable[..., Server]) -> None:
    srv = own_server("--max-workspaces", "3", memory=True).start()
    first = new_key("first")
    with srv.client() as c:
        c.post(PATH, **auth("inboxapp", first),
               json={"data": {"type": "csv", "content": "username\nann\n"}})
        for i in range(3):
            assert c.get(PATH, **auth("inboxapp", new_key(f"later{i}"))).status_code == 200
        assert _live(srv) == 3
        # The least recently used one went: the key still works, on a fresh seeded workspace.
        again = c.get(PATH, **auth("inboxapp", first))
        assert again.status_code == 200 and again.json()["data"] == []


@pytest.fixture
def small_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MAX_ENTRIES", 30)
    monkeypatch.setattr(journal, "TRIM_EVERY", 10)


def test_one_workspace_journal_is_capped(small_journal: None, client: Any, key: str) -> None:
    """The same cap (10,000 entries by default) for a single key hammered forever."""
    for _ in range(100):
        assert client.get(PATH, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    entries = client.get(f"/__sandbox/workspaces/{key}/requests",
                         params={"limit": 1000}).json()["data"]
    assert len(entries) <= 30 + 10
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] == len(seqs) - 1  # the newest kept
