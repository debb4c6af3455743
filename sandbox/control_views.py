"""How the control API shows things: workspaces, jobs (generic and in the vendor's words),
settings, and the translation of vendor status names back to the generic lifecycle."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, func, select

from sandbox.core import jobs, journal, scenarios
from sandbox.core import store as t
from sandbox.core.clock import Clock, iso
from sandbox.core.errors import InvalidRequest
from sandbox.core.workspaces import DEFAULT_PACING, Workspace
from sandbox.vendors import FACES, VendorFace, face

MAX_LISTS_PER_VENDOR = 1000
PACING_FIELDS = {"queueWait": "queue_wait", "startDelay": "start_delay",
                 "rowsPerSecond": "rows_per_second"}
# Which generic status a shared vendor name means, when the names alone do not tell.
PREFERRED = ("running", "queued", "completed", "failed", "canceled", "starting", "paused",
             "created")
_PACING_KIND = re.compile(r"^[a-z0-9_-]{1,40}$")


# ---- status names ------------------------------------------------------------------------

def status_names(vendor: VendorFace) -> dict[str, str]:
    """Every generic status -> the vendor's name for it (its own STATUS_NAMES, else generic)."""
    names = getattr(vendor.module, "STATUS_NAMES", {})
    return {s: str(names.get(s, s)) for s in jobs.STATUSES}


def vendor_names(vendor: VendorFace, generic: list[str]) -> list[str]:
    names = status_names(vendor)
    return list(dict.fromkeys(names[s] for s in generic))


def generic_status(vendor: VendorFace, name: str, current: str) -> str:
    """A vendor status name -> the generic status to force. When a vendor gives several generic
    statuses one name (Leadlex's `processing`, `failed`), the generic status of the same name
    wins, then the one a user most plausibly means (PREFERRED order)."""
    names = status_names(vendor)
    candidates = [s for s in jobs.STATUSES if names[s] == name] or [
        s for s in jobs.STATUSES if names[s].lower() == name.lower()]
    if not candidates:
        known = ", ".join(dict.fromkeys(names.values()))
        raise InvalidRequest(f"to: '{name}' is not a job status of {vendor.title} (known: "
                             f"{known})", field="to", rule="enum")
    legal = [s for s in candidates if s in jobs.FORCED_TRANSITIONS.get(current, ())]
    pool = legal or candidates
    return min(pool, key=lambda s: (s.lower() != name.lower(), PREFERRED.index(s)))


# ---- jobs --------------------------------------------------------------------------------

def list_infos(conn: Connection, list_pks: set[int]) -> dict[int, dict[str, str]]:
    if not list_pks:
        return {}
    rows = conn.execute(select(t.lists.c.pk, t.lists.c.id, t.lists.c.kind, t.lists.c.name)
                        .where(t.lists.c.pk.in_(sorted(list_pks))))
    return {r.pk: {"id": r.id, "kind": r.kind, "name": r.name} for r in rows}


def job_view(job: dict[str, Any], list_info: dict[str, str] | None) -> dict[str, Any]:
    vendor = face(job["vendor"])
    status = job["status"]
    shown = getattr(vendor.module, "job_view", None)
    nxt = jobs.next_due(job)
    return {
        "id": job["id"], "vendor": job["vendor"], "kind": job["kind"], "list": list_info,
        "status": status, "vendorStatus": status_names(vendor)[status],
        "total": int(job["total"]), "processed": int(job["processed"]),
        "counts": dict(job["counts"]), "error": job["error"],
        "createdAt": iso(job["created_at"]),
        "updatedAt": _iso_or_none(job["updated_at"]),
        "completedAt": _iso_or_none(job["completed_at"]),
        "nextChangeAt": _iso_or_none(nxt),
        "legalTransitions": vendor_names(vendor, jobs.legal_targets(status)),
        "view": shown(job) if shown is not None else {},
    }


def one_job_view(conn: Connection, job: dict[str, Any]) -> dict[str, Any]:
    return job_view(job, list_infos(conn, {int(job["list_pk"])}).get(int(job["list_pk"])))


def _iso_or_none(instant: float | None) -> str | None:
    return iso(instant) if instant is not None else None


# ---- workspaces --------------------------------------------------------------------------

def clock_of(row: Any) -> Clock:
    return Clock(anchor_wall=row.anchor_wall, anchor_virtual=row.anchor_virtual,
                 speed=row.speed, frozen=row.frozen)


def summaries(conn: Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(t.workspaces).order_by(t.workspaces.c.last_seen_wall.desc())
                        .limit(limit))
    return [{"id": r.id, "createdAt": iso(r.created_at), "lastSeenAt": iso(r.last_seen_wall),
             "clock": clock_of(r).as_dict()} for r in rows]


def workspace_view(conn: Connection, ws: Workspace, default_rate_limits: str
                   ) -> dict[str, Any]:
    lists: dict[str, list[dict[str, Any]]] = {}
    for vendor in FACES:
        rows = conn.execute(select(t.lists).where(
            t.lists.c.workspace == ws.id, t.lists.c.vendor == vendor.name)
            .order_by(t.lists.c.pk).limit(MAX_LISTS_PER_VENDOR)).mappings()
        lists[vendor.name] = [
            {"id": r["id"], "kind": r["kind"], "name": r["name"],
             "leadCount": int(r["lead_count"]), "createdAt": iso(r["created_at"]),
             **({"columns": r["data"]["columns"]} if (r["data"] or {}).get("columns") else {})}
            for r in rows]
    counts: dict[str, dict[str, Any]] = {
        v.name: {"total": 0, "byStatus": {}} for v in FACES}
    for vendor_name, status, n in conn.execute(
            select(t.jobs.c.vendor, t.jobs.c.status, func.count()).where(
                t.jobs.c.workspace == ws.id).group_by(t.jobs.c.vendor, t.jobs.c.status)):
        entry = counts.setdefault(vendor_name, {"total": 0, "byStatus": {}})
        name = status_names(face(vendor_name))[status]
        entry["total"] += int(n)
        entry["byStatus"][name] = entry["byStatus"].get(name, 0) + int(n)
    return {"id": ws.id, "createdAt": iso(ws.created_at), "clock": ws.clock.as_dict(),
            "lists": lists, "jobs": counts, "scenarios": len(scenarios.armed(conn, ws.id)),
            "journalEntries": journal.count(conn, ws.id),
            "settings": settings_view(ws, default_rate_limits)}


# ---- settings ----------------------------------------------------------------------------

def settings_view(ws: Workspace, default_rate_limits: str) -> dict[str, Any]:
    names = sorted(set(DEFAULT_PACING) | set(ws.settings.get("pacing", {})))
    pacing = {}
    for name in names:
        vendor, _, kind = name.partition(".")
        p = ws.pacing(vendor, kind or None)
        pacing[name] = {k: v for k, v in (("queueWait", p.queue_wait),
                                          ("startDelay", p.start_delay),
                                          ("rowsPerSecond", p.rows_per_second))
                        if v is not None}
    plans = ws.settings.get("rate_plans", {})
    return {"pacing": pacing,
            "rateLimits": ws.settings.get("rate_limits", default_rate_limits),
            "ratePlans": {f.name: plans.get(f.name, f.default_rate_plan)
                          for f in FACES if f.rate_limits},
            "availableRatePlans": {f.name: list(f.rate_limits) for f in FACES if f.rate_limits}}


def apply_settings(ws: Workspace, body: dict[str, Any]) -> None:
    """Merge a settings update into ws.settings (the caller persists it)."""
    settings = dict(ws.settings)
    if "pacing" in body:
        pacing = {k: dict(v) for k, v in settings.get("pacing", {}).items()}
        for name, values in body["pacing"].items():
            check_pacing_name(name, f"pacing.{name}")
            entry = pacing.setdefault(name, {})
            entry.update({PACING_FIELDS[k]: v for k, v in values.items()})
        settings["pacing"] = pacing
    if "rateLimits" in body:
        settings["rate_limits"] = body["rateLimits"]
    if "ratePlans" in body:
        plans = dict(settings.get("rate_plans", {}))
        for vendor_name, plan in body["ratePlans"].items():
            field = f"ratePlans.{vendor_name}"
            vendor = _face_or_none(vendor_name)
            if vendor is None or not vendor.rate_limits:
                limited = ", ".join(f.name for f in FACES if f.rate_limits)
                raise InvalidRequest(f"{field}: '{vendor_name}' has no rate plans (vendors with "
                                     f"rate limits: {limited})", field=field, rule="vendor")
            if plan not in vendor.rate_limits:
                raise InvalidRequest(f"{field}: '{plan}' is not a {vendor.title} plan (plans: "
                                     f"{', '.join(vendor.rate_limits)})", field=field,
                                     rule="enum")
            plans[vendor_name] = plan
        settings["rate_plans"] = plans
    ws.settings = settings


def merge_fixture_pacing(ws: Workspace, pacing: dict[str, dict[str, float]]) -> None:
    merged = {k: dict(v) for k, v in ws.settings.get("pacing", {}).items()}
    for name, values in pacing.items():
        check_pacing_name(name, f"pacing.{name}")
        merged.setdefault(name, {}).update(values)
    ws.settings = {**ws.settings, "pacing": merged}


def check_pacing_name(name: str, field: str) -> None:
    vendor, dot, kind = name.partition(".")
    if _face_or_none(vendor) is None or (dot and not _PACING_KIND.match(kind)):
        raise InvalidRequest(f"{field}: pacing is set per vendor or vendor.kind (e.g. "
                             f"'inboxapp.csv'); vendors: {', '.join(f.name for f in FACES)}",
                             field=field, rule="name")


def _face_or_none(name: str) -> VendorFace | None:
    try:
        return face(name)
    except KeyError:
        return None


def check_vendor(name: str | None) -> None:
    if name is not None and _face_or_none(name) is None:
        raise InvalidRequest(f"vendor: '{name}' is not a vendor of this sandbox "
                             f"({', '.join(f.name for f in FACES)})", field="vendor",
                             rule="enum")
