"""The request journal: what each workspace sent, what it got, and every webhook attempt."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from sandbox.core import store as t
from sandbox.core.clock import iso

MAX_BODY_CHARS = 65_536


def clip(body: bytes, total_size: int) -> str:
    text = body[:MAX_BODY_CHARS].decode("utf-8", errors="replace")
    if total_size > MAX_BODY_CHARS:
        text += f"\n[... truncated: {total_size} bytes in all]"
    return text


_INSERT = insert(t.journal)  # built once: every vendor request writes one entry


def record_request(conn: Connection, *, workspace: str, at: float, vendor: str | None,
                   operation_id: str | None, method: str, path: str, query: str, status: int,
                   body: str | None, errors: list[dict[str, Any]] | None,
                   detail: dict[str, Any] | None = None) -> None:
    conn.execute(_INSERT, dict(
        workspace=workspace, at=at, kind="request", vendor=vendor, operation_id=operation_id,
        method=method, path=path, query=query, status=status, body=body, errors=errors,
        detail=detail))


def record_webhook(conn: Connection, *, workspace: str, at: float, vendor: str,
                   detail: dict[str, Any], status: int | None, body: str) -> None:
    conn.execute(insert(t.journal).values(
        workspace=workspace, at=at, kind="webhook", vendor=vendor, operation_id=None,
        method="POST", path=detail.get("url"), query="", status=status, body=body,
        errors=None, detail=detail))


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
