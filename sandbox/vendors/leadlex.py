"""Leadlex face (openapi/leadlex.yaml): contact imports (synchronous up to 500 rows, queued
beyond, replayable by Idempotency-Key), contacts, lists and webhook registration, in Leadlex's
shapes and error envelope."""

from __future__ import annotations

import csv
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from connexion import request
from sqlalchemy import Connection, false, func, insert, or_, select, update

from sandbox.core import idempotency, jobs, lists, webhooks
from sandbox.core import store as t
from sandbox.core.backend import Backend, current
from sandbox.core.clock import iso, parse_iso
from sandbox.core.errors import InvalidRequest, SandboxError
from sandbox.core.imports import (
    EMAIL_RE,
    ImportPolicy,
    count_csv_rows,
    csv_header,
    encode_jsonl,
)
from sandbox.core.imports import normalise as normalise_key
from sandbox.core.workspaces import Workspace
from sandbox.vendors import leadlex_contacts as contacts

VENDOR = "leadlex"
STORE_ID = STORE_KIND = "contacts"  # the workspace contact store (fixtures/leadlex.yaml)
SYNC_LIMIT = 500  # documented: up to 500 rows are processed inside the request
STATUS_NAMES = {"created": "queued", "queued": "queued", "starting": "processing",
                "running": "processing", "paused": "processing", "completed": "completed",
                "failed": "failed", "canceled": "failed"}
ERROR_CODES = {400: "validation_error", 401: "invalid_key", 403: "insufficient_permissions",
               404: "not_found", 405: "method_not_allowed", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
               429: "rate_limited", 500: "internal_error", 502: "service_unavailable",
               503: "service_unavailable", 504: "service_unavailable"}
# How request headers are named in details.fields.
FIELD_NAMES = {"authorization": "Authorization", "content-type": "Content-Type"}
# POST /v1/webhooks names its schema failures with its own documented codes.
WEBHOOK_CODES = {"url": "invalid_url", "events": "invalid_events"}


# ---- errors ---------------------------------------------------------------------------------

def error_body(err: SandboxError) -> dict[str, Any]:
    code = err.extra.get("vendor_code") or _code(err)
    message = err.message
    detail = err.extra.get("field_message")
    if err.rule == "maxItems" and err.field == "contacts":
        message, detail = "More than 500 contacts", "Too many items"  # documented wording
    elif err.rule == "anyOf" and err.field == "rows":
        message, detail = "Neither rows nor csv provided", "Provide either rows or csv"
    body: dict[str, Any] = {"code": code, "message": message}
    if err.field:
        name = FIELD_NAMES.get(err.field, err.field)
        prefix = f"{err.field}: "
        detail = detail or (message[len(prefix):] if message.startswith(prefix) else message)
        body["details"] = {"fields": {name: detail}}
    return {"error": body}


def _code(err: SandboxError) -> str:
    if err.status == 400 and err.field:
        root = err.field.split(".", 1)[0].split("[", 1)[0]
        if root in WEBHOOK_CODES and err.field == root and err.rule == "required":
            return "missing_required_field"
        if root in WEBHOOK_CODES:
            return WEBHOOK_CODES[root]
    if err.status in ERROR_CODES:
        return ERROR_CODES[err.status]
    return "internal_error" if err.status >= 500 else "validation_error"


# ---- jobs -----------------------------------------------------------------------------------

def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """An import job as POST /v1/import/contacts answers it (`data`)."""
    counts = job["counts"]
    return {"job_id": job["id"], "status": STATUS_NAMES.get(job["status"], job["status"]),
            "created_count": counts["added"],
            "updated_count": counts["updated"] + counts["unchanged"],
            "skipped_count": counts["skipped"] + counts["blocked"],
            "errors": [dict(e) for e in job["row_errors"]]}


def event_data(job: dict[str, Any]) -> dict[str, Any]:
    """`data` of the import.completed event (ImportCompletedEventData)."""
    view = job_view(job)
    return {"job_id": view["job_id"],
            "status": "completed" if job["status"] == "completed" else "failed",
            "created_count": view["created_count"], "updated_count": view["updated_count"],
            "skipped_count": view["skipped_count"], "error_count": job["counts"]["failed"]}


webhooks.EVENT_DATA[VENDOR] = event_data


# ---- import ---------------------------------------------------------------------------------

def _store(conn: Connection, ws: Workspace) -> dict[str, Any]:
    return lists.get(conn, ws.id, VENDOR, STORE_ID, kind=STORE_KIND)


async def import_contacts(body: dict[str, Any], user: str) -> tuple[dict[str, Any], int]:
    backend = current()
    key = request.headers.get("idempotency-key")
    with backend.workspace(user) as (conn, ws):
        answer = idempotency.once(
            conn, workspace=ws.id, vendor=VENDOR, key=key, body=body, now=ws.now,
            run=lambda: idempotency.Answer(200, {"data": _import(backend, conn, ws, body)}),
            vendor_code="idempotency_key_reused")
    return answer.body, answer.status


def _import(backend: Backend, conn: Connection, ws: Workspace, body: dict[str, Any]
            ) -> dict[str, Any]:
    if "rows" in body and "csv" in body:
        raise InvalidRequest("csv: provide either rows or csv, not both", field="csv",
                             rule="oneOf")
    plan: dict[str, Any] = {"resolve": contacts.RESOLVER}
    if "csv" in body:
        has_header = bool(body.get("has_header", True))
        # The CSV text itself is the job's source: a 20 MB file is stored, never exploded.
        # Old Mac line ends (a bare CR) would stop the csv module: read it universally.
        fmt, content = "csv", body["csv"]
        if "\r" in content:
            content = content.replace("\r\n", "\n").replace("\r", "\n")
        try:
            header, offset = csv_header(content, has_header)
            total = count_csv_rows(content, offset)
        except csv.Error as exc:
            raise InvalidRequest(f"csv: unreadable CSV ({exc})", field="csv",
                                 rule="csv") from None
        plan.update(csv_header=header,
                    csv_mapping=contacts.csv_mapping(body.get("mapping"), header, has_header))
    else:
        fmt, content, offset, total = "jsonl", encode_jsonl(body["rows"]), 0, len(body["rows"])
    policy = ImportPolicy(key_fields=("email", "phone"), alt_key_field="phone",
                          phone_field="phone",
                          on_existing="update" if body.get("update_existing") else "skip",
                          tags=tuple(body.get("tags") or ()))
    args: dict[str, Any] = dict(
        vendor=VENDOR, job_id="imp_" + backend.new_token(conn, ws, "leadlex-job", 26).upper(),
        list_pk=_store(conn, ws)["pk"], kind="contacts", source_format=fmt, content=content,
        offset=offset, total=total, policy=policy)
    if total <= SYNC_LIMIT:
        job, _results = jobs.run_now(conn, workspace=ws.id, seed=ws.seed, at=ws.now, plan=plan,
                                     **args)
        return job_view(job)
    plan["notify"] = "import.completed"
    pk = jobs.create(conn, workspace=ws.id, now=ws.now, pacing=ws.pacing(VENDOR), plan=plan,
                     **args)
    backend.settle(conn, ws)
    return job_view(jobs.get_by_pk(conn, pk))


# ---- contacts -------------------------------------------------------------------------------

def _new_contacts(backend: Backend, conn: Connection, ws: Workspace, items: list[dict[str, Any]],
                  prefix: str = "") -> list[dict[str, Any]]:
    """Validate and insert contacts all-or-nothing; `prefix` names the items in errors."""
    store = _store(conn, ws)
    prepared: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"{prefix}[{i}]." if prefix else ""
        try:
            data = contacts.normalise(item)
        except contacts.RowError as exc:
            message = str(exc) if str(exc).startswith(exc.field) else f"{exc.field}: {exc}"
            raise InvalidRequest(f"{where}{message}", field=f"{where}{exc.field}",
                                 rule=exc.code) from None
        email = data.get("email")
        if email and not EMAIL_RE.match(email):
            raise InvalidRequest(f"{where}email: '{email}' is not a valid email address",
                                 field=f"{where}email", rule="format")
        key = normalise_key("email", email) if email else None
        if key is not None and key in seen:
            raise InvalidRequest(f"{where}email: repeats {prefix}[{seen[key]}].email",
                                 field=f"{where}email", rule="unique",
                                 field_message="Must be unique")
        if key is not None:
            seen[key] = i
        prepared.append(data)
    taken = [seen[k] for k in conn.execute(select(t.leads.c.key).where(
        t.leads.c.list_pk == store["pk"], t.leads.c.key.in_(list(seen)))).scalars()]
    if taken:
        where = f"{prefix}[{min(taken)}]." if prefix else ""
        raise InvalidRequest(f"A contact with this email already exists ({where}email)",
                             field=f"{where}email", rule="unique",
                             field_message="Must be unique")
    rows = []
    for data in prepared:
        # A contact without email still needs a store key: a deterministic reference.
        key = (normalise_key("email", data["email"]) if data.get("email")
               else "ref:" + backend.new_uuid(conn, ws, "leadlex-contact-ref"))
        rows.append({"list_pk": store["pk"], "key": key, "data": data,
                     "alt_key": normalise_key("phone", data["phone"]) if data.get("phone")
                     else None, "created_at": ws.now, "updated_at": ws.now, "job_id": None})
    if rows:
        conn.execute(insert(t.leads), rows)
        conn.execute(update(t.lists).where(t.lists.c.pk == store["pk"])
                     .values(lead_count=t.lists.c.lead_count + len(rows)))
    return rows


async def create_contact(body: dict[str, Any], user: str) -> tuple[dict[str, Any], int]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        (lead,) = _new_contacts(backend, conn, ws, [body])
        return {"data": contacts.created_view(ws.seed, ws.id, lead)}, 201


async def bulk_create_contacts(body: dict[str, Any], user: str) -> tuple[dict[str, Any], int]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        created = _new_contacts(backend, conn, ws, body["contacts"], prefix="contacts")
        return {"data": {"created": len(created), "contacts": [
            contacts.created_view(ws.seed, ws.id, lead) for lead in created]}}, 201


SORTS = {"created_at", "updated_date", "full_name"}


async def list_contacts(user: str, page: int = 1, per_page: int = 50, search: str | None = None,
                        list_id: str | None = None, created_after: str | None = None,
                        sort: str | None = None) -> dict[str, Any]:
    backend = current()
    leads = t.leads
    created = func.coalesce(leads.c.data["created_epoch"].as_float(), leads.c.created_at)
    with backend.workspace(user) as (conn, ws):
        conds = [leads.c.list_pk == _store(conn, ws)["pk"]]
        if search and search.strip():
            needle = search.strip().lower()
            conds.append(or_(*[func.lower(leads.c.data[name].as_string()).contains(
                needle, autoescape=True) for name in ("full_name", "email", "company")]))
        if list_id is not None:
            conds.append(_in_list(conn, ws, list_id))
        if created_after is not None:
            try:
                after = parse_iso(created_after)
            except ValueError:
                raise InvalidRequest(f"created_after: '{created_after}' is not an ISO 8601 "
                                     "date-time", field="created_after", rule="format") from None
            conds.append(created > after)
        total = conn.execute(select(func.count()).select_from(leads).where(*conds)).scalar_one()
        name = (sort or "-created_at").lstrip("-")
        column = {"created_at": created, "updated_date": leads.c.updated_at,
                  "full_name": func.lower(func.coalesce(leads.c.data["full_name"].as_string(),
                                                        leads.c.data["email"].as_string()))}[name]
        desc = (sort or "-created_at").startswith("-")
        order = [column.desc(), leads.c.pk.desc()] if desc else [column.asc(), leads.c.pk.asc()]
        # Past the last row a page is empty; capping keeps a huge page number (a 64-bit page
        # times per_page) from overflowing the database's OFFSET.
        rows = conn.execute(select(leads).where(*conds).order_by(*order)
                            .offset(min((page - 1) * per_page, total)).limit(per_page)).mappings()
        return {"data": {"contacts": [contacts.list_view(ws.seed, ws.id, dict(r))
                                      for r in rows]},
                "meta": {"page": page, "per_page": per_page, "total": int(total)}}


def _in_list(conn: Connection, ws: Workspace, list_id: str) -> Any:
    """Contacts that belong to a list (an unknown list matches nothing, it is not a 404)."""
    row = conn.execute(select(t.lists.c.pk).where(
        t.lists.c.workspace == ws.id, t.lists.c.vendor == VENDOR, t.lists.c.kind == "list",
        t.lists.c.id == list_id)).first()
    if row is None:
        return false()
    members = t.leads.alias("members")
    return t.leads.c.key.in_(select(members.c.key).where(members.c.list_pk == row.pk))


# ---- lists ----------------------------------------------------------------------------------

async def create_list(body: dict[str, Any], user: str) -> tuple[dict[str, Any], int]:
    backend = current()
    name = body["name"]
    if not name.strip():
        raise InvalidRequest("name: must not be blank", field="name", rule="minLength")
    with backend.workspace(user) as (conn, ws):
        if lists.name_taken(conn, ws.id, VENDOR, name, kind="list"):
            raise InvalidRequest("A list with this name already exists", field="name",
                                 rule="unique", field_message="Must be unique")
        row = lists.create(conn, ws.id, VENDOR, list_id=backend.new_uuid(conn, ws, "leadlex-list"),
                           kind="list", name=name, at=ws.now,
                           description=body.get("description"))
        return {"data": {"id": row["id"], "name": row["name"],
                         "description": row["description"], "contact_count": row["lead_count"],
                         "created_at": iso(row["created_at"], millis=False)}}, 201


# ---- webhooks -------------------------------------------------------------------------------

def check_webhook_url(url: str, allow: tuple[str, ...]) -> None:
    """Leadlex wants https and refuses private addresses (SSRF). Loopback and the operator's
    --webhook-allow hosts are accepted over http too: that is where a sandbox delivers."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"} or not host:
        raise InvalidRequest(f"url: '{url}' is not an absolute https:// URL", field="url",
                             rule="format")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    local = host == "localhost" or (ip is not None and ip.is_loopback)
    if local or host in {h.strip().strip("[]").lower() for h in allow}:
        return
    if parts.scheme != "https":
        raise InvalidRequest("url: must start with https://", field="url", rule="https")
    if ip is not None and (ip.is_private or ip.is_link_local or ip.is_reserved
                           or ip.is_multicast or ip.is_unspecified):
        raise InvalidRequest(f"url: {host} is in a private IP range", field="url", rule="ssrf")


async def create_webhook(body: dict[str, Any], user: str) -> tuple[dict[str, Any], int]:
    backend = current()
    check_webhook_url(body["url"], backend.settings.webhook_allow)
    with backend.workspace(user) as (conn, ws):
        webhook_id = backend.new_uuid(conn, ws, "leadlex-webhook")
        secret = "whsec_" + backend.new_token(conn, ws, "leadlex-webhook-secret", 64)
        row = webhooks.register(conn, ws, vendor=VENDOR, webhook_id=webhook_id,
                                url=body["url"], events=list(body["events"]), secret=secret,
                                description=body.get("description"),
                                active=body.get("active", True))
        return {"data": {"webhook": {
            "id": webhook_id, "url": body["url"], "events": list(body["events"]),
            "description": body.get("description"), "active": bool(body.get("active", True)),
            "secret": secret, "last_delivery_status": None, "last_delivery_at": None,
            "created_at": iso(float(row.get("created_at", ws.now)), millis=False)}}}, 201
