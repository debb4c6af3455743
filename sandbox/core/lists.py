"""Lists, campaigns and their leads: the containers imports write into, shared by all vendors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from sandbox.core import store as t
from sandbox.core.errors import NotFound
from sandbox.core.sql import Fast

# Built once: most vendor requests look a list up.
_GET = Fast(select(t.lists).where(
    t.lists.c.workspace == bindparam("ws"), t.lists.c.vendor == bindparam("vendor"),
    t.lists.c.kind == bindparam("kind"), t.lists.c.id == bindparam("list_id")))


def get(conn: Connection, workspace: str, vendor: str, list_id: str | int, *,
        kind: str = "list", field: str = "listId", noun: str = "list") -> dict[str, Any]:
    row = _GET.first(conn, {"ws": workspace, "vendor": vendor, "kind": kind,
                            "list_id": str(list_id)})
    if row is None:
        raise NotFound(f"{noun} '{list_id}' not found", field=field)
    return row


def get_or_create(conn: Connection, workspace: str, vendor: str, list_id: str, *, kind: str,
                  name: str, at: float) -> dict[str, Any]:
    try:
        return get(conn, workspace, vendor, list_id, kind=kind)
    except NotFound:
        return create(conn, workspace, vendor, list_id=list_id, kind=kind, name=name, at=at)


def create(conn: Connection, workspace: str, vendor: str, *, list_id: str, kind: str,
           name: str, at: float, description: str | None = None,
           data: dict[str, Any] | None = None) -> dict[str, Any]:
    conn.execute(insert(t.lists).values(
        workspace=workspace, vendor=vendor, kind=kind, id=list_id, name=name,
        description=description, created_at=at, data=data or {}, lead_count=0))
    return get(conn, workspace, vendor, list_id, kind=kind)


def all_of(conn: Connection, workspace: str, vendor: str, *, kind: str = "list",
           name_contains: str | None = None, offset: int = 0, limit: int | None = None
           ) -> list[dict[str, Any]]:
    q = select(t.lists).where(t.lists.c.workspace == workspace, t.lists.c.vendor == vendor,
                              t.lists.c.kind == kind)
    if name_contains:
        q = q.where(func.lower(t.lists.c.name).contains(name_contains.lower()))
    q = q.order_by(t.lists.c.pk).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def name_taken(conn: Connection, workspace: str, vendor: str, name: str, kind: str = "list"
               ) -> bool:
    return conn.execute(select(t.lists.c.pk).where(
        t.lists.c.workspace == workspace, t.lists.c.vendor == vendor, t.lists.c.kind == kind,
        func.lower(t.lists.c.name) == name.lower())).first() is not None


def leads(conn: Connection, list_pk: int, *, offset: int = 0, limit: int = 100,
          newest_first: bool = False) -> list[dict[str, Any]]:
    order = t.leads.c.pk.desc() if newest_first else t.leads.c.pk
    rows = conn.execute(select(t.leads).where(t.leads.c.list_pk == list_pk)
                        .order_by(order).offset(offset).limit(limit)).mappings()
    return [dict(r) for r in rows]


def lead_keys(conn: Connection, list_pk: int) -> set[str]:
    return set(conn.execute(select(t.leads.c.key).where(t.leads.c.list_pk == list_pk)).scalars())


def count_leads(conn: Connection, list_pk: int) -> int:
    return int(conn.execute(select(func.count()).select_from(t.leads).where(
        t.leads.c.list_pk == list_pk)).scalar_one())
