"""The database: table definitions (SQLAlchemy Core) and the engine that holds every workspace.

Everything a second process on the same database needs lives here; no module keeps state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

from sandbox.core.sql import Fast

metadata = MetaData()

workspaces = Table(
    "workspaces", metadata,
    Column("id", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("anchor_wall", Float, nullable=False),
    Column("anchor_virtual", Float, nullable=False),
    Column("speed", Float, nullable=False, default=1.0),
    Column("frozen", Boolean, nullable=False, default=False),
    Column("settings", JSON, nullable=False, default=dict),
    Column("last_seen_wall", Float, nullable=False),
    # The earliest virtual instant at which settling has work to do (None = nothing pending).
    Column("next_due", Float, nullable=True),
    Index("ix_workspaces_last_seen", "last_seen_wall"),
)

sequences = Table(
    "sequences", metadata,
    Column("workspace", String(200), primary_key=True),
    Column("name", String(60), primary_key=True),
    Column("value", Integer, nullable=False),
)

lists = Table(
    "lists", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("vendor", String(20), nullable=False),
    Column("kind", String(20), nullable=False),  # list | campaign | contacts
    Column("id", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Column("lead_count", Integer, nullable=False, default=0),
    UniqueConstraint("workspace", "vendor", "kind", "id", name="uq_lists_id"),
)

leads = Table(
    "leads", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("list_pk", Integer, nullable=False),
    Column("key", String(320), nullable=False),
    Column("alt_key", String(320), nullable=True),
    Column("data", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("job_id", String(100), nullable=True),
    UniqueConstraint("list_pk", "key", name="uq_leads_key"),
    Index("ix_leads_alt", "list_pk", "alt_key"),
)

jobs = Table(
    "jobs", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("vendor", String(20), nullable=False),
    Column("id", String(100), nullable=False),
    Column("list_pk", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("plan", JSON, nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("processed", Integer, nullable=False, default=0),
    Column("counts", JSON, nullable=False, default=dict),
    Column("row_errors", JSON, nullable=False, default=list),
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("queued_until", Float, nullable=True),
    Column("running_from", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("updated_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("source_offset", Integer, nullable=False, default=0),
    Column("extra", JSON, nullable=False, default=dict),
    # When the clock next changes this job by itself (jobs.NEVER when it never will; NULL when
    # unknown): settling reads only the jobs that are due, whatever else the workspace holds.
    Column("due_at", Float, nullable=True),
    UniqueConstraint("workspace", "vendor", "id", name="uq_jobs_id"),
    Index("ix_jobs_list", "workspace", "vendor", "list_pk", "pk"),
    Index("ix_jobs_active", "workspace", "status"),
    Index("ix_jobs_due", "workspace", "due_at"),
)

# Kept apart from `jobs` so that listing jobs never drags megabytes of CSV along.
job_sources = Table(
    "job_sources", metadata,
    Column("job_pk", Integer, primary_key=True),
    Column("format", String(10), nullable=False),  # csv | jsonl
    Column("content", Text, nullable=False),
)

block_list = Table(
    "block_list", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("vendor", String(20), nullable=False),
    Column("value", String(320), nullable=False),
    Column("client_id", Integer, nullable=True),
    Column("source", String(40), nullable=False, default="manual"),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("workspace", "vendor", "value", "client_id", name="uq_block"),
)

journal = Table(
    "journal", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(10), nullable=False),  # request | webhook
    Column("vendor", String(20), nullable=True),
    Column("operation_id", String(80), nullable=True),
    Column("method", String(10), nullable=True),
    Column("path", Text, nullable=True),
    Column("query", Text, nullable=True),
    Column("status", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("errors", JSON, nullable=True),
    Column("detail", JSON, nullable=True),
    Index("ix_journal_ws", "workspace", "pk"),
)

idempotency = Table(
    "idempotency", metadata,
    Column("workspace", String(200), primary_key=True),
    Column("vendor", String(20), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

rate_counters = Table(
    "rate_counters", metadata,
    Column("workspace", String(200), primary_key=True),
    Column("window", String(40), primary_key=True),
    Column("window_start", Float, nullable=False),
    Column("count", Integer, nullable=False),
)

webhooks = Table(
    "webhooks", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("vendor", String(20), nullable=False),
    Column("id", String(100), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    # false registers the subscription but pauses its deliveries (Leadlex `active`).
    Column("active", Boolean, nullable=False, default=True),
)

deliveries = Table(
    "deliveries", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("webhook_pk", Integer, nullable=False),
    Column("id", String(64), nullable=False),
    Column("event", String(80), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=True),
    Column("state", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", JSON, nullable=False, default=list),
    Index("ix_deliveries_due", "workspace", "state", "next_attempt_at"),
)

scenarios = Table(
    "scenarios", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String(200), nullable=False),
    Column("operation_id", String(80), nullable=False),
    Column("status", Integer, nullable=True),
    Column("delay", Float, nullable=True),
    Column("remaining", Integer, nullable=False),
    Column("retry_after", Integer, nullable=True),
    Column("message", Text, nullable=True),
)

# Tables that belong to one workspace and are wiped by a reset.
WORKSPACE_TABLES: tuple[tuple[Table, str], ...] = (
    (lists, "workspace"), (jobs, "workspace"), (block_list, "workspace"),
    (journal, "workspace"), (idempotency, "workspace"), (rate_counters, "workspace"),
    (webhooks, "workspace"), (deliveries, "workspace"), (scenarios, "workspace"),
    (sequences, "workspace"),
)


class Changes:
    """How many times this process has changed some data (workspace rows, armed scenarios).
    A request-path memory of that data (Backend) holds while the count has not moved."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        self.count += 1


class Store:
    """One engine, the schema, and small helpers every core module shares."""

    def __init__(self, url: str = "sqlite://") -> None:
        self.url = url
        self.engine = _make_engine(url)
        metadata.create_all(self.engine)
        # An in-memory database is one DB-API connection (StaticPool) whatever the checkout:
        # keeping one Connection open makes a transaction cost ~3 us instead of the ~19 us of a
        # pool checkout, and every request runs three.
        self._kept: Connection | None = (self.engine.connect()
                                         if isinstance(self.engine.pool, StaticPool) else None)
        # Only this process can write an in-memory database: what it remembers of the data
        # stays true until it changes the data itself (Backend's request-path memories).
        self.in_memory = self._kept is not None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        kept = self._kept
        if kept is None or kept.closed or kept.in_transaction():
            with self.engine.begin() as conn:
                yield conn
            return
        with kept.begin():
            yield kept

    def in_transaction(self) -> bool:
        """Whether the kept connection of an in-memory store has a transaction open."""
        return self._kept is not None and not self._kept.closed and self._kept.in_transaction()

    def dispose(self) -> None:
        if self._kept is not None:
            self._kept.close()
        self.engine.dispose()


def _memory_database() -> sqlite3.Connection:
    """A private in-memory database held by SQLite's memdb VFS (a name without a leading "/"
    is this connection's alone). Not ":memory:", whose pages all live in the page cache: past
    ~10,000 pages some commits scan it, and a create's transaction cost grew from ~23 to ~41
    us between 200 and 100,000 stored jobs (scenario F). Here the pages live in the memdb
    file and the cache keeps the hot ones: ~31 us at every size."""
    return sqlite3.connect("file:sandbox?vfs=memdb", uri=True, check_same_thread=False)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = url in {"sqlite://", "sqlite:///:memory:"}
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if in_memory:
            # One shared connection, or every checkout would see a new empty database.
            kwargs["poolclass"] = StaticPool
            kwargs["creator"] = _memory_database
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


# Built once (ids are drawn on the request path); the increment returns the new value in the
# same statement where the database can.
_SEQ_WHERE = (sequences.c.workspace == bindparam("seq_ws"), sequences.c.name == bindparam("seq"))
_SEQ_GET = Fast(select(sequences.c.value).where(*_SEQ_WHERE))
_SEQ_SET = Fast(update(sequences).where(*_SEQ_WHERE).values(value=bindparam("seq_value")))
_SEQ_BUMP = Fast(update(sequences).where(*_SEQ_WHERE)
                 .values(value=sequences.c.value + bindparam("seq_n"))
                 .returning(sequences.c.value))
_SEQ_NEW = Fast(insert(sequences))


def next_sequence(conn: Connection, workspace: str, name: str, start: int = 1,
                  count: int = 1) -> int:
    """The next number of a per-workspace counter (ids stay deterministic and never repeat);
    with `count`, the first of the next `count` numbers, all of them taken."""
    key = {"seq_ws": workspace, "seq": name}
    if conn.dialect.update_returning:
        bumped = _SEQ_BUMP.scalar(conn, {**key, "seq_n": count})
        if bumped is not None:
            return int(bumped) - count + 1
    else:
        value = _SEQ_GET.scalar(conn, key)
        if value is not None:
            _SEQ_SET.run(conn, {**key, "seq_value": int(value) + count})
            return int(value) + 1
    _SEQ_NEW.run(conn, {"workspace": workspace, "name": name, "value": start + count - 1})
    return start
