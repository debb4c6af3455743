"""Idempotency keys: the first answer to a (workspace, vendor, key) is replayed for the same body
until the key expires on the workspace clock; a different body under a live key is a conflict."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from sandbox.core import store as t
from sandbox.core.errors import Conflict

DEFAULT_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def body_hash(body: Any) -> str:
    """SHA-256 of the canonical JSON of a body: key order and whitespace do not matter."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lookup(conn: Connection, *, workspace: str, vendor: str, key: str, digest: str,
           now: float, ttl: float = DEFAULT_TTL, field: str = "Idempotency-Key",
           **conflict_extra: Any) -> Answer | None:
    """The stored answer for a live key with the same body; None when the key is free (never
    used, or expired: an expired entry is dropped so the key can be used again).
    Raises Conflict (naming `field`) when the live key was used with another body."""
    row = conn.execute(select(t.idempotency).where(
        t.idempotency.c.workspace == workspace, t.idempotency.c.vendor == vendor,
        t.idempotency.c.key == key)).mappings().first()
    if row is None:
        return None
    if now - float(row["created_at"]) >= ttl:
        _forget(conn, workspace, vendor, key)
        return None
    if row["body_hash"] != digest:
        raise Conflict(f"{field}: this key was already used with a different request body "
                       f"(keys are reusable {_hours(ttl)} after their first use)",
                       field=field, rule="idempotency", **conflict_extra)
    return Answer(int(row["status"]), row["response"])


def remember(conn: Connection, *, workspace: str, vendor: str, key: str, digest: str,
             now: float, answer: Answer, field: str = "Idempotency-Key") -> None:
    _forget(conn, workspace, vendor, key)
    try:
        conn.execute(insert(t.idempotency).values(
            workspace=workspace, vendor=vendor, key=key, body_hash=digest,
            status=answer.status, response=answer.body, created_at=now))
    except IntegrityError:
        # Another process answered the same key first (file or PostgreSQL database): this
        # transaction, and so the work it did, is rolled back; a retry gets the replay.
        raise Conflict(f"{field}: a request with this key was being processed at the same "
                       "time; retry to get its answer", field=field, rule="idempotency"
                       ) from None


def once(conn: Connection, *, workspace: str, vendor: str, key: str | None, body: Any,
         now: float, run: Callable[[], Answer], ttl: float = DEFAULT_TTL,
         **conflict_extra: Any) -> Answer:
    """Run `run` unless a live key already answered this body; remember a successful (2xx)
    answer. Without a key, `run` simply runs."""
    if not key:
        return run()
    digest = body_hash(body)
    found = lookup(conn, workspace=workspace, vendor=vendor, key=key, digest=digest, now=now,
                   ttl=ttl, **conflict_extra)
    if found is not None:
        return found
    answer = run()
    if 200 <= answer.status < 300:
        remember(conn, workspace=workspace, vendor=vendor, key=key, digest=digest, now=now,
                 answer=answer)
    return answer


def _forget(conn: Connection, workspace: str, vendor: str, key: str) -> None:
    conn.execute(delete(t.idempotency).where(
        t.idempotency.c.workspace == workspace, t.idempotency.c.vendor == vendor,
        t.idempotency.c.key == key))


def _hours(ttl: float) -> str:
    hours = ttl / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"
