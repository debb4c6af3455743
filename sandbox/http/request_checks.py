"""Connexion's request validation layer, with its per-operation objects built once.

Connexion 3.3's RequestValidationOperation builds, on every request, two URI parsers, a
parameter validator, a media-type table of what the operation consumes (then sorts it and
fnmatches the request's type against it), and the body validator: ~40 us of a vendor request,
all of it a function of the operation and the request's media type. Here they are built once
per operation (per media type and charset for the body) and then used exactly as Connexion
uses them; the order of the checks, and so every error answer, is Connexion's.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from connexion import utils
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import UnsupportedMediaTypeProblem
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("connexion.middleware.validation")

# Media types come from requests: the per-operation memories stop growing at this size (a
# client cycling through made-up types then just takes Connexion's per-request path).
_MEMORY = 32


class _Operation(RequestValidationOperation):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accepted: dict[str, bool] = {}
        self._body_validators: dict[tuple[str, str], Any] = {}

    @functools.cached_property
    def _parameter_validator(self) -> Any:
        op = self._operation
        uri_parser = op._uri_parser_class(op.parameters, op.body_definition())
        return self._validator_map["parameter"](
            op.parameters, uri_parser=uri_parser, strict_validation=self.strict_validation,
            security_query_params=self.security_query_params)

    def extract_content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        # Connexion's, without the typing subscripts its helper evaluates on every call.
        content_type = next((value.decode("latin-1") for name, value in headers
                             if name.lower() == b"content-type"), None)
        mime_type, encoding = utils.split_content_type(content_type)
        if mime_type is None:
            # Content-type header is not required: Connexion takes the first type consumed.
            consumes = self._operation.consumes
            mime_type = consumes[0] if consumes else "application/octet-stream"
        return mime_type, "utf-8" if encoding is None else encoding

    def validate_mime_type(self, mime_type: str) -> None:
        accepted = self._accepted.get(mime_type)
        if accepted is None:
            consumes = self._operation.consumes
            accepted = not consumes or mime_type.lower() in MediaTypeDict(
                [(c.lower(), None) for c in consumes])
            if len(self._accepted) < _MEMORY:
                self._accepted[mime_type] = accepted
        if not accepted:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), "
                f"expected {self._operation.consumes}")

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        """The body validator for this media type and charset; None when there is no schema
        or no validator for it (Connexion then skips body validation, as here)."""
        key = (mime_type, encoding)
        if key in self._body_validators:
            return self._body_validators[key]
        op = self._operation
        validator = None
        schema = op.body_schema(mime_type)
        if schema:
            try:
                validator_cls = self._validator_map["body"][mime_type]
            except KeyError:
                logger.info("Skipping validation. No validator registered for content type: "
                            f"{mime_type}.")
            else:
                validator = validator_cls(
                    schema=schema, required=op.request_body.get("required", False),
                    nullable=utils.is_nullable(op.body_definition(mime_type)),
                    encoding=encoding, strict_validation=self.strict_validation,
                    uri_parser=op.uri_parser_class(op.parameters, op.body_definition()))
                # A validator that rewrites the body keeps per-request state: never shared.
                if getattr(validator, "MUTABLE_VALIDATION", False):
                    return validator
        if len(self._body_validators) < _MEMORY:
            self._body_validators[key] = validator
        return validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameter_validator.validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _Api(RequestValidationAPI):
    def make_operation(self, operation: AbstractOperation) -> RequestValidationOperation:
        return _Operation(self.next_app, operation=operation,
                          strict_validation=self.strict_validation,
                          validator_map=self.validator_map)


class OnceRequestValidation(RequestValidationMiddleware):
    """Connexion's request validation middleware, making `_Operation`s."""

    api_cls = _Api
