"""Handlers of the control API (openapi/sandbox.yaml): the sandbox under the test's control."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from connexion import NoContent
from sqlalchemy import select

from sandbox import __version__
from sandbox import control_views as views
from sandbox.core import fixtures, jobs, journal, scenarios, webhooks, workspaces
from sandbox.core import store as t
from sandbox.core.backend import Backend, current
from sandbox.core.clock import Clock, ClockError
from sandbox.core.errors import Conflict, InvalidRequest
from sandbox.dashboard.handlers import get_dashboard, get_dashboard_asset
from sandbox.vendors import FACES, face

# openapi/sandbox.yaml routes the dashboard's page and assets here too.
__all__ = ["get_dashboard", "get_dashboard_asset"]

# libyaml's loader when present: the pure-Python one takes a second per vendor spec.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The failure message of a job forced to fail without one.
DEFAULT_FAILURE = "Import failed"


async def get_health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__,
            "vendors": [{"name": f.name, "basePath": f.prefix, "realBaseUrl": f.real_base_url}
                        for f in FACES]}


# ---- workspaces --------------------------------------------------------------------------

async def list_workspaces(limit: int = 200) -> dict[str, Any]:
    current().journal.flush()  # the last use of each workspace (see journal.Pending)
    with current().store.begin() as conn:
        return {"data": views.summaries(conn, limit)}


async def get_workspace(workspace: str) -> dict[str, Any]:
    backend = current()
    backend.journal.flush()  # its journal entry count
    with backend.workspace(workspace) as (conn, ws):
        return views.workspace_view(conn, ws, backend.settings.rate_limits)


async def delete_workspace(workspace: str) -> Any:
    current().delete(workspace)
    return NoContent, 204


async def reset_workspace(workspace: str) -> dict[str, Any]:
    backend = current()
    backend.reset(workspace)
    return await get_workspace(workspace)


async def seed_workspace(workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    backend = current()
    try:
        doc = fixtures.validate(body, "body")
    except fixtures.FixtureError as exc:
        raise _fixture_error(str(exc)) from exc
    # A seed document speaks of leads the way the vendor's own fixture file does.
    defaults = next((d for d in backend.fixtures if d["vendor"] == doc["vendor"]), {})
    doc = {**{k: defaults[k] for k in ("key_field", "alt_key_field") if k in defaults}, **doc}
    with backend.workspace(workspace) as (conn, ws):
        added = workspaces.apply_fixture(conn, ws, doc)
        if doc.get("pacing"):
            views.merge_fixture_pacing(ws, doc["pacing"])
            workspaces.save_settings(conn, ws)
    return {"added": added}


def _fixture_error(message: str) -> InvalidRequest:
    """`body: lists/0: 'name' is a required property` -> field `lists[0].name`."""
    m = re.match(r"^body: (?P<where>.*?): (?P<what>.*)$", message, re.S)
    where, what = (m.group("where"), m.group("what")) if m else ("(root)", message)
    field = "" if where == "(root)" else re.sub(r"/(\d+)", r"[\1]", where).replace("/", ".")
    field = re.sub(r"^(\d+)", r"[\1]", field)
    named = re.match(r"^'([^']+)' is a required property", what) or re.search(
        r"\('([^']+)' was unexpected\)", what)
    if named:
        field = f"{field}.{named.group(1)}" if field else named.group(1)
    field = field or "body"
    return InvalidRequest(f"{field}: {what}", field=field, rule="fixture")


# ---- clock -------------------------------------------------------------------------------

def _change_clock(workspace: str, change: Callable[[Clock], Clock], field: str
                  ) -> dict[str, Any]:
    try:
        ws = current().change_clock(workspace, change)
    except ClockError as exc:
        raise InvalidRequest(f"{field}: {exc}", field=field, rule="clock") from exc
    return ws.clock.as_dict()


async def get_clock(workspace: str) -> dict[str, Any]:
    with current().workspace(workspace) as (_conn, ws):
        return ws.clock.as_dict()


async def advance_clock(workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    seconds = float(body["seconds"])
    clock = _change_clock(workspace, lambda c: c.advance(seconds), "seconds")
    # Only answer once every webhook the move made due has been attempted.
    await webhooks.deliver_due(current(), workspace)
    return clock


async def freeze_clock(workspace: str) -> dict[str, Any]:
    return _change_clock(workspace, lambda c: c.freeze(), "clock")


async def resume_clock(workspace: str) -> dict[str, Any]:
    clock = _change_clock(workspace, lambda c: c.resume(), "clock")
    await webhooks.deliver_due(current(), workspace)
    return clock


async def set_clock_speed(workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    speed = float(body["speed"])
    return _change_clock(workspace, lambda c: c.with_speed(speed), "speed")


# ---- jobs --------------------------------------------------------------------------------

async def list_jobs(workspace: str, vendor: str | None = None, status: str | None = None,
                    limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    views.check_vendor(vendor)
    with current().workspace(workspace) as (conn, ws):
        q = select(t.jobs).where(t.jobs.c.workspace == ws.id)
        if vendor:
            q = q.where(t.jobs.c.vendor == vendor)
        if status:
            q = q.where(t.jobs.c.status == status)
        if cursor:
            q = q.where(t.jobs.c.pk > int(cursor))
        rows = [dict(r) for r in conn.execute(q.order_by(t.jobs.c.pk).limit(limit + 1))
                .mappings()]
        page = rows[:limit]
        infos = views.list_infos(conn, {int(r["list_pk"]) for r in page})
        return {"data": [views.job_view(r, infos.get(int(r["list_pk"]))) for r in page],
                "nextCursor": str(page[-1]["pk"]) if len(rows) > limit else None}


def _find_job(conn: Any, workspace: str, job_id: str, vendor: str | None) -> dict[str, Any]:
    views.check_vendor(vendor)
    if vendor:
        return jobs.find(conn, workspace, vendor, job_id)
    return jobs.find_any_vendor(conn, workspace, job_id)


async def get_job(workspace: str, job_id: str, vendor: str | None = None) -> dict[str, Any]:
    with current().workspace(workspace) as (conn, ws):
        return views.one_job_view(conn, _find_job(conn, ws.id, job_id, vendor))


async def transition_job(workspace: str, job_id: str, body: dict[str, Any],
                         vendor: str | None = None) -> dict[str, Any]:
    backend = current()
    with backend.workspace(workspace) as (conn, ws):
        job = _find_job(conn, ws.id, job_id, vendor)
        updated = _force(backend, conn, ws, job, body["to"], body.get("error"))
        view = views.one_job_view(conn, updated)
    await webhooks.deliver_due(backend, workspace)
    return view


def _force(backend: Backend, conn: Any, ws: Any, job: dict[str, Any], to: str,
           error: str | None) -> dict[str, Any]:
    vendor = face(job["vendor"])
    target = views.generic_status(vendor, to, job["status"])
    try:
        updated = jobs.force(conn, job, target, at=ws.now, seed=ws.seed,
                             error=(error or DEFAULT_FAILURE) if target == "failed" else None,
                             pacing=ws.pacing(job["vendor"], job["kind"]))
    except Conflict as exc:
        if "legal" not in exc.extra:
            raise
        now = views.status_names(vendor)[job["status"]]
        legal = views.vendor_names(vendor, exc.extra["legal"])
        options = ", ".join(legal) if legal else "nothing (it is final)"
        raise Conflict(f"cannot move {vendor.title} job '{job['id']}' from '{now}' to '{to}': "
                       f"from '{now}' it can go to {options}", field="to", rule="transition",
                       legal=legal, current=now) from exc
    if updated["status"] in jobs.TERMINAL:
        # A forced ending is an ending: subscribers hear about it as if the clock did it.
        for hook in backend.job_finished_hooks:
            hook(conn, ws, updated)
    return updated


# ---- settings ----------------------------------------------------------------------------

async def get_settings(workspace: str) -> dict[str, Any]:
    backend = current()
    with backend.workspace(workspace) as (_conn, ws):
        return views.settings_view(ws, backend.settings.rate_limits)


async def update_settings(workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    backend = current()
    with backend.workspace(workspace) as (conn, ws):
        views.apply_settings(ws, body)
        workspaces.save_settings(conn, ws)
        return views.settings_view(ws, backend.settings.rate_limits)


# ---- scenarios ---------------------------------------------------------------------------

@lru_cache(maxsize=8)
def vendor_operation_ids(spec_dir: Path) -> frozenset[str]:
    ids: set[str] = set()
    for vendor in FACES:
        spec = yaml.load((spec_dir / vendor.spec_file).read_text(), Loader=_YAML_LOADER)
        for item in spec.get("paths", {}).values():
            ids.update(op["operationId"] for op in item.values()
                       if isinstance(op, dict) and "operationId" in op)
    return frozenset(ids)


async def list_scenarios(workspace: str) -> dict[str, Any]:
    with current().workspace(workspace) as (conn, ws):
        return {"data": scenarios.armed(conn, ws.id)}


async def arm_scenario(workspace: str, body: dict[str, Any]) -> Any:
    backend = current()
    operation_id = body["operationId"]
    known = vendor_operation_ids(backend.settings.spec_dir)
    if operation_id not in known:
        close = difflib.get_close_matches(operation_id, sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InvalidRequest(f"operationId: '{operation_id}' is not an operation of any vendor "
                             f"spec{hint}", field="operationId", rule="operation")
    if body.get("status") is None and body.get("delay") is None:
        raise InvalidRequest("status: give a status to answer, a delay, or both",
                             field="status", rule="required")
    scenario = scenarios.build(body.get("status"), body.get("delay"), body.get("retryAfter"),
                               body.get("message"))
    with backend.workspace(workspace) as (conn, ws):
        armed = scenarios.arm(conn, ws.id, operation_id, scenario, int(body.get("times", 1)))
    err = scenario.error()
    retry = err.extra.get("retry_after") if err is not None else scenario.retry_after
    return {**armed, "retryAfter": retry}, 201


async def clear_scenarios(workspace: str) -> dict[str, Any]:
    with current().workspace(workspace) as (conn, ws):
        return {"cleared": scenarios.disarm(conn, ws.id)}


# ---- journal -----------------------------------------------------------------------------

async def list_requests(workspace: str, operation_id: str | None = None,
                        status: int | None = None, kind: str | None = None,
                        vendor: str | None = None, limit: int = 100,
                        cursor: str | None = None) -> dict[str, Any]:
    views.check_vendor(vendor)
    current().journal.flush()
    with current().workspace(workspace) as (conn, ws):
        rows = journal.entries(conn, ws.id, operation_id=operation_id, status=status,
                               kind=kind, vendor=vendor, limit=limit + 1,
                               after=int(cursor or 0))
    page = rows[:limit]
    return {"data": page, "nextCursor": str(page[-1]["seq"]) if len(rows) > limit else None}


async def clear_requests(workspace: str) -> dict[str, Any]:
    current().journal.flush()
    with current().workspace(workspace) as (conn, ws):
        return {"cleared": journal.clear(conn, ws.id)}
