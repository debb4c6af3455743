"""A core-only harness for job tests: one backend, one workspace, lists and jobs driven at
chosen virtual instants (no HTTP, no wall clock)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from sandbox.core import jobs, lists, workspaces
from sandbox.core import store as t
from sandbox.core.backend import Backend
from sandbox.core.clock import parse_iso
from sandbox.core.imports import ImportPolicy, RowResult, count_csv_rows, encode_jsonl
from sandbox.core.jobs import Pacing
from sandbox.settings import Settings

START = "2025-01-15T10:00:00Z"
T0 = parse_iso(START)
VENDOR = "kit"
EMAIL = ImportPolicy(key_fields=("email",), email_field="email")
TEN_PER_SECOND = Pacing(0, 0, 10)


_SHARED: dict[int, Backend] = {}
_KEYS = itertools.count(1)


def file_backend(path: str, seed: int) -> Backend:
    """A backend on an SQLite file (a store other processes could share), for the paths an
    in-memory store takes differently."""
    return Backend(Settings(seed=seed, clock_start=START, clock_mode="frozen",
                            background_ticker=False, db_url=f"sqlite:///{path}"))


def _backend(seed: int) -> Backend:
    """One in-memory backend per seed for the whole session (building one parses every
    fixture); each Core gets a workspace of its own in it, as each API key does."""
    if seed not in _SHARED:
        _SHARED[seed] = Backend(Settings(seed=seed, clock_start=START, clock_mode="frozen",
                                         background_ticker=False))
    return _SHARED[seed]


class Core:
    def __init__(self, *, seed: int = 1234, backend: Backend | None = None,
                 key: str | None = None) -> None:
        """`key`: the workspace's (a new one by default); fake data derives from it, so two
        cores compared for equal fakes share one, each in a backend of its own."""
        self.backend = backend or _backend(seed)
        self.key = key = key or f"wbk_core_{next(_KEYS)}"
        self.seed = seed
        self.job_ids = 0
        with self.backend.store.begin() as conn:
            if workspaces.load(conn, key, seed) is None:
                workspaces.create(conn, key, seed=seed, clock_start=START, clock_mode="frozen",
                                  fixtures=[])

    def new_list(self, list_id: str = "l1") -> int:
        with self.backend.store.begin() as conn:
            return int(lists.create(conn, self.key, VENDOR, list_id=list_id, kind="list",
                                    name=list_id, at=T0)["pk"])

    def create(self, list_pk: int, rows: list[dict[str, Any]], *, at: float = T0,
               pacing: Pacing | None = TEN_PER_SECOND, policy: ImportPolicy = EMAIL,
               plan: dict[str, Any] | None = None, source: str = "jsonl") -> int:
        """A job importing `rows`, stored as JSON lines, or (`source` "csv") as a CSV whose
        header names every field of the rows (a field a row lacks is an empty cell)."""
        self.job_ids += 1
        content, offset = encode_jsonl(rows), 0
        if source == "csv":
            header = list(dict.fromkeys(name for row in rows for name in row)) or ["email"]
            out = io.StringIO()
            csv.writer(out).writerows([header, *([row.get(h, "") for h in header]
                                                 for row in rows)])
            content = out.getvalue()
            offset = len(content.split("\r\n", 1)[0]) + 2
            plan = {**(plan or {}), "csv_header": header}
        # A CSV's blank records (a row of empty cells) are not rows, as a vendor counts them.
        total = count_csv_rows(content, offset) if source == "csv" else len(rows)
        with self.backend.store.begin() as conn:
            return jobs.create(conn, workspace=self.key, vendor=VENDOR,
                               job_id=f"job{self.job_ids}", list_pk=list_pk, kind="test",
                               now=at, source_format=source, content=content, offset=offset,
                               total=total, policy=policy, pacing=pacing, plan=plan)

    def run_now(self, list_pk: int, rows: list[dict[str, Any]], *, at: float = T0,
                policy: ImportPolicy = EMAIL) -> tuple[dict[str, Any], list[RowResult]]:
        self.job_ids += 1
        with self.backend.store.begin() as conn:
            return jobs.run_now(conn, workspace=self.key, seed=self.seed, at=at, vendor=VENDOR,
                                job_id=f"job{self.job_ids}", list_pk=list_pk, kind="sync",
                                source_format="jsonl", content=encode_jsonl(rows), offset=0,
                                total=len(rows), policy=policy)

    def advance(self, seconds: float) -> None:
        """Move the workspace's clock without settling (as time passing does)."""
        with self.backend.workspace(self.key, settle=False) as (conn, ws):
            workspaces.save_clock(conn, ws, ws.clock.advance(seconds))

    def settle(self, at: float) -> list[dict[str, Any]]:
        with self.backend.store.begin() as conn:
            return jobs.settle(conn, self.key, at, self.seed)

    def force(self, pk: int, to: str, at: float, **kwargs: Any) -> dict[str, Any]:
        with self.backend.store.begin() as conn:
            jobs.settle(conn, self.key, at, self.seed)
            return jobs.force(conn, jobs.get_by_pk(conn, pk), to, at=at, seed=self.seed,
                              **kwargs)

    def job(self, pk: int) -> dict[str, Any]:
        with self.backend.store.begin() as conn:
            return jobs.get_by_pk(conn, pk)

    def leads(self, list_pk: int) -> list[dict[str, Any]]:
        with self.backend.store.begin() as conn:
            return lists.leads(conn, list_pk, limit=100_000)

    def lead_count(self, list_pk: int) -> int:
        """The list's stored counter (kept by settling), not a count of its rows."""
        with self.backend.store.begin() as conn:
            return int(conn.execute(select(t.lists.c.lead_count).where(
                t.lists.c.pk == list_pk)).scalar_one())


def emails(*names: str) -> list[dict[str, Any]]:
    return [{"email": f"{n}@example.com"} for n in names]


def conserved(job: dict[str, Any]) -> bool:
    c = job["counts"]
    outcomes = (c["added"] + c["updated"] + c["unchanged"] + c["skipped"] + c["blocked"]
                + c["failed"])
    return bool(outcomes == job["processed"])


def rounds_match_settles(build: Callable[[], tuple[Core, Any, list[int]]],
                         run_round: Callable[[Core], None],
                         state: Callable[[Core, Any, list[int]], Any],
                         steps: list[float], final: float) -> None:
    """Rounds to each step's instant (`run_round`, once the clock has moved there) leave what
    settles to those instants leave, and a last round, to `final`, what one settle there
    leaves. `build` makes the same lists and jobs afresh in a core of its own each time."""
    rounds, where, pks = build()
    stepped, where_stepped, pks_stepped = build()
    at = T0
    for step in steps:
        at += step
        rounds.advance(step)
        run_round(rounds)
        stepped.settle(at)
        assert state(rounds, where, pks) == state(stepped, where_stepped, pks_stepped)
    rounds.advance(final - at)
    run_round(rounds)
    once, where_once, pks_once = build()
    once.settle(final)
    assert state(rounds, where, pks) == state(once, where_once, pks_once)
