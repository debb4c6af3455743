"""Any exception, raised anywhere under a vendor prefix, becomes that vendor's error envelope."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import MutableMapping
from typing import Any

from connexion.exceptions import (
    BadRequestProblem,
    NonConformingResponse,
    OAuthProblem,
    OAuthScopeProblem,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from sandbox.core import errors as e
from sandbox.vendors import VendorFace, face_for_path

log = logging.getLogger("sandbox")
ERROR_KEY = "sandbox.error"


def to_sandbox_error(exc: BaseException, method: str = "", path: str = "") -> e.SandboxError:
    if isinstance(exc, e.SandboxError):
        return exc
    if isinstance(exc, OAuthScopeProblem):
        return e.Forbidden("the API key lacks the permission this operation needs")
    if isinstance(exc, OAuthProblem):
        detail = str(exc.detail or "")
        if "No authorization token" in detail or "Missing authorization" in detail:
            if path.startswith("/__sandbox/"):
                return e.Unauthorized("missing control token: send 'Authorization: Bearer "
                                      "<token>' or 'X-Sandbox-Token: <token>'",
                                      field="authorization", rule="required")
            return e.Unauthorized("missing API key", field="authorization", rule="required")
        return e.Unauthorized("invalid API key", field="authorization", rule="format")
    if isinstance(exc, UnsupportedMediaTypeProblem):
        return e.UnsupportedMediaType(str(exc.detail or "unsupported media type"),
                                      field="content-type", rule="media_type")
    if isinstance(exc, NonConformingResponse):
        log.error("response does not conform to the spec: %s", exc.detail)
        return e.Internal(f"the sandbox produced a non-conforming answer: {exc.detail}")
    if isinstance(exc, BadRequestProblem):
        if exc.detail == "RequestBody is required":
            # No body at all is unreadable input, like an empty JSON body (see validation.py).
            return e.MalformedBody("body: request body must not be empty", field="body",
                                   rule="required")
        return e.InvalidRequest(str(exc.detail or exc.title or "bad request"))
    if isinstance(exc, ProblemException):
        return e.for_status(exc.status or 500, str(exc.detail or exc.title or "error"))
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return e.NotFound(f"{method} {path} is not an endpoint of this API", field="path",
                              rule="route")
        if exc.status_code == 405:
            # Starlette's 405 carries the `Allow` header RFC 9110 requires: keep it.
            return e.MethodNotAllowed(f"method {method} is not allowed on {path}",
                                      field="method", rule="method",
                                      headers=dict(exc.headers or {}))
        return e.for_status(exc.status_code, str(exc.detail))
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    if (isinstance(driver_error, sqlite3.OperationalError)
            and "database or disk is full" in str(driver_error)):
        # SQLITE_FULL (raised by SQLAlchemy, or by the driver itself on core.sql.Fast's path):
        # an in-memory store at SQLite's memdb ceiling (1 GiB), or a full disk under a file
        # store. Nothing was written: the transaction rolled back.
        log.error("store full: %s", driver_error)
        return e.Unavailable("the sandbox's store is full (an in-memory store holds at most "
                             "1 GiB): reset or delete workspaces to free it; the request was "
                             "not applied", field="store", rule="capacity")
    log.exception("internal error", exc_info=exc)
    return e.Internal("an internal error occurred; the request was not applied")


def vendor_response(face: VendorFace, err: e.SandboxError, headers: dict[str, str]
                    ) -> Response:
    renderer = getattr(face.module, "render_error", None)
    if renderer is not None:
        response: Response = renderer(err, headers)
    else:
        response = Response(json.dumps(face.error_body(err)), status_code=err.status,
                            media_type="application/json")
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def plain_response(err: e.SandboxError) -> Response:
    """Outside the vendor prefixes (control API, UI): a small JSON envelope of our own."""
    body: dict[str, Any] = {"error": {"code": err.code, "message": err.message,
                                      "status": err.status}}
    if err.field:
        body["error"]["field"] = err.field
    body["error"].update({k: v for k, v in err.extra.items() if k not in body["error"]})
    response = Response(json.dumps(body), status_code=err.status,
                        media_type="application/json")
    for name, value in err.headers.items():
        response.headers[name] = value
    return response


def vendor_status(face: VendorFace, err: e.SandboxError) -> e.SandboxError:
    """A vendor module's optional STATUS_FOR_CODE (generic code -> HTTP status) re-statuses
    an error, e.g. Smartlead answers schema violations with 422 where the core says 400."""
    status = getattr(face.module, "STATUS_FOR_CODE", {}).get(err.code)
    if status is not None:
        err.status = status
    return err


def remember(scope: MutableMapping[str, Any], err: e.SandboxError) -> None:
    """Leave the rejection on the scope, for the journal."""
    scope.setdefault("extensions", {})[ERROR_KEY] = {
        "status": err.status, "code": err.code, "message": err.message, "field": err.field,
        "rule": err.rule}


def respond(scope: MutableMapping[str, Any], exc: BaseException) -> Response:
    path = scope.get("path", "")
    err = to_sandbox_error(exc, scope.get("method", ""), path)
    face = face_for_path(path)
    if face is not None:
        err = vendor_status(face, err)
    remember(scope, err)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    # HTTP/2-style pseudo-headers (no real header can be named so): which request failed, for
    # envelopes that name it (Which50's ASP.NET errors quote the method and key on the route).
    headers[":method"], headers[":path"] = scope.get("method", ""), path
    if face is None:
        return plain_response(err)
    return vendor_response(face, err, headers)


async def connexion_handler(request: Any, exc: Exception) -> Any:
    """Registered with Connexion for every exception class."""
    from connexion.lifecycle import ConnexionResponse

    response = respond(request.scope, exc)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in {"content-length", "content-type"}}
    return ConnexionResponse(status_code=response.status_code, body=response.body,
                             headers=headers, mimetype=response.media_type or "application/json")
