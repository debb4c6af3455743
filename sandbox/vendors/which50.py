"""Which50 face (openapi/which50.yaml): the four-call contact import (create with FieldNames,
upload batches, run, poll) and the contact-list endpoints, in JSON or DataContract XML as the
Accept header asks, with ASP.NET Web API's HttpError envelope for every failure."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from connexion import request
from connexion.json_schema import resolve_refs
from starlette.responses import Response

from sandbox.core import jobs, lists
from sandbox.core.backend import current
from sandbox.core.clock import iso_offset
from sandbox.core.errors import Conflict, InvalidRequest, NotFound, SandboxError
from sandbox.core.imports import ImportPolicy, encode_jsonl

VENDOR = "which50"
# Which50 documents no status values: these are the spec's ImportJobStatus enum. Which50 has no
# pause or cancel, so a job a test pauses still reads Running and a canceled one Failed.
STATUS_NAMES = {"created": "Created", "queued": "Queued", "starting": "Running",
                "running": "Running", "paused": "Running", "completed": "Complete",
                "failed": "Failed", "canceled": "Failed"}
# Contacts match on Email; a contact without an Email matches on its Phone; one with neither
# is dropped. Invalid addresses and numbers are imported and counted (openapi/which50.yaml).
POLICY = ImportPolicy(key_fields=("Email", "Phone"), email_field="Email", phone_field="Phone",
                      invalid_email="count", on_existing="update_if_changed")
XML_TYPES = ("application/xml", "text/xml")
JSON_TYPES = ("application/json", "text/json")
MAX_MODEL_STATE = 100
LIST_NOT_FOUND = "The specified Contactlist was not found."
CREATE_NOT_FOUND = "The specified Contactlist was not found - could not create Import Job."
JOB_NOT_FOUND = "The specified Contactlist or ImportJob were not found."
ALREADY_RUN = "The ImportJob has already been run."
MESSAGES = {401: "Authorization has been denied for this request.",
            403: "The user does not have the relevant permissions to perform this action.",
            413: "The request entity is too large.",
            429: "Too many requests.",
            500: "An error has occurred.",
            503: "The service is unavailable."}
PARAMETERS = {"contactListId", "importJobId", "customevents", "match"}


# ---- formats -----------------------------------------------------------------------------

def negotiate(accept: str | None) -> str:
    """The media type of an answer: the Accept entry with the highest q that Which50 writes
    (first wins a tie); JSON when nothing matches, as ASP.NET falls back to its first
    formatter."""
    best, best_q = "application/json", 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media.lower() in XML_TYPES + JSON_TYPES and q > best_q:
            best, best_q = media.lower(), q
    return best


@lru_cache(maxsize=4)
def _schemas(spec_path: str) -> dict[str, Any]:
    spec = resolve_refs(yaml.safe_load(Path(spec_path).read_text()))
    return dict(spec["components"]["schemas"])


def schema(name: str) -> dict[str, Any]:
    spec_path = current().settings.spec_dir / "which50.yaml"
    return dict(_schemas(str(spec_path))[name])


def answer(data: Any, schema_name: str) -> Response:
    """A 200 answer in the format the request's Accept header asks for."""
    media = negotiate(request.headers.get("accept"))
    if media in XML_TYPES:
        # Imported on the first XML answer: xmlcodec and defusedxml are ~10 ms of start-up.
        from sandbox.http import xmlcodec

        return Response(xmlcodec.render(data, schema(schema_name)),
                        media_type=f"{media}; charset=utf-8")
    # Always a Response with its media type: the spec lists four, and Connexion refuses to guess.
    return Response(json.dumps(data), media_type=f"{media}; charset=utf-8")


# ---- errors ------------------------------------------------------------------------------

def _body_parameter(method: str, path: str) -> str:
    """The action parameter ASP.NET names body errors after (`request` or `contacts`)."""
    if method == "POST" and re.search(r"/import/[^/]+/?$", path, re.IGNORECASE):
        return "contacts"
    return "request"


def _model_key(field: str | None, parameter: str) -> str:
    if not field or field == "body":
        return parameter
    if re.split(r"[.\[]", field, maxsplit=1)[0] in PARAMETERS:
        return field
    return parameter + field if field.startswith("[") else f"{parameter}.{field}"


def _model_message(err: SandboxError, parameter: str) -> str:
    field = err.field or "body"
    leaf = re.split(r"[.\]]", field)[-1] or field
    if err.rule == "required" and field != "body":
        return f"The {leaf} field is required."
    if err.rule == "required" or err.message == "RequestBody is required":
        return "A request body is required."
    if err.rule == "maxItems" and parameter == "contacts" and field == "body":
        return "The service accepts up to 10,000 contacts in a single request."
    if err.rule == "minItems":
        noun = "contact" if field == "body" else "item"
        return f"The {leaf if field != 'body' else 'request'} must contain at least 1 {noun}."
    message = err.message
    for prefix in (f"{field}: ", "body: "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    message = message[:1].upper() + message[1:]
    return message if len(message) <= 300 else message[:297] + "..."


def error_body(err: SandboxError, method: str = "", path: str = "",
               headers: dict[str, str] | None = None) -> dict[str, Any]:
    """ASP.NET Web API's HttpError: {"Message"} and, for a 400, {"ModelState": {key: [..]}}
    keyed the way ASP.NET keys them (`request.FieldNames`, `contacts[3].Values.Fax`)."""
    headers = headers or {}
    if err.status == 400:
        parameter = _body_parameter(method, path)
        model_state = err.extra.get("model_state") or {
            _model_key(err.field, parameter): [_model_message(err, parameter)]}
        return {"Message": "The request is invalid.", "ModelState": model_state}
    if err.status == 404 and err.rule == "route":
        host = headers.get("host", "localhost")
        return {"Message": f"No HTTP resource was found that matches the request URI "
                           f"'http://{host}{path}'."}
    if err.status == 405:
        return {"Message": f"The requested resource does not support http method "
                           f"'{method or 'UNKNOWN'}'."}
    if err.status == 415:
        media = (headers.get("content-type") or "").split(";")[0].strip()
        if not media:
            return {"Message": "The request contains an entity body but no Content-Type "
                               "header."}
        return {"Message": f"The request entity's media type '{media}' is not supported for "
                           "this resource."}
    return {"Message": MESSAGES.get(err.status, err.message)}


def render_error(err: SandboxError, request_headers: dict[str, str]) -> Response:
    body = error_body(err, request_headers.get(":method", ""),
                      request_headers.get(":path", ""), request_headers)
    media = negotiate(request_headers.get("accept"))
    if media in XML_TYPES:
        from sandbox.http import xmlcodec  # on the first XML answer (start-up time)

        return Response(xmlcodec.render_http_error(body), status_code=err.status,
                        media_type=f"{media}; charset=utf-8")
    return Response(json.dumps(body), status_code=err.status,
                    media_type=f"{media}; charset=utf-8")


# ---- answers -----------------------------------------------------------------------------

def job_view(job: dict[str, Any]) -> dict[str, Any]:
    counts = job["counts"]
    status = job["status"]
    total = int(job["total"])
    started = status not in {"created", "queued"} and job["started_at"] is not None
    return {
        "Id": int(job["id"]),
        "ContactListId": int(job["extra"]["contact_list_id"]),
        "InvalidEmailCount": counts["invalid_email"],
        "InvalidSmsCount": counts["invalid_sms"],
        "ProgressPercent": int(job["processed"]) * 100 // total if total else 0,
        "CurrentStatus": STATUS_NAMES[status],
        "StartDate": iso_offset(job["started_at"]) if started else None,
        "FinishDate": iso_offset(job["completed_at"]) if status in jobs.TERMINAL else None,
        "InsertedContacts": counts["added"],
        "UpdatedContacts": counts["updated"],
        "DroppedContacts": counts["failed"] + counts["blocked"],
        "NotUpdatedContacts": counts["unchanged"] + counts["skipped"],
        "TotalContacts": counts["added"] + counts["updated"],
    }


def list_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"Id": int(row["id"]), "Name": row["name"], "Count": int(row["lead_count"])}


def field_view(field: dict[str, Any]) -> dict[str, Any]:
    return {"Id": field["Id"], "Name": field["Name"], "DefaultValue": field.get("DefaultValue"),
            "MapType": field.get("MapType", "Text"), "Position": field.get("Position", 0),
            "ContactSchemaFieldValues": list(field.get("ContactSchemaFieldValues", []))}


def _contact_list(conn: Any, ws: Any, contact_list_id: int, message: str) -> dict[str, Any]:
    try:
        return lists.get(conn, ws.id, VENDOR, contact_list_id, field="contactListId")
    except NotFound as exc:
        raise NotFound(message, field="contactListId") from exc


def _job(conn: Any, ws: Any, contact_list_id: int, import_job_id: int
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The list and the job, or ASP.NET's one 404 for either."""
    target = _contact_list(conn, ws, contact_list_id, JOB_NOT_FOUND)
    try:
        return target, jobs.find(conn, ws.id, VENDOR, str(import_job_id), target["pk"])
    except NotFound as exc:
        raise NotFound(JOB_NOT_FOUND, field="importJobId") from exc


# ---- handlers ----------------------------------------------------------------------------

async def list_contact_lists(user: str) -> Any:
    with current().workspace(user) as (conn, ws):
        rows = [r for r in lists.all_of(conn, ws.id, VENDOR) if str(r["id"]).isdigit()]
        return answer([list_view(r) for r in rows], "ArrayOfContactsList")


async def get_contact_list(contact_list_id: int, user: str) -> Any:
    with current().workspace(user) as (conn, ws):
        target = _contact_list(conn, ws, contact_list_id, LIST_NOT_FOUND)
        return answer(list_view(target), "ContactsList")


async def list_contact_list_fields(contact_list_id: int, user: str) -> Any:
    with current().workspace(user) as (conn, ws):
        target = _contact_list(conn, ws, contact_list_id, LIST_NOT_FOUND)
        fields = [field_view(f) for f in target["data"].get("fields", [])]
        return answer(fields, "ArrayOfContactSchemaField")


async def create_import_job(contact_list_id: int, body: dict[str, Any], user: str) -> Any:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        target = _contact_list(conn, ws, contact_list_id, CREATE_NOT_FOUND)
        job_id = backend.next_number(conn, ws, "which50-job")
        # FieldNames are not checked against the list here: the help page's own sample
        # ("sample string 1") must succeed; unknown names fail when contacts carry them.
        job = jobs.add(conn, workspace=ws.id, vendor=VENDOR, job_id=str(job_id),
                       list_pk=target["pk"], kind="import", now=ws.now,
                       source_format="jsonl", content="", offset=0, total=0, policy=POLICY,
                       pacing=None, plan={"field_names": list(body["FieldNames"])},
                       extra={"contact_list_id": contact_list_id})
        return answer(job_view(job), "ImportJob")


async def upload_import_batch(contact_list_id: int, import_job_id: int, body: list[Any],
                              user: str) -> Any:
    with current().workspace(user) as (conn, ws):
        target, job = _job(conn, ws, contact_list_id, import_job_id)
        if job["status"] != "created":
            raise Conflict(ALREADY_RUN, field="importJobId", rule="status")
        known = [f["Name"] for f in target["data"].get("fields", [])]
        rows = _rows(body, job["plan"]["field_names"], known, contact_list_id)
        jobs.append_rows(conn, job["pk"], encode_jsonl(rows), len(rows))
        return answer(job_view(jobs.get_by_pk(conn, job["pk"])), "ImportJob")


def _rows(contacts: list[dict[str, Any]], field_names: list[str], known: list[str],
          contact_list_id: int) -> list[dict[str, Any]]:
    """The rows to import (only the job's FieldNames), after checking every Values key is a
    field of the list; all offending keys are reported at once, as ASP.NET's ModelState."""
    known_set = set(known)
    problems: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    for i, contact in enumerate(contacts):
        values: dict[str, Any] = contact.get("Values") or {}
        for key, value in values.items():
            where = f"[{i}].Values.{key}"
            if key not in known_set:
                problems.setdefault(f"contacts{where}", []).append(
                    f"'{key}' is not a field of ContactList {contact_list_id} (fields: "
                    f"{', '.join(known)}).")
            elif isinstance(value, dict | list):
                problems.setdefault(f"contacts{where}", []).append(
                    f"The value of '{key}' must be a string, a number, a boolean or null.")
            if len(problems) >= MAX_MODEL_STATE:
                break
        if len(problems) >= MAX_MODEL_STATE:
            break
        rows.append({name: _cell(values[name]) for name in field_names if name in values})
    if problems:
        first = next(iter(problems))
        raise InvalidRequest(f"{first[len('contacts'):]}: {problems[first][0]}",
                             field=first[len("contacts"):], rule="field", model_state=problems)
    return rows


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def run_import_job(contact_list_id: int, import_job_id: int, user: str,
                         customevents: str | None = None, match: str | None = None) -> Any:
    backend = current()
    with backend.workspace(user) as (conn, ws):
        _target, job = _job(conn, ws, contact_list_id, import_job_id)
        if job["status"] != "created":
            raise Conflict(ALREADY_RUN, field="importJobId", rule="status")
        if not job["total"]:
            raise Conflict("The ImportJob has no contacts to import: upload a batch of "
                           "Contacts before running it.", field="importJobId", rule="empty")
        jobs.force(conn, job, "queued", at=ws.now, seed=ws.seed, pacing=ws.pacing(VENDOR))
        backend.settle(conn, ws)
        return answer(job_view(jobs.get_by_pk(conn, job["pk"])), "ImportJob")


async def get_import_job(contact_list_id: int, import_job_id: int, user: str) -> Any:
    with current().workspace(user) as (conn, ws):
        _target, job = _job(conn, ws, contact_list_id, import_job_id)
        return answer(job_view(job), "ImportJob")
