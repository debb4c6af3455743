"""Workspaces: one per API key, created on first use, seeded from fixtures, each with a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from sandbox.core import store as t
from sandbox.core.clock import Clock, parse_iso, wall_now
from sandbox.core.errors import InvalidRequest, NotFound
from sandbox.core.fakes import person, x_profile
from sandbox.core.imports import normalise
from sandbox.core.jobs import Pacing
from sandbox.core.sql import Fast

# Realistic defaults, documented in the README; a fixture or the control API can override them.
DEFAULT_PACING: dict[str, Pacing] = {
    "inboxapp.csv": Pacing(queue_wait=2, start_delay=1, rows_per_second=20),
    "inboxapp.followers": Pacing(queue_wait=5, start_delay=2, rows_per_second=10),
    "inboxapp.likes": Pacing(queue_wait=5, start_delay=2, rows_per_second=10),
    "leadlex": Pacing(queue_wait=2, start_delay=1, rows_per_second=200),
    "which50": Pacing(queue_wait=3, start_delay=2, rows_per_second=100),
}


@dataclass
class Workspace:
    id: str
    clock: Clock
    created_at: float
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> float:
        return self.clock.now()

    def pacing(self, vendor: str, kind: str | None = None) -> Pacing:
        overrides: dict[str, dict[str, float]] = self.settings.get("pacing", {})
        for name in (f"{vendor}.{kind}", vendor) if kind else (vendor,):
            if name in overrides or name in DEFAULT_PACING:
                base = DEFAULT_PACING.get(name, _NO_PACING)
                o = overrides.get(name)
                if not o:  # nearly always: the default itself (frozen, so it is shared)
                    return base
                return Pacing(queue_wait=o.get("queue_wait", base.queue_wait),
                              start_delay=o.get("start_delay", base.start_delay),
                              rows_per_second=o.get("rows_per_second", base.rows_per_second))
        return _FALLBACK_PACING


_NO_PACING = Pacing()
_FALLBACK_PACING = Pacing(rows_per_second=100)


# Every change to a workspace row other than its last-seen time, in this process: a request
# reuses the workspace its admission loaded only while the count has not moved (see
# Backend.workspace). One count for all workspaces: such changes are rare (clock, settings,
# reset), and a needless reload is the only cost of a change elsewhere.
CHANGES = t.Changes()


def changes() -> int:
    return CHANGES.count


# Built once: the request path opens a workspace on every call.
_TOUCH_STMT = (update(t.workspaces).where(t.workspaces.c.id == bindparam("ws_id"))
               .values(last_seen_wall=bindparam("seen")))
_LOAD = Fast(select(t.workspaces).where(t.workspaces.c.id == bindparam("ws_id")))
_TOUCH = Fast(_TOUCH_STMT)
_TOUCH_LOAD = Fast(_TOUCH_STMT.returning(*t.workspaces.c))


def load(conn: Connection, workspace_id: str, seed: int) -> Workspace | None:
    return _from_row(_LOAD.first(conn, {"ws_id": workspace_id}), seed)


def load_touched(conn: Connection, workspace_id: str, seed: int) -> Workspace | None:
    """`load` and `touch` together: one statement where the database returns updated rows."""
    params = {"ws_id": workspace_id, "seen": wall_now()}
    if conn.dialect.update_returning:
        return _from_row(_TOUCH_LOAD.first(conn, params), seed)
    ws = _from_row(_LOAD.first(conn, params), seed)
    if ws is not None:
        _TOUCH.run(conn, params)
    return ws


def _from_row(row: dict[str, Any] | None, seed: int) -> Workspace | None:
    if row is None:
        return None
    clock = Clock(anchor_wall=row["anchor_wall"], anchor_virtual=row["anchor_virtual"],
                  speed=row["speed"], frozen=row["frozen"])
    return Workspace(id=row["id"], clock=clock, created_at=row["created_at"], seed=seed,
                     settings=dict(row["settings"] or {}))


def create(conn: Connection, workspace_id: str, *, seed: int, clock_start: str | None,
           clock_mode: str, fixtures: list[dict[str, Any]]) -> Workspace:
    CHANGES.bump()
    clock = Clock.starting_at(parse_iso(clock_start) if clock_start else None,
                              frozen=clock_mode == "frozen")
    now = clock.now()
    settings: dict[str, Any] = {}
    for doc in fixtures:
        for name, pacing in (doc.get("pacing") or {}).items():
            settings.setdefault("pacing", {})[name] = pacing
    conn.execute(insert(t.workspaces).values(
        id=workspace_id, created_at=now, anchor_wall=clock.anchor_wall,
        anchor_virtual=clock.anchor_virtual, speed=clock.speed, frozen=clock.frozen,
        settings=settings, last_seen_wall=clock.anchor_wall, next_due=None))
    ws = Workspace(id=workspace_id, clock=clock, created_at=now, seed=seed, settings=settings)
    for doc in fixtures:
        apply_fixture(conn, ws, doc)
    return ws


def save_clock(conn: Connection, ws: Workspace, clock: Clock) -> None:
    CHANGES.bump()
    conn.execute(update(t.workspaces).where(t.workspaces.c.id == ws.id).values(
        anchor_wall=clock.anchor_wall, anchor_virtual=clock.anchor_virtual, speed=clock.speed,
        frozen=clock.frozen))
    ws.clock = clock


def save_settings(conn: Connection, ws: Workspace) -> None:
    CHANGES.bump()
    conn.execute(update(t.workspaces).where(t.workspaces.c.id == ws.id)
                 .values(settings=ws.settings))


def touch(conn: Connection, workspace_id: str, seen: float | None = None) -> None:
    """Record the workspace's last use: now, or the wall time `seen` it was used at."""
    _TOUCH.run(conn, {"ws_id": workspace_id, "seen": wall_now() if seen is None else seen})


def drop(conn: Connection, workspace_id: str) -> bool:
    CHANGES.bump()
    list_pks = select(t.lists.c.pk).where(t.lists.c.workspace == workspace_id)
    conn.execute(delete(t.leads).where(t.leads.c.list_pk.in_(list_pks)))
    job_pks = select(t.jobs.c.pk).where(t.jobs.c.workspace == workspace_id)
    conn.execute(delete(t.job_sources).where(t.job_sources.c.job_pk.in_(job_pks)))
    for table, column in t.WORKSPACE_TABLES:
        conn.execute(delete(table).where(table.c[column] == workspace_id))
    return conn.execute(delete(t.workspaces).where(t.workspaces.c.id == workspace_id)
                        ).rowcount > 0


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.workspaces)).scalar_one())


def evict_idle(conn: Connection, *, keep: int, idle_seconds: float) -> list[str]:
    """Drop idle workspaces (least recently used first) until at most `keep` remain, and any
    unused for longer than `idle_seconds`."""
    cutoff = wall_now() - idle_seconds
    stale = list(conn.execute(select(t.workspaces.c.id).where(
        t.workspaces.c.last_seen_wall < cutoff)).scalars())
    excess = count(conn) - len(stale) - keep
    if excess > 0:
        stale += list(conn.execute(select(t.workspaces.c.id).where(
            t.workspaces.c.last_seen_wall >= cutoff).order_by(
            t.workspaces.c.last_seen_wall).limit(excess)).scalars())
    for ws_id in stale:
        drop(conn, ws_id)
    return stale


def list_ids(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.workspaces.c.id, t.workspaces.c.last_seen_wall).order_by(
        t.workspaces.c.last_seen_wall.desc()).limit(limit))
    return [{"id": r.id} for r in rows]


# ---- fixtures ----------------------------------------------------------------------------

def apply_fixture(conn: Connection, ws: Workspace, doc: dict[str, Any]) -> dict[str, int]:
    """Add a fixture document's lists, leads and block-list entries to a workspace."""
    vendor = doc["vendor"]
    key_field = doc.get("key_field", "email")
    alt_field = doc.get("alt_key_field")
    added = {"lists": 0, "leads": 0, "block_list": 0}
    now = ws.now
    for spec in doc.get("lists", []):
        kind = spec.get("kind", "list")
        list_id = str(spec["id"])
        existing = conn.execute(select(t.lists.c.pk).where(
            t.lists.c.workspace == ws.id, t.lists.c.vendor == vendor, t.lists.c.kind == kind,
            t.lists.c.id == list_id)).scalar()
        if existing is None:
            existing = conn.execute(insert(t.lists).values(
                workspace=ws.id, vendor=vendor, kind=kind, id=list_id, name=spec["name"],
                description=spec.get("description"), created_at=now,
                data=spec.get("data", {}), lead_count=0).returning(t.lists.c.pk)).scalar_one()
            added["lists"] += 1
        leads = list(spec.get("leads", []))
        for i in range(spec.get("fake_leads", 0)):
            resource = f"{vendor}/{kind}/{list_id}/{i}"
            if key_field == "platformId":
                leads.append(x_profile(ws.seed, ws.id, username=None,
                                       platform_id=None, now=now) | _fake_id(ws, resource))
            else:
                leads.append(_vendor_person(vendor, person(ws.seed, ws.id, resource)))
        added["leads"] += _insert_leads(conn, int(existing), leads, key_field, alt_field, now)
    for entry in doc.get("block_list", []):
        dup = conn.execute(select(t.block_list.c.pk).where(
            t.block_list.c.workspace == ws.id, t.block_list.c.vendor == vendor,
            t.block_list.c.value == entry["value"].lower())).first()
        if dup is None:
            conn.execute(insert(t.block_list).values(
                workspace=ws.id, vendor=vendor, value=entry["value"].lower(),
                client_id=entry.get("client_id"), source=entry.get("source", "manual"),
                created_at=now))
            added["block_list"] += 1
    return added


def _fake_id(ws: Workspace, resource: str) -> dict[str, Any]:
    from sandbox.core.fakes import faker_for

    fake = faker_for(ws.seed, ws.id, resource)
    handle = f"{fake.user_name()[:11]}{fake.random_int(10, 99)}".lower()
    return x_profile(ws.seed, ws.id, username=handle, now=ws.now)


def _vendor_person(vendor: str, p: dict[str, Any]) -> dict[str, Any]:
    if vendor == "which50":
        return {"Email": p["email"], "FirstName": p["first_name"], "LastName": p["last_name"],
                "Phone": p["phone"]}
    if vendor == "smartlead":
        return {"email": p["email"], "first_name": p["first_name"],
                "last_name": p["last_name"], "company_name": p["company"],
                "phone_number": p["phone"], "location": p["location"]}
    return {"full_name": p["full_name"], "first_name": p["first_name"],
            "last_name": p["last_name"], "email": p["email"], "phone": p["phone"],
            "job_title": p["job_title"], "company": p["company"],
            "linkedin_url": p["linkedin_url"]}


def _insert_leads(conn: Connection, list_pk: int, leads: list[dict[str, Any]], key_field: str,
                  alt_field: str | None, now: float) -> int:
    added = 0
    for lead in leads:
        if not lead.get(key_field):
            raise InvalidRequest(f"every lead needs '{key_field}'", field=key_field)
        key = normalise(key_field, lead[key_field])
        exists = conn.execute(select(t.leads.c.pk).where(
            t.leads.c.list_pk == list_pk, t.leads.c.key == key)).first()
        if exists:
            continue
        conn.execute(insert(t.leads).values(
            list_pk=list_pk, key=key, data=lead, created_at=now, updated_at=now,
            alt_key=normalise(alt_field, lead[alt_field]) if alt_field and lead.get(alt_field)
            else None))
        added += 1
    if added:
        conn.execute(update(t.lists).where(t.lists.c.pk == list_pk)
                     .values(lead_count=t.lists.c.lead_count + added))
    return added


def require(ws: Workspace | None, workspace_id: str) -> Workspace:
    if ws is None:
        raise NotFound(f"workspace '{workspace_id}' does not exist", field="workspace")
    return ws
