"""Errors the core raises; the HTTP layer renders each in the calling vendor's envelope."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """Base: an HTTP status, a generic code, a message and, when a request field is at fault,
    the field's path (e.g. `data.columnMapping[0].csvHeader`)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule
        self.headers = headers or {}
        self.extra = extra


class InvalidRequest(SandboxError):
    status, code = 400, "validation_error"


class MalformedBody(SandboxError):
    status, code = 400, "malformed_body"


class Unauthorized(SandboxError):
    status, code = 401, "unauthorized"


class Forbidden(SandboxError):
    status, code = 403, "forbidden"


class NotFound(SandboxError):
    status, code = 404, "not_found"


class MethodNotAllowed(SandboxError):
    status, code = 405, "method_not_allowed"


class RequestTimeout(SandboxError):
    status, code = 408, "request_timeout"


class Conflict(SandboxError):
    status, code = 409, "conflict"


class PayloadTooLarge(SandboxError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(SandboxError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(SandboxError):
    status, code = 422, "unprocessable"


class RateLimited(SandboxError):
    status, code = 429, "rate_limited"


class Internal(SandboxError):
    status, code = 500, "internal_error"


class Unavailable(SandboxError):
    status, code = 503, "unavailable"


BY_STATUS: dict[int, type[SandboxError]] = {
    cls.status: cls
    for cls in (InvalidRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
                RequestTimeout, Conflict,
                PayloadTooLarge, UnsupportedMediaType, Unprocessable, RateLimited, Internal,
                Unavailable)
}


def for_status(status: int, message: str, **kwargs: Any) -> SandboxError:
    cls = BY_STATUS.get(status, SandboxError)
    err = cls(message, **kwargs)
    err.status = status
    return err
