"""Smartlead face (openapi/smartlead.yaml): lead lists and their bulk import, the global domain
block list and adding leads to a campaign, in Smartlead's shapes and error envelope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from sandbox.core import jobs, lists
from sandbox.core import store as t
from sandbox.core.backend import current
from sandbox.core.clock import iso
from sandbox.core.errors import Internal, NotFound, RateLimited, SandboxError
from sandbox.core.imports import ImportPolicy, RowResult, encode_jsonl, normalise
from sandbox.core.workspaces import Workspace

VENDOR = "smartlead"
# Smartlead shows no import job (imports answer inside the request); the control API and the
# dashboard still show the jobs the sandbox records, under the generic names.
STATUS_NAMES = {s: s for s in jobs.STATUSES}
# The core reports schema violations as 400 validation_error; Smartlead documents 400 for
# malformed requests and 422 for "request validation failed" (see sandbox/http/errors.py).
STATUS_FOR_CODE = {"validation_error": 422}
ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE",
               415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
               429: "RATE_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE"}
# Lists created through the API are numbered from here (the fixtures seed 1, 2 and 500).
FIRST_LIST_ID = 3
# The Retry-After of the `fail_rate_limit` magic email (the guide's own example value).
MAGIC_RETRY_AFTER = 30
_PATTERN_HINTS = {"id": "must be a positive integer (a lead list id)",
                  "campaign_id": "must be a positive integer (a campaign id)",
                  "tagIds": "must be comma-separated integer tag ids, e.g. 12,15"}


# ---- errors ------------------------------------------------------------------------------

def error_body(err: SandboxError) -> dict[str, Any]:
    """The error-handling guide's envelope: {"error": {code, message, details, retry_after}}."""
    code = err.extra.get("vendor_code") or ERROR_CODES.get(err.status, "ERROR")
    field, message = err.field, err.message
    if err.status == 401 and field in (None, "authorization", "key"):
        # The core names the credential generically; Smartlead's is the api_key parameter.
        field = "api_key"
        message = ("api_key: missing API key (pass it as the api_key query parameter)"
                   if err.rule == "required" else f"api_key: {err.message}")
    elif err.rule == "pattern" and field:
        hint = _PATTERN_HINTS.get(field)
        if hint is None and field.startswith("domain_block_list["):
            hint = "must be a domain (rival.io) or an email address (ceo@rival.io)"
        message = f"{field}: {hint}" if hint else message
    elif err.rule == "not" and field:
        message = f"{field}: is not allowed"
    if field and field not in message:
        message = f"{field}: {message}"
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["details"] = {"field": field, "constraint": err.rule or code.lower()}
    if err.status == 429:
        retry = err.extra.get("retry_after") or err.headers.get("Retry-After") or 60
        body["retry_after"] = int(retry)
    return {"error": body}


# ---- views -------------------------------------------------------------------------------

def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """A recorded import, in the terms of the lead-list import answer."""
    counts = job["counts"]
    return {"id": job["id"], "kind": job["kind"],
            "status": STATUS_NAMES.get(job["status"], job["status"]),
            "total_leads": job["total"], "imported": counts["added"],
            "duplicates": counts["skipped"] + counts["updated"] + counts["unchanged"],
            "blocked": counts["blocked"], "invalid": counts["failed"],
            "created_at": iso(job["created_at"])}


def _list_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": int(row["id"]), "name": row["name"], "lead_count": int(row["lead_count"]),
            "created_at": iso(row["created_at"])}


def _block_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["rank"], "email_or_domain": entry["value"],
            "created_at": iso(entry["created_at"]), "source": entry["source"],
            "client_id": entry["client_id"]}


# ---- lead lists --------------------------------------------------------------------------

async def list_lead_lists(user: str, list_name: str | None = None, tag_ids: str | None = None,
                          limit: int = 10, offset: int = 0) -> dict[str, Any]:
    with current().workspace(user) as (conn, ws):
        # Tagging lists is not served, so no list carries a tag and a tag filter matches none.
        rows = [] if tag_ids else lists.all_of(conn, ws.id, VENDOR, name_contains=list_name,
                                              offset=offset, limit=limit)
        return {"ok": True, "data": [_list_view(r) for r in rows]}


async def create_lead_list(body: dict[str, Any], user: str) -> dict[str, Any]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        while True:
            list_id = str(backend.next_number(conn, ws, "smartlead-list", start=FIRST_LIST_ID))
            if not _list_exists(conn, ws, list_id):
                break
        row = lists.create(conn, ws.id, VENDOR, list_id=list_id, kind="list",
                           name=body["listName"], at=ws.now)
        view = _list_view(row)
        del view["lead_count"]
        return {"ok": True, "data": view}


def _list_exists(conn: Connection, ws: Workspace, list_id: str) -> bool:
    try:
        lists.get(conn, ws.id, VENDOR, list_id)
    except NotFound:
        return False
    return True


def _lead_list(conn: Connection, ws: Workspace, list_id: str) -> dict[str, Any]:
    return lists.get(conn, ws.id, VENDOR, int(list_id), field="id", noun="lead list")


async def get_lead_list(id_: str, user: str) -> dict[str, Any]:
    with current().workspace(user) as (conn, ws):
        return {"ok": True, "data": _list_view(_lead_list(conn, ws, id_))}


async def import_leads_to_list(id_: str, body: dict[str, Any], user: str) -> dict[str, Any]:
    leads = body["leadList"]
    ignore_block = bool((body.get("csvSettings") or {}).get("ignoreGlobalBlockList", False))
    with current().workspace(user) as (conn, ws):
        target = _lead_list(conn, ws, id_)
        extra = {"fileName": body["fileName"]}
        for name in ("emailFieldsAdded", "customFields", "csvSettings"):
            if body.get(name) is not None:
                extra[name] = body[name]
        job, _results = _import(conn, ws, target, "list-import", leads, "leadList",
                                check_block=not ignore_block, extra=extra)
        counts = job["counts"]
        return {"ok": True, "data": {
            "total_leads": len(leads), "imported": counts["added"],
            "duplicates": counts["skipped"] + counts["updated"] + counts["unchanged"],
            "blocked": counts["blocked"]}}


def _import(conn: Connection, ws: Workspace, target: dict[str, Any], kind: str,
            rows: list[dict[str, Any]], field: str, *, check_block: bool,
            extra: dict[str, Any] | None = None, positions: list[int] | None = None
            ) -> tuple[dict[str, Any], list[RowResult]]:
    """Run the rows into a list or campaign now. A magic `fail_...` email fails the whole
    request; raising rolls the transaction back, so nothing of it is applied. `positions`
    maps each row to its index in the request (when some leads were held back)."""
    backend = current()
    policy = ImportPolicy(key_fields=("email",), on_existing="skip",
                          check_block_list=check_block, email_field="email")
    job, results = jobs.run_now(
        conn, workspace=ws.id, seed=ws.seed, at=ws.now, vendor=VENDOR,
        job_id=str(backend.next_number(conn, ws, "smartlead-import")), list_pk=target["pk"],
        kind=kind, source_format="jsonl", content=encode_jsonl(rows), offset=0,
        total=len(rows), policy=policy, extra=extra or {})
    if job["status"] == "failed":
        index = next((r.index for r in results if r.fail_job), len(results) - 1)
        where = f"{field}[{positions[index] if positions else index}].email"
        if job["error"] == "Rate limit exceeded":
            raise RateLimited(f"Rate limit exceeded. Please retry after {MAGIC_RETRY_AFTER} "
                              f"seconds ({where} is the sandbox's rate-limit test value).",
                              field=where, rule="fail_value",
                              headers={"Retry-After": str(MAGIC_RETRY_AFTER)},
                              retry_after=MAGIC_RETRY_AFTER)
        raise Internal(f"{where}: the import failed: {job['error']} (sandbox test value; "
                       "nothing was imported)", field=where, rule="fail_value")
    return job, results


# ---- block list --------------------------------------------------------------------------

def _block_entries(conn: Connection, ws: Workspace) -> list[dict[str, Any]]:
    """Every entry of the workspace, oldest first, with its per-workspace id (`rank`):
    primary keys are shared by all workspaces, so they cannot be shown as ids."""
    rows = conn.execute(select(t.block_list).where(
        t.block_list.c.workspace == ws.id, t.block_list.c.vendor == VENDOR)
        .order_by(t.block_list.c.pk)).mappings()
    return [{**dict(r), "rank": i} for i, r in enumerate(rows, start=1)]


async def get_domain_block_list(user: str, offset: int = 0, limit: int = 100,
                                filter_client_id: int | None = None,
                                filter_email_or_domain: str | None = None
                                ) -> list[dict[str, Any]]:
    with current().workspace(user) as (conn, ws):
        entries = _block_entries(conn, ws)
        if filter_client_id is not None:
            entries = [e for e in entries if e["client_id"] == filter_client_id]
        if filter_email_or_domain:
            needle = filter_email_or_domain.strip().lower()
            entries = [e for e in entries if needle in e["value"]]
        return [_block_view(e) for e in entries[offset:offset + limit]]


async def add_domain_block_list(body: dict[str, Any], user: str) -> dict[str, Any]:
    client_id = body.get("client_id")
    values = list(dict.fromkeys(v.strip().lower() for v in body["domain_block_list"]))
    with current().workspace(user) as (conn, ws):
        have = {(e["value"], e["client_id"]) for e in _block_entries(conn, ws)}
        created: set[int] = set()
        for value in values:
            if (value, client_id) in have:
                continue
            inserted = conn.execute(insert(t.block_list).values(
                workspace=ws.id, vendor=VENDOR, value=value, client_id=client_id,
                source="api", created_at=ws.now)).inserted_primary_key
            assert inserted is not None
            created.add(int(inserted[0]))
        entries = [_block_view(e) for e in _block_entries(conn, ws) if e["pk"] in created]
        return {"ok": True, "data": {"added": len(entries), "entries": entries}}


# ---- campaigns ---------------------------------------------------------------------------

async def add_campaign_leads(campaign_id: str, body: dict[str, Any], user: str
                             ) -> dict[str, Any]:
    leads = body["lead_list"]
    settings = body.get("settings") or {}
    with current().workspace(user) as (conn, ws):
        campaign = lists.get(conn, ws.id, VENDOR, int(campaign_id), kind="campaign",
                             field="campaign_id", noun="campaign")
        keys = {normalise("email", lead["email"]) for lead in leads if lead["email"].strip()}
        already = _keys_in(conn, [campaign["pk"]], keys)
        elsewhere: set[str] = set()
        if not settings.get("ignore_duplicate_leads_in_other_campaign", False):
            others = [r["pk"] for r in lists.all_of(conn, ws.id, VENDOR, kind="campaign")
                      if r["pk"] != campaign["pk"]]
            elsewhere = _keys_in(conn, others, keys) - already
        # Leads already in another campaign are held back: Smartlead counts them as duplicates.
        positions = [i for i, lead in enumerate(leads)
                     if normalise("email", lead["email"]) not in elsewhere]
        rows = [leads[i] for i in positions]
        held = len(leads) - len(rows)
        _job, results = _import(conn, ws, campaign, "campaign-leads", rows, "lead_list",
                                check_block=not settings.get("ignore_global_block_list", False),
                                positions=positions)
        out = {"added": 0, "already": 0, "duplicate": held, "blocked": 0}
        invalid: list[str] = []
        for res in results:
            if res.outcome == "added":
                out["added"] += 1
            elif res.outcome == "blocked":
                out["blocked"] += 1
            elif res.outcome == "failed":
                invalid.append(str(rows[res.index]["email"]))
            elif res.key in already:
                out["already"] += 1
            else:
                out["duplicate"] += 1
        return {"ok": True, "upload_count": out["added"], "total_leads": len(leads),
                "block_count": out["blocked"], "duplicate_count": out["duplicate"],
                "invalid_email_count": len(invalid), "invalid_emails": invalid,
                "already_added_to_campaign": out["already"], "unsubscribed_leads": [],
                "is_lead_limit_exhausted": False, "lead_import_stopped_count": 0,
                "bounce_count": 0}


def _keys_in(conn: Connection, list_pks: list[int], keys: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(keys)
    if not list_pks:
        return found
    for start in range(0, len(ordered), 500):
        found.update(conn.execute(select(t.leads.c.key).where(
            t.leads.c.list_pk.in_(list_pks),
            t.leads.c.key.in_(ordered[start:start + 500]))).scalars())
    return found
