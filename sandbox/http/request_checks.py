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
from urllib.parse import parse_qsl

from connexion import utils
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import TypeValidationError, UnsupportedMediaTypeProblem
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.operations import AbstractOperation
from connexion.uri_parsing import AbstractURIParser, OpenAPIURIParser
from connexion.utils import coerce_type, is_nullable
from starlette.requests import Request as StarletteRequest
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("connexion.middleware.validation")

# Media types come from requests: the per-operation memories stop growing at this size (a
# client cycling through made-up types then just takes Connexion's per-request path).
_MEMORY = 32


class OnceURIParser(OpenAPIURIParser):
    """Connexion's OpenAPI URI parser, with what it reads from the parameter definitions read
    once: Connexion rebuilds the parameter schemas by name on every access (once per parameter
    and per query key, per request), and sends a string parameter's value through a cast that
    fails inside (a caught TypeError) and hands it back unchanged. The definitions are the
    spec's and never change, and Connexion's callers only read the dict."""

    def __init__(self, param_defns: Any, body_defn: Any) -> None:
        super().__init__(param_defns, body_defn)
        self._param_schemas = {k: v.get("schema", {}) for k, v in self._param_defns.items()}
        self._kept = frozenset(k for k, v in self._param_defns.items() if _kept_as_is(v))

    @property
    def param_schemas(self) -> dict[str, Any]:
        return self._param_schemas

    def resolve_params(self, params: Any, _in: str) -> dict[str, Any]:
        # Connexion's AbstractURIParser.resolve_params step for step, except that the values
        # coerce_type would return unchanged are not sent through it.
        resolved: dict[str, Any] = {}
        for k, values in params.items():
            param_defn = self._param_defns.get(k)
            param_schema = self._param_schemas.get(k)
            if not (param_defn or param_schema):
                resolved[k] = values  # rely on validation
                continue
            if _in == "path":
                values = [values]  # multiple values in a path is impossible
            if param_schema and param_schema["type"] == "array":
                values = self._resolve_param_duplicates(values, param_defn, _in)
                resolved[k] = self._split(values, param_defn, _in)
            else:
                resolved[k] = values[-1]
            if k in self._kept:
                continue
            try:  # noqa: SIM105 (contextlib.suppress: a context manager per value)
                resolved[k] = coerce_type(param_defn, resolved[k], "parameter", k)
            except TypeValidationError:
                pass
        return resolved


def _kept_as_is(param_defn: Any) -> bool:
    """Whether connexion.utils.coerce_type returns every value of this parameter unchanged: not
    nullable (a null would become None), and of a type it neither casts nor walks."""
    try:
        schema = param_defn.get("schema", param_defn)
        return not is_nullable(schema) and schema.get("type") not in _COERCED
    except (AttributeError, TypeError):
        return False


_COERCED = frozenset({"integer", "number", "boolean", "object", "array"})


class PlainRequest(ConnexionRequest):
    """Connexion's request, made without the failing attribute lookup of its __init__: it asks
    `hasattr(self, "_starlette_request")`, which on a new request goes through its
    __getattr__ (itself looking the attribute up) and raises AttributeError twice, ~2 us
    for each of the three requests Connexion makes of one HTTP request. The same attributes
    are set (tests/http/test_request_checks.py compares them with Connexion's)."""

    def __init__(self, *args: Any, uri_parser: Any = None, **kwargs: Any) -> None:
        # Already set when made by ConnexionRequest.from_starlette_request.
        if "_starlette_request" not in self.__dict__:
            self._starlette_request = StarletteRequest(*args, **kwargs)
        self.uri_parser = uri_parser
        self._context = None
        self._mimetype = None
        self._path_params = None
        self._query_params = None
        self._form = None
        self._files = None

    # What the handler, the security layer and Connexion's `context` read of the Starlette
    # request, as properties: through ConnexionRequest's __getattr__, each access first fails
    # a normal lookup (an AttributeError made and dropped) and then calls Python code.
    @property
    def scope(self) -> Any:
        return self._starlette_request.scope

    @property
    def headers(self) -> Any:
        return self._starlette_request.headers

    @property
    def content_type(self) -> str:
        # Connexion's `self.headers.get("content-type", "application/octet-stream")`, read from
        # the scope's headers as Starlette's Headers reads them (the first header of that
        # lower-case name) without building one (and a failed hasattr before it): ~2 us.
        for name, value in self._starlette_request.scope["headers"]:
            if name == b"content-type":
                return str(value.decode("latin-1"))
        return "application/octet-stream"


class OnceRequest(PlainRequest):
    """Connexion's request, reading the query string's parameters as Starlette's QueryParams
    would hand them to it (the same parse_qsl, the same order), without building one: its
    multidict costs ~5 us a request, and the validator and the handler each build one."""

    _query_params: Any

    @property
    def query_params(self) -> Any:
        if self._query_params is None:
            query_string = self.scope["query_string"]
            if not isinstance(query_string, (bytes, str)):
                return super().query_params
            if isinstance(query_string, bytes):
                query_string = query_string.decode("latin-1")
            lists: dict[str, list[str]] = {}
            for key, value in parse_qsl(query_string, keep_blank_values=True):
                lists.setdefault(key, []).append(value)
            self._query_params = self.uri_parser.resolve_query(lists)
        return self._query_params


def uri_parser(cls: type[AbstractURIParser], operation: Any) -> AbstractURIParser:
    """`cls(operation.parameters, operation.body_definition())`, as Connexion builds its URI
    parsers; Connexion's own OpenAPI parser is replaced by `OnceURIParser` (any other class,
    a Swagger 2 or an app's own, is built as it is)."""
    parser_cls = OnceURIParser if cls is OpenAPIURIParser else cls
    return parser_cls(operation.parameters, operation.body_definition())


class _Operation(RequestValidationOperation):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accepted: dict[str, bool] = {}
        self._body_validators: dict[tuple[str, str], Any] = {}

    @functools.cached_property
    def _parameter_validator(self) -> Any:
        op = self._operation
        return self._validator_map["parameter"](
            op.parameters, uri_parser=uri_parser(op.uri_parser_class, op),
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params)

    def extract_content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        # Connexion's, without the typing subscripts its helper evaluates on every call.
        content_type = None
        for name, value in headers:  # a loop, not next() over a generator it then closes
            if name.lower() == b"content-type":
                content_type = value.decode("latin-1")
                break
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
                    uri_parser=uri_parser(op.uri_parser_class, op))
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
