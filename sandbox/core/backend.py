"""The sandbox backend (moto-style): one object that owns the store and answers plain method
calls; vendor faces and the control API are thin layers over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from sandbox.core import jobs, journal, lists, scenarios, slicing, webhooks, workspaces
from sandbox.core.clock import Clock
from sandbox.core.errors import Conflict, NotFound, Unauthorized
from sandbox.core.fixtures import load_dir
from sandbox.core.ids import cuid, hex_token, uuid_for
from sandbox.core.store import Store, next_sequence
from sandbox.core.workspaces import Workspace
from sandbox.settings import Settings

# Called for every job that reaches a final status while settling (webhooks subscribe here).
JobFinishedHook = Callable[[Connection, Workspace, dict[str, Any]], None]

_current: ContextVar[Backend] = ContextVar("sandbox_backend")
# Entries a vendor-request memory holds before it starts afresh (one per workspace key).
_MEMORY = 4096
# Ids an in-memory store takes from a counter at once (Backend.next_number).
ID_BLOCK = 64


@dataclass(frozen=True)
class Admitted:
    """The workspace a request's admission opened (and touched), with the count of workspace
    changes at that moment (`workspaces.changes()`)."""

    key: str
    workspace: Workspace
    changes: int


# Set by the gateway for the request in progress: the handler's own open of the same workspace
# reuses it instead of loading the row again (~80 us of a ~1 ms request), unless a workspace
# changed in between (the clock moved, settings, a reset: then it loads as usual).
_admitted: ContextVar[Admitted | None] = ContextVar("sandbox_admitted", default=None)


def current() -> Backend:
    """The backend serving the request in progress (set by the HTTP gateway)."""
    return _current.get()


class Backend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_url)
        self.fixtures = load_dir(settings.fixture_dir)
        self.allowed_keys = _load_keys(settings.keys_file) if settings.auth == "strict" else None
        self.job_finished_hooks: list[JobFinishedHook] = [webhooks.on_job_finished]
        # Vendor-request memories (in-memory store only; see known_workspace and any_armed).
        self._known: dict[str, tuple[int, Workspace]] = {}
        self._armed: dict[str, tuple[tuple[int, int], bool]] = {}
        self._lists: dict[tuple[str, str, str, str], tuple[int, dict[str, Any]]] = {}
        # Vendor requests' journal entries not written yet (in-memory store; see Pending).
        self.journal = journal.Pending(self.store)
        # Id counters (in-memory store; see next_number): (workspace, counter) -> [the last
        # number handed out, the last one taken from the database]; and, while a workspace
        # transaction is open, what to put back if it fails.
        self._numbers: dict[tuple[str, str], tuple[int, int]] = {}
        # While a workspace transaction is open: what puts back the memories it changed
        # (id blocks, rounds), should it fail.
        self._undo: list[Callable[[], None]] | None = None
        # The ticker's rounds whose jobs are not written yet (in-memory store; see slicing).
        self.rounds = slicing.Rounds()

    def activate(self) -> None:
        _current.set(self)

    # ---- workspaces --------------------------------------------------------------------

    def check_key(self, key: str) -> None:
        if self.allowed_keys is not None and key not in self.allowed_keys:
            raise Unauthorized("API key not recognised", field="key")

    @contextmanager
    def workspace(self, key: str, *, create: bool = True, settle: bool = True
                  ) -> Iterator[tuple[Connection, Workspace]]:
        """A transaction on the key's workspace, created and seeded on first use and settled
        to its clock's now before the caller sees it. `settle=False` is for callers that only
        add to the workspace without reading what settling changes: settling applies rows in
        clock order, so applying them at the next settling open gives the same result."""
        admitted = _admitted.get()
        if self.journal and self.known_workspace(key) is None:
            # Opening may create the workspace and evict the least recently used ones, which
            # reads every workspace's last use and deletes journals: what waits goes first.
            self.journal.flush()
        for attempt in range(3):
            handed_over = False
            outer_undo, self._undo = self._undo, []
            try:
                with self.store.begin() as conn:
                    if (attempt == 0 and admitted is not None and admitted.key == key
                            and admitted.changes == workspaces.changes()):
                        ws = admitted.workspace
                    else:
                        ws = self._open(conn, key, create=create)
                    if settle:
                        self.settle(conn, ws)
                    handed_over = True
                    yield conn, ws
                if outer_undo is not None:  # an enclosing transaction may still fail
                    outer_undo.extend(self._undo)
                return
            except BaseException as exc:
                # Rolled back: the ids it drew were never handed out, the rounds it wrote are
                # still to write.
                for undo in reversed(self._undo):
                    undo()
                # Only opening and settling are retried: the caller's own code ran once, and a
                # context manager cannot run it again.
                if (not isinstance(exc, Conflict) or handed_over
                        or "concurrently" not in exc.message or attempt == 2):
                    raise
            finally:
                self._undo = outer_undo

    # ---- the vendor request path ---------------------------------------------------------

    def known_workspace(self, key: str) -> Workspace | None:
        """The workspace a vendor request last opened for `key`, while no workspace row has
        changed since (workspaces.changes()), on an in-memory store, where every writer is this
        process; otherwise None. Shared by the vendor requests that use it: only read."""
        hit = self._known.get(key) if self.store.in_memory else None
        return hit[1] if hit is not None and hit[0] == workspaces.changes() else None

    def remember(self, key: str, ws: Workspace) -> None:
        """Keep `ws`, just loaded for a vendor request, for `known_workspace`."""
        if self.store.in_memory:
            if len(self._known) >= _MEMORY:
                self._known.clear()
            self._known[key] = (workspaces.changes(), ws)

    def any_armed(self, key: str, conn: Connection | None = None) -> bool:
        """Whether a scenario is armed in `key`'s workspace; remembered on an in-memory store
        until a workspace or a scenario changes (the usual answer, no, costs no statement)."""
        stamp = (workspaces.changes(), scenarios.changes())
        hit = self._armed.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        if conn is not None:
            armed = scenarios.any_armed(conn, key)
        else:
            with self.store.begin() as own:
                armed = scenarios.any_armed(own, key)
        if self.store.in_memory:
            if len(self._armed) >= _MEMORY:
                self._armed.clear()
            self._armed[key] = (stamp, armed)
        return armed

    def list_fixed(self, conn: Connection, ws: Workspace, vendor: str, list_id: str, *,
                   kind: str = "list", field: str = "listId", noun: str = "list"
                   ) -> dict[str, Any]:
        """A list's row without its `lead_count`, which settling changes: every other column
        is fixed once the list exists, so on an in-memory store the row is remembered until a
        workspace changes (a reset or a drop deletes lists). Shared: only read."""
        if not self.store.in_memory:
            return _without_count(lists.get(conn, ws.id, vendor, list_id, kind=kind,
                                            field=field, noun=noun))
        key = (ws.id, vendor, kind, str(list_id))
        hit = self._lists.get(key)
        if hit is not None and hit[0] == workspaces.changes():
            return hit[1]
        row = _without_count(lists.get(conn, ws.id, vendor, list_id, kind=kind, field=field,
                                       noun=noun))
        if len(self._lists) >= _MEMORY:
            self._lists.clear()
        self._lists[key] = (workspaces.changes(), row)
        return row

    @staticmethod
    def admit(key: str, ws: Workspace) -> Token[Admitted | None]:
        """Mark `ws`, just opened for `key`, as the workspace of the request in progress
        (the gateway resets the returned token when the request ends)."""
        return _admitted.set(Admitted(key, ws, workspaces.changes()))

    @staticmethod
    def end_admission(token: Token[Admitted | None]) -> None:
        _admitted.reset(token)

    def _open(self, conn: Connection, key: str, *, create: bool) -> Workspace:
        ws = workspaces.load_touched(conn, key, self.settings.seed)
        if ws is None:
            if not create:
                raise NotFound(f"workspace '{key}' does not exist", field="workspace")
            if workspaces.count(conn) >= self.settings.max_workspaces:
                for evicted in workspaces.evict_idle(
                        conn, keep=self.settings.max_workspaces - 1,
                        idle_seconds=self.settings.idle_workspace_seconds):
                    self._forget_numbers(evicted)
                    self._discard_round(evicted)
            ws = workspaces.create(conn, key, seed=self.settings.seed,
                                   clock_start=self.settings.clock_start,
                                   clock_mode=self.settings.clock_mode, fixtures=self.fixtures)
        return ws

    def settle(self, conn: Connection, ws: Workspace, at: float | None = None) -> None:
        # The ticker's round, if one is under way, applied rows whose jobs it has not
        # written: they are written first, or this settle would apply those rows again.
        self.flush_round(conn, ws.id)
        at = ws.now if at is None else at
        if not jobs.has_due(conn, ws.id, at):
            return
        finished = jobs.settle(conn, ws.id, at, ws.seed)
        for job in finished:
            for hook in self.job_finished_hooks:
                hook(conn, ws, job)

    def flush_round(self, conn: Connection, workspace: str) -> None:
        """Write the jobs of the workspace's round under way (slicing.Rounds) on `conn`; put
        back if the transaction fails."""
        if workspace in self.rounds:
            written = self.rounds.flush(conn, workspace)
            if written is not None and self._undo is not None:
                self._undo.append(partial(self.rounds.restore, written))

    def _discard_round(self, workspace: str) -> None:
        dropped = self.rounds.discard(workspace)
        if dropped is not None and self._undo is not None:
            self._undo.append(partial(self.rounds.restore, dropped))

    def reset(self, key: str) -> None:
        self.journal.flush()  # written before the workspace's journal is deleted, not after
        with self.store.begin() as conn:
            ws = workspaces.load(conn, key, self.settings.seed)
            if ws is None:
                raise NotFound(f"workspace '{key}' does not exist", field="workspace")
            workspaces.drop(conn, key)
            workspaces.create(conn, key, seed=self.settings.seed,
                              clock_start=self.settings.clock_start,
                              clock_mode=self.settings.clock_mode, fixtures=self.fixtures)
        self._forget_numbers(key)  # its counters start again
        self.rounds.discard(key)  # its jobs are gone

    def delete(self, key: str) -> None:
        self.journal.flush()
        with self.store.begin() as conn:
            if not workspaces.drop(conn, key):
                raise NotFound(f"workspace '{key}' does not exist", field="workspace")
        self._forget_numbers(key)
        self.rounds.discard(key)

    # ---- clock -------------------------------------------------------------------------

    def change_clock(self, key: str, change: Callable[[Clock], Clock]) -> Workspace:
        with self.workspace(key) as (conn, ws):
            workspaces.save_clock(conn, ws, change(ws.clock))
            self.settle(conn, ws)
            return ws

    # ---- ids ---------------------------------------------------------------------------

    def next_number(self, conn: Connection, ws: Workspace, name: str, start: int = 1) -> int:
        """The workspace counter's next number. On an in-memory store, inside `workspace`,
        numbers come from blocks of ID_BLOCK taken from the database at once (one statement
        per block instead of one per id); a transaction that fails puts back what it drew, so
        the numbers are exactly those the database alone would give."""
        if self._undo is None or not self.store.in_memory:
            return next_sequence(conn, ws.id, name, start)
        key = (ws.id, name)
        before = self._numbers.get(key)
        if before is not None and before[0] < before[1]:
            last, taken = before[0] + 1, before[1]
        else:
            last = next_sequence(conn, ws.id, name, start, count=ID_BLOCK)
            taken = last + ID_BLOCK - 1
        if len(self._numbers) >= _MEMORY and key not in self._numbers:
            self._forget_numbers()
        self._undo.append(partial(self._put_number, key, before))
        self._numbers[key] = (last, taken)
        return last

    def _put_number(self, key: tuple[str, str], before: tuple[int, int] | None) -> None:
        if before is None:
            self._numbers.pop(key, None)
        else:
            self._numbers[key] = before

    def _forget_numbers(self, workspace: str | None = None) -> None:
        """Drop the blocks in hand: all of them (the memory is full; a counter then resumes
        after the last number taken), or a workspace's, whose counters were just deleted.
        Inside a transaction, put back if it fails."""
        for key in [k for k in self._numbers if workspace is None or k[0] == workspace]:
            if self._undo is not None:
                self._undo.append(partial(self._put_number, key, self._numbers[key]))
            del self._numbers[key]

    def new_cuid(self, conn: Connection, ws: Workspace, name: str) -> str:
        return cuid(self.settings.seed, ws.id, name, self.next_number(conn, ws, name))

    def new_uuid(self, conn: Connection, ws: Workspace, name: str) -> str:
        return uuid_for(self.settings.seed, ws.id, name, self.next_number(conn, ws, name))

    def new_token(self, conn: Connection, ws: Workspace, name: str, length: int = 32) -> str:
        return hex_token(self.settings.seed, ws.id, name, self.next_number(conn, ws, name),
                         length=length)


def _without_count(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "lead_count"}


def _load_keys(path: str | None) -> frozenset[str]:
    if not path:
        raise ValueError("--auth strict needs --keys-file (one API key per line)")
    lines = Path(path).read_text().splitlines()
    return frozenset(k.strip() for k in lines if k.strip() and not k.startswith("#"))
