"""InboxApp face (openapi/inboxapp.yaml): import jobs into lists, adding leads to lists and
campaigns, in InboxApp's shapes and error envelope."""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select

from sandbox.core import jobs, lists
from sandbox.core import store as t
from sandbox.core.applying import FOLDABLE
from sandbox.core.backend import current
from sandbox.core.clock import iso
from sandbox.core.errors import (
    Conflict,
    Internal,
    InvalidRequest,
    RateLimited,
    SandboxError,
    Unprocessable,
)
from sandbox.core.fakes import faker_for, is_resolvable_username, stamped, x_profile_parts
from sandbox.core.imports import (
    ImportPolicy,
    count_csv_rows,
    csv_header,
    encode_jsonl,
    is_fail_value,
)
from sandbox.core.jobs import ResolveContext
from sandbox.core.sql import Fast

VENDOR = "inboxapp"
# Generic lifecycle names are InboxApp's own.
STATUS_NAMES = {s: s for s in jobs.STATUSES if s != "created"}
ERROR_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
               404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
               413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
               422: "UNPROCESSABLE_ENTITY", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR",
               503: "SERVICE_UNAVAILABLE"}
# Profile columns a CSV can map to, besides the list's custom columns.
BUILTIN_COLUMNS = ("username", "platformId", "externalId", "displayName", "bio", "location",
                   "websiteUrl")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_EXTERNAL_ID = re.compile(r"^[0-9a-z]{20,30}$")
# Platform ids starting with these digits resolve to suspended / deleted accounts.
SUSPENDED_ID_PREFIX, DELETED_ID_PREFIX = "999", "888"
# `overwrite`: the CSV's values replace the lead's for the columns the CSV has (others kept).
MERGE_POLICY = {"overwrite": "update", "merge": "merge", "skip": "skip"}
NOT_FOUND_CODES = {"listId": "LIST_NOT_FOUND", "campaignId": "CAMPAIGN_NOT_FOUND",
                   "importJobId": "IMPORT_JOB_NOT_FOUND"}
# A magic `fail_rate_limit` identifier in a synchronous request: InboxApp's documented 429.
MAGIC_RETRY_AFTER = 60


def error_body(err: SandboxError) -> dict[str, Any]:
    code = err.extra.get("vendor_code") or ERROR_CODES.get(err.status, "ERROR")
    if err.status == 404 and err.field in NOT_FOUND_CODES:
        code = NOT_FOUND_CODES[err.field]
    if err.status == 400 and err.code == "malformed_body":
        code = "BAD_REQUEST"
    body: dict[str, Any] = {"code": code, "message": err.message, "status": err.status}
    if err.field:
        body["field"] = err.field
    return {"error": body}


# ---- row resolution (usernames and ids -> X profiles) ------------------------------------

def resolve_profile(row: dict[str, Any], ctx: ResolveContext) -> dict[str, Any]:
    """Turn an identifier row into the Prospect stored in the list; unresolvable identifiers
    (invalid, suspended, deleted) are marked so the row counts as failed."""
    # The same rows come back with every import of a list: what a row resolves to is
    # remembered, and only the instants are new (a profile was ~60% of a paced row's cost).
    # Text values only (a CSV's): 1, 1.0 and True are one key but three different rows.
    key = ((ctx.seed, ctx.workspace, *row.items())
           if set(map(type, row.values())) == _TEXT else None)
    known = _RESOLVED.get(key) if key is not None else None
    if known is None:
        known = _resolution(row, ctx.seed, ctx.workspace)
        if key is not None:
            if len(_RESOLVED) >= 16_384:
                _RESOLVED.clear()
            _RESOLVED[key] = known
    head, created, columns = known
    if created is None:
        return dict(head)  # a failure mark: decide() pops from it
    profile = stamped(head, created, ctx.at)
    if columns is not None:
        profile["columns"] = dict(columns)
    return profile


# (seed, workspace, *row items) -> (profile without instants, account creation, columns); or
# (failure mark, None, None). Shared: only read.
_Resolution = tuple[dict[str, Any], float | None, dict[str, Any] | None]
_RESOLVED: dict[tuple[Any, ...], _Resolution] = {}
_TEXT = {str}


def _resolution(row: dict[str, Any], seed: int, workspace: str) -> _Resolution:
    username = str(row.get("username") or "").strip().lstrip("@")
    platform_id = str(row.get("platformId") or "").strip()
    for magic in (username, platform_id):
        if is_fail_value(magic):
            return {"platformId": magic}, None, None
    columns = {k: v for k, v in row.items() if k not in BUILTIN_COLUMNS}
    if platform_id:
        if not _DIGITS.match(platform_id):
            return {"__unresolvable__": f"'{platform_id}' is not a valid platform id"}, None, None
        if platform_id.startswith(SUSPENDED_ID_PREFIX):
            return {"__unresolvable__": f"account {platform_id} is suspended"}, None, None
        if platform_id.startswith(DELETED_ID_PREFIX):
            return {"__unresolvable__": f"account {platform_id} is deleted"}, None, None
        head, created = x_profile_parts(seed, workspace, None, platform_id)
    elif username:
        if not is_resolvable_username(username):
            state = ("suspended" if username.lower().startswith("suspended_") else
                     "deleted" if username.lower().startswith("deleted_") else "invalid")
            return {"__unresolvable__": f"@{username} is {state}"}, None, None
        head, created = x_profile_parts(seed, workspace, username, None)
    else:
        return {"__unresolvable__": "row has no username or platformId"}, None, None
    overrides = {name: row[name] for name in ("displayName", "bio", "location", "websiteUrl")
                 if row.get(name)}
    return ({**head, **overrides} if overrides else head), created, columns or None


jobs.RESOLVERS["inboxapp.profile"] = resolve_profile
# A row resolved at two instants differs only in the profile's three instants: non-empty text,
# never the key (platformId). A ticker round may fold such rows (applying.FOLDABLE).
FOLDABLE.add("inboxapp.profile")


def _policy(merge: str = "skip") -> ImportPolicy:
    return ImportPolicy(key_fields=("platformId",), on_existing=MERGE_POLICY[merge],  # type: ignore[arg-type]
                        email_field=None, keep=("firstSeenAt",))


# ---- answers -----------------------------------------------------------------------------

def job_view(job: dict[str, Any]) -> dict[str, Any]:
    counts = job["counts"]
    status = job["status"]
    # Followers and likes learn their total when they start running; a job stopped before
    # that never knew it.
    reached_running = job["running_from"] is not None and status != "starting" and (
        job["updated_at"] or 0) >= job["running_from"]
    total_known = job["plan"].get("total_known", True) or reached_running
    return {
        "id": job["id"],
        "type": job["kind"],
        "status": STATUS_NAMES.get(status, status),
        "totalCount": job["total"] if total_known else None,
        "processedCount": job["processed"],
        "addedCount": counts["added"],
        "skippedCount": counts["skipped"] + counts["updated"] + counts["unchanged"]
        + counts["blocked"],
        "failedCount": counts["failed"],
        "error": job["error"],
        "createdAt": iso(job["created_at"]),
        "updatedAt": iso(job["updated_at"]) if job["updated_at"] is not None else None,
        "completedAt": iso(job["completed_at"]) if job["completed_at"] is not None else None,
    }


# ---- handlers ----------------------------------------------------------------------------

async def create_import_job(list_id: str, body: dict[str, Any], user: str) -> dict[str, Any]:
    backend = current()
    data = body["data"]
    kind = data["type"]
    # Creating a job reads the list and adds a job: the rows of jobs in flight can be applied
    # by the next open that reads them (in clock order, with the same result), which keeps
    # a burst of creates from paying the progress of every earlier job on each request.
    with backend.workspace(user, settle=False) as (conn, ws):
        target = backend.list_fixed(conn, ws, VENDOR, list_id)
        job_id = backend.new_cuid(conn, ws, "inboxapp-job")
        plan: dict[str, Any] = {"resolve": "inboxapp.profile", "total_known": kind == "csv"}
        extra: dict[str, Any] = {}
        if kind == "csv":
            fmt, content, offset, total = "csv", data["content"], 0, 0
            try:
                header, offset = csv_header(content)
                total = count_csv_rows(content, offset)
            except csv.Error as exc:
                raise Unprocessable(f"data.content: unreadable CSV ({exc})",
                                    field="data.content", rule="csv") from None
            mapping = _column_mapping(data.get("columnMapping"), header, target)
            plan.update(csv_header=header, csv_mapping=mapping)
            if total == 0:
                raise Unprocessable("data.content: the CSV has no data rows",
                                    field="data.content", rule="rows")
            policy = _policy(data.get("mergeStrategy", "overwrite"))
            extra["fileName"] = data.get("fileName")
        else:
            source = data.get("username") or data.get("postUrl") or data.get("postId")
            fake = faker_for(ws.seed, ws.id, kind, source)
            available = fake.random_int(40, 400)
            count = min(available, int(data.get("maxCount") or available))
            rows: list[dict[str, Any]] = [
                {"username": name}
                for name in _audience_names(ws.seed, ws.id, kind, str(source), count)]
            # A magic account (`fail_*`, or a post by one) fails the job halfway through.
            author = _post_author(data.get("postUrl")) if kind == "likes" else source
            if isinstance(author, str) and is_fail_value(author):
                rows.insert(len(rows) // 2, {"username": author})
            fmt, content, offset, total = "jsonl", encode_jsonl(rows), 0, len(rows)
            policy = _policy("skip")
            extra["source"] = source
        job = jobs.add(conn, workspace=ws.id, vendor=VENDOR, job_id=job_id,
                       list_pk=target["pk"], kind=kind, now=ws.now, source_format=fmt,
                       content=content, offset=offset, total=total, policy=policy,
                       pacing=ws.pacing(VENDOR, kind), plan=plan, extra=extra)
        if jobs.is_due(job, ws.now):  # no queue wait: the answer shows it under way
            backend.settle(conn, ws)
            job = jobs.get_by_pk(conn, job["pk"])
        return job_view(job)


def _audience_names(seed: int, workspace: str, kind: str, source: str, count: int) -> list[str]:
    fake = faker_for(seed, workspace, "audience", kind, source)
    names: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(names) < count:
        i += 1
        name = re.sub(r"[^a-z0-9_]", "", fake.user_name().lower())[:12] + str(i % 100)
        if name not in seen and is_resolvable_username(name) and not is_fail_value(name):
            seen.add(name)
            names.append(name)
    return names


def _post_author(url: str | None) -> str | None:
    match = re.match(r"^https://(?:www\.)?(?:x|twitter)\.com/([A-Za-z0-9_]{1,15})/", url or "")
    return match.group(1) if match else None


def _column_mapping(mapping: list[dict[str, str]] | None, header: list[str],
                    target: dict[str, Any]) -> dict[str, str]:
    columns = target["data"].get("columns", [])
    known = set(BUILTIN_COLUMNS) | {c["id"] for c in columns}
    by_name = {c["name"].lower(): c["id"] for c in columns}
    # Headers that name a column (by id, or a custom column by its name) map to it unless the
    # mapping says otherwise: `username,company` + {company -> custom_...} needs no entry for
    # username.
    explicit = {item["targetColumnId"] for item in mapping or []}
    result = {h: h if h in known else by_name[h.lower()] for h in header
              if h in known or h.lower() in by_name}
    result = {h: c for h, c in result.items() if c not in explicit}
    if mapping:
        for i, item in enumerate(mapping):
            if item["csvHeader"] not in header:
                raise Unprocessable(f"data.columnMapping[{i}].csvHeader: '{item['csvHeader']}' "
                                    "is not a header of the CSV",
                                    field=f"data.columnMapping[{i}].csvHeader", rule="header")
            if item["targetColumnId"] not in known:
                raise Unprocessable(
                    f"data.columnMapping[{i}].targetColumnId: '{item['targetColumnId']}' is not a "
                    f"column of list '{target['id']}' (known: {', '.join(sorted(known))})",
                    field=f"data.columnMapping[{i}].targetColumnId", rule="column")
            result[item["csvHeader"]] = item["targetColumnId"]
    if not {"username", "platformId"} & set(result.values()):
        raise Unprocessable("data.columnMapping: map a CSV column to 'username' or 'platformId' "
                            "so that each row identifies an X account",
                            field="data.columnMapping", rule="identifier")
    return result


async def list_import_jobs(list_id: str, user: str, status: list[str] | None = None,
                           cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        target = lists.get(conn, ws.id, VENDOR, list_id)
        values: dict[str, Any] = {"workspace": ws.id, "list_pk": target["pk"],
                                  "limit": limit + 1}
        wanted = sorted(set(status or ()))
        values.update((f"status{i}", name) for i, name in enumerate(wanted))
        if cursor:
            after = _CURSOR.scalar(conn, {"workspace": ws.id, "id": cursor})
            if after is None:
                raise InvalidRequest(f"cursor: '{cursor}' is not a cursor of this list",
                                     field="cursor", rule="cursor")
            values["after"] = after
        rows = _page(len(wanted), cursor is not None).all(conn, values)
        page = rows[:limit]
        return {"data": [job_view(r) for r in page],
                "nextCursor": page[-1]["id"] if len(rows) > limit else None}


_CURSOR = Fast(select(t.jobs.c.pk).where(t.jobs.c.workspace == bindparam("workspace"),
                                         t.jobs.c.vendor == VENDOR,
                                         t.jobs.c.id == bindparam("id")))
# What job_view reads: a page without the other columns (a job's rows' errors, its extra) and
# through prebuilt statements costs a listing of ten jobs a third of what it did.
_PAGE_COLUMNS = ("pk", "id", "kind", "status", "plan", "total", "processed", "counts", "error",
                 "created_at", "updated_at", "completed_at", "running_from")


@lru_cache(maxsize=64)
def _page(statuses: int, after_cursor: bool) -> Fast:
    """A page of a list's jobs, newest first, filtered on `statuses` statuses (none: all)."""
    c = t.jobs.c
    q = select(*(c[name] for name in _PAGE_COLUMNS)).where(
        c.workspace == bindparam("workspace"), c.vendor == VENDOR,
        c.list_pk == bindparam("list_pk"))
    if statuses:
        q = q.where(c.status.in_([bindparam(f"status{i}") for i in range(statuses)]))
    if after_cursor:
        q = q.where(c.pk < bindparam("after"))
    return Fast(q.order_by(c.pk.desc()).limit(bindparam("limit")))


async def cancel_import_job(list_id: str, import_job_id: str, user: str,
                            body: dict[str, Any] | None = None) -> dict[str, Any]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        target = lists.get(conn, ws.id, VENDOR, list_id)
        job = jobs.find(conn, ws.id, VENDOR, import_job_id, target["pk"])
        if job["status"] not in {"queued", "running"}:
            raise Conflict(f"import job '{import_job_id}' is {job['status']}: only queued or "
                           "running jobs can be canceled", field="importJobId",
                           rule="status", vendor_code="IMPORT_JOB_NOT_CANCELABLE")
        return job_view(jobs.force(conn, job, "canceled", at=ws.now, seed=ws.seed))


async def add_list_leads(list_id: str, body: dict[str, Any], user: str) -> dict[str, Any]:
    backend = current()
    ids = list(body["platformIds"])
    with backend.workspace(user) as (conn, ws):
        target = lists.get(conn, ws.id, VENDOR, list_id)
        job, results = jobs.run_now(
            conn, workspace=ws.id, seed=ws.seed, at=ws.now, vendor=VENDOR,
            job_id=backend.new_cuid(conn, ws, "inboxapp-job"), list_pk=target["pk"],
            kind="leads", source_format="jsonl",
            content=encode_jsonl([{"platformId": i} for i in ids]), offset=0, total=len(ids),
            policy=_policy("skip"), plan={"resolve": "inboxapp.profile"})
        _raise_if_failed(job, results, lambda i: f"platformIds[{i}]")
        out: dict[str, list[str]] = {"added": [], "skipped": [], "failed": []}
        for res in results:
            bucket = {"added": "added", "failed": "failed"}.get(res.outcome, "skipped")
            out[bucket].append(ids[res.index])
        return out


async def add_campaign_leads(campaign_id: str, body: dict[str, Any], user: str
                             ) -> dict[str, Any]:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        campaign = lists.get(conn, ws.id, VENDOR, campaign_id, kind="campaign",
                             field="campaignId", noun="campaign")
        rows = [{"platformId": i} for i in body.get("platformIds", [])]
        rows += [{"username": u} for u in body.get("usernames", [])]
        by_external_id = _external_id_resolver(conn, ws.id)
        rows += [by_external_id(e) for e in body.get("externalIds", [])]
        fields = [f"{name}[{i}]" for name in ("platformIds", "usernames", "externalIds")
                  for i in range(len(body.get(name, [])))]
        fields += [f"leads[{i}]" for i in range(len(body.get("leads", [])))]
        for lead in body.get("leads", []):
            row = ({"platformId": lead["platformId"]} if lead.get("platformId") else
                   {"username": lead["username"]} if lead.get("username") else
                   by_external_id(lead.get("externalId", "")))
            if lead.get("data"):
                row.update({k: v for k, v in lead["data"].items() if k not in BUILTIN_COLUMNS})
            rows.append(row)
        job, results = jobs.run_now(
            conn, workspace=ws.id, seed=ws.seed, at=ws.now, vendor=VENDOR,
            job_id=backend.new_cuid(conn, ws, "inboxapp-job"), list_pk=campaign["pk"],
            kind="campaign-leads", source_format="jsonl", content=encode_jsonl(rows), offset=0,
            total=len(rows), policy=_policy("skip"), plan={"resolve": "inboxapp.profile"})
        _raise_if_failed(job, results, fields.__getitem__)
        counts = job["counts"]
        return {"added": counts["added"], "failed": counts["failed"],
                "skipped": counts["skipped"] + counts["unchanged"] + counts["updated"]}


def _raise_if_failed(job: dict[str, Any], results: list[Any], field: Any) -> None:
    """A magic `fail_*` identifier fails a synchronous request as a whole; raising rolls the
    transaction back, so nothing of it is applied."""
    if job["status"] != "failed":
        return
    where = field(next(r.index for r in results if r.fail_job))
    if job["error"] == "Rate limit exceeded":
        raise RateLimited(f"Rate limit exceeded. Try again in {MAGIC_RETRY_AFTER} seconds. "
                          f"({where} is the sandbox's rate-limit test value)", field=where,
                          rule="fail_value", headers={"Retry-After": str(MAGIC_RETRY_AFTER)})
    raise Internal(f"{where}: {job['error']} (sandbox test value; nothing was added)",
                   field=where, rule="fail_value")


def _external_id_resolver(conn: Any, workspace: str) -> Any:
    """Inbox external ids name prospects the workspace already knows; others cannot resolve.
    The workspace's prospects are read once per request (and only if an external id is sent),
    not once per identifier."""
    known: dict[str, str] | None = None

    def resolve(external_id: str) -> dict[str, Any]:
        nonlocal known
        if _EXTERNAL_ID.match(external_id):
            if known is None:
                known = {}
                for data in conn.execute(select(t.leads.c.data).join(
                        t.lists, t.lists.c.pk == t.leads.c.list_pk).where(
                        t.lists.c.workspace == workspace, t.lists.c.vendor == VENDOR)).scalars():
                    if data.get("externalId"):
                        known.setdefault(data["externalId"], data["platformId"])
            if external_id in known:
                return {"platformId": known[external_id]}
        return {"__unresolvable__": f"external id '{external_id}' is unknown"}

    return resolve
