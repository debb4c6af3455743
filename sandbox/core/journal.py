"""The request journal: what each workspace sent, what it got, and every webhook attempt."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Text, bindparam, delete, func, insert, select

from sandbox.core import store as t
from sandbox.core import workspaces
from sandbox.core.clock import iso, wall_now
from sandbox.core.sql import Fast, json_text

MAX_BODY_CHARS = 65_536
# Entries kept per workspace (oldest dropped): one key hammered for days, or a fuzzer, must not
# grow memory without bound (an in-memory database holds the journal in RAM).
MAX_ENTRIES = 10_000
# Trimming runs on one insert in TRIM_EVERY (the entry's key a multiple of it, for that
# entry's workspace), so it costs nothing per request. Prime: workspaces taking turns get keys
# in steps of their number, which meet every multiple of a prime; with 500, two keys taking
# turns left the one on odd keys never trimmed.
TRIM_EVERY = 499


def clip(body: bytes, total_size: int) -> str:
    text = body[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    if total_size > MAX_BODY_CHARS:
        text += f"\n[... truncated: {total_size} bytes in all]"
    return text


_INSERT = Fast(insert(t.journal))  # built once: every vendor request writes one entry
# The same with the JSON columns bound as json.dumps's text, where that is what SQLAlchemy's
# JSON type binds (sql.json_text): an entry's `errors` and `detail` are nearly always
# None, stored as the JSON text 'null', which needs no serialising per entry.
_INSERT_TEXT = Fast(insert(t.journal).values(errors=bindparam("errors", type_=Text()),
                                             detail=bindparam("detail", type_=Text())))


def record_request(conn: Connection, *, workspace: str, at: float, vendor: str | None,
                   operation_id: str | None, method: str, path: str, query: str, status: int,
                   body: str | None, errors: list[dict[str, Any]] | None,
                   detail: dict[str, Any] | None = None) -> None:
    values = dict(
        workspace=workspace, at=at, kind="request", vendor=vendor, operation_id=operation_id,
        method=method, path=path, query=query, status=status, body=body, errors=errors,
        detail=detail)
    encode = json_text(conn.dialect)
    if encode is not None:
        pk = _INSERT_TEXT.insert(conn, _as_text(values, encode))
    else:
        pk = _INSERT.insert(conn, values)
    _trim(conn, workspace, pk)


def _as_text(entry: dict[str, Any], encode: Callable[[Any], str]) -> dict[str, Any]:
    """An entry's values for _INSERT_TEXT: its JSON columns as json.dumps's text."""
    errors, detail = entry["errors"], entry.get("detail")
    return {**entry, "kind": "request",
            "errors": "null" if errors is None else encode(errors),
            "detail": "null" if detail is None else encode(detail)}


def record_requests(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """`record_request` for each entry (its keyword arguments), in order, with the same rows
    and trims as a result; where the JSON columns bind as text (SQLite), as one executemany:
    ~4 us an entry less than one INSERT each (15.4-17.2 against 10.9-13.3 us, in process)."""
    encode = json_text(conn.dialect)
    if encode is None or len(entries) < 2:
        for entry in entries:
            record_request(conn, **entry)
        return
    _INSERT_TEXT.many(conn, [_as_text(entry, encode) for entry in entries])
    # SQLite gives each new row the largest rowid plus one, and this transaction is the only
    # writer: the batch's keys are the ones up to the last inserted, in order.
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    for pk, entry in enumerate(entries, start=last - len(entries) + 1):
        _trim(conn, entry["workspace"], pk)


class Pending:
    """Vendor requests' journal entries not written yet, with the last use of each workspace
    they name. On an in-memory store (this process its only reader and writer) entries wait
    here and are written in one transaction: after FLUSH_AFTER seconds, at FLUSH_AT entries, or
    whenever something is about to read or delete the journal or a workspace's last use
    (`flush`, called before the reader's transaction opens). A request then pays an append
    instead of a transaction of its own (~80 us of a ~800 us request). Any other store is
    written at once, as other processes may read it."""

    FLUSH_AFTER = 0.05
    FLUSH_AT = 256

    def __init__(self, store: t.Store) -> None:
        self.store = store
        self._entries: list[dict[str, Any]] = []
        self._seen: dict[str, float] = {}  # workspace -> wall time of its last request
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._entries) + len(self._seen)

    def add(self, entry: dict[str, Any], *, touch: bool) -> None:
        """One request's entry (record_request's arguments); `touch` also records the
        workspace's last use, for a request admitted without a transaction."""
        self._entries.append(entry)
        if touch:
            self._seen[entry["workspace"]] = wall_now()
        if not self.store.in_memory or len(self._entries) >= self.FLUSH_AT:
            self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop to come back later
            if not self.store.in_transaction():
                self.flush()
            return
        # A timer left on a loop that has since stopped (a test client's) never fires.
        if self._timer is None or self._timer_loop is not loop:
            self._timer_loop = loop
            # In an empty context: the request's own (Connexion's scope, with the parsed
            # body) would otherwise live as long as the timer (+38 MB in scenario D).
            self._timer = loop.call_later(self.FLUSH_AFTER, self._flush_later,
                                          context=contextvars.Context())

    def _flush_later(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write what waits, in arrival order, in a transaction of its own. Call it with no
        transaction open: before any read or delete of the journal or of last uses."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._entries and not self._seen:
            return
        if self.store.in_transaction():
            # Written inside another transaction, the entries would share its fate (and an
            # in-memory store has one connection): they wait for the timer instead.
            self._schedule()
            return
        entries, seen = self._entries, self._seen
        self._entries, self._seen = [], {}
        try:
            with self.store.begin() as conn:
                record_requests(conn, entries)
                for workspace, at in seen.items():
                    workspaces.touch(conn, workspace, seen=at)
        except Exception:  # the journal must never turn an answer into a failure
            logging.getLogger("sandbox").exception(
                "journal write failed (%d entries lost)", len(entries))


def record_webhook(conn: Connection, *, workspace: str, at: float, vendor: str,
                   detail: dict[str, Any], status: int | None, body: str) -> None:
    result = conn.execute(insert(t.journal).values(
        workspace=workspace, at=at, kind="webhook", vendor=vendor, operation_id=None,
        method="POST", path=detail.get("url"), query="", status=status, body=body,
        errors=None, detail=detail))
    inserted = result.inserted_primary_key
    if inserted:
        _trim(conn, workspace, int(inserted[0]))


def _trim(conn: Connection, workspace: str, pk: int) -> None:
    """After the entry `pk` is written: on one in TRIM_EVERY, drop the workspace's entries
    older than its MAX_ENTRIES newest up to `pk` (those after it, written in the same batch,
    are not counted: the result is the one of writing the entries one by one)."""
    if pk % TRIM_EVERY:
        return
    oldest_kept = conn.execute(
        select(t.journal.c.pk).where(t.journal.c.workspace == workspace, t.journal.c.pk <= pk)
        .order_by(t.journal.c.pk.desc()).offset(MAX_ENTRIES - 1).limit(1)).scalar()
    if oldest_kept is not None:
        conn.execute(delete(t.journal).where(t.journal.c.workspace == workspace,
                                             t.journal.c.pk < oldest_kept))


def entries(conn: Connection, workspace: str, *, operation_id: str | None = None,
            status: int | None = None, kind: str | None = None, vendor: str | None = None,
            limit: int = 100, after: int = 0) -> list[dict[str, Any]]:
    q = select(t.journal).where(t.journal.c.workspace == workspace, t.journal.c.pk > after)
    if operation_id:
        q = q.where(t.journal.c.operation_id == operation_id)
    if status is not None:
        q = q.where(t.journal.c.status == status)
    if kind:
        q = q.where(t.journal.c.kind == kind)
    if vendor:
        q = q.where(t.journal.c.vendor == vendor)
    rows = conn.execute(q.order_by(t.journal.c.pk).limit(limit)).mappings()
    return [view(dict(r)) for r in rows]


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {"seq": row["pk"], "kind": row["kind"], "at": iso(row["at"]), "vendor": row["vendor"],
            "operationId": row["operation_id"], "method": row["method"], "path": row["path"],
            "query": row["query"] or "", "status": row["status"], "body": row["body"],
            "errors": row["errors"] or [], "detail": row["detail"] or {}}


def count(conn: Connection, workspace: str) -> int:
    return int(conn.execute(select(func.count()).select_from(t.journal).where(
        t.journal.c.workspace == workspace)).scalar_one())


def clear(conn: Connection, workspace: str) -> int:
    return int(conn.execute(delete(t.journal).where(t.journal.c.workspace == workspace)
                            ).rowcount)
