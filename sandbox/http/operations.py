"""Connexion's handler wrapping, built once per operation instead of once per request.

Connexion 3.3's `AsyncOperation.fn` wraps the handler in a fresh decorator stack on every call,
and the stack inspects the handler's signature each time (three `inspect.signature` calls a
request, with the security handler's). None of that depends on the request: the request itself
is read from Connexion's context when the wrapper runs, exactly as before.
"""

from __future__ import annotations

import asyncio
import collections.abc
import copy
import functools
import json
import logging
import types
from collections.abc import Callable
from typing import Any

from connexion import utils
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import _context, _operation, _receive, _scope, context, operation
from connexion.datastructures import NoContent
from connexion.decorators import StarletteDecorator
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    AsyncParameterDecorator,
    _get_body_argument_json,
    _get_query_defaults,
    _get_val_from_param,
    inspect_function_arguments,
    prep_kwargs,
    pythonic,
    sanitized,
    unwrap_decorators,
)
from connexion.decorators.parameter import logger as parameter_logger
from connexion.decorators.response import AsyncResponseDecorator
from connexion.exceptions import NonConformingResponseHeaders
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.jsonifier import JSONEncoder, Jsonifier
from connexion.operations import AbstractOperation, OpenAPIOperation
from connexion.security import AbstractSecurityHandler
from connexion.utils import deep_merge

from sandbox.http.request_checks import OnceRequest, OnceURIParser, uri_parser
from sandbox.http.validation import PARSED_BODY_KEY


class _Parameters(AsyncParameterDecorator):
    """Connexion's parameter decorator, remembering each parameter's Python name (three
    regular expressions and a CamelCase conversion per parameter, per request, otherwise),
    deciding once per operation whether the handler takes the body, handing on the JSON body
    the request validator parsed instead of parsing it again, and looking for uploaded files
    only in form bodies."""

    def __init__(self, *, pythonic_params: bool = False, **kwargs: Any) -> None:
        super().__init__(pythonic_params=pythonic_params, **kwargs)
        self.sanitize_fn = functools.lru_cache(maxsize=4096)(
            pythonic if pythonic_params else sanitized)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        arguments, has_kwargs = inspect_function_arguments(unwrap_decorators(function))
        # [operation, whether its handler takes the body, its _Arguments or None]
        facts: list[Any] = []

        @functools.wraps(function)
        async def wrapper(request: Any) -> Any:
            current = _operation.get()
            if not facts or facts[0] is not current:
                facts[:] = [current, self._takes_body(current, arguments, has_kwargs),
                            _Arguments.of(current, arguments, has_kwargs, self.sanitize_fn)]
            if facts[1] is None:
                body = self._maybe_get_body(request, arguments=arguments,
                                            has_kwargs=has_kwargs)
            elif facts[1]:
                body = request.scope.get("extensions", {}).get(PARSED_BODY_KEY, _NOTHING)
                if body is _NOTHING:
                    body = request.get_body()
            else:
                body = None
            while asyncio.iscoroutine(body):
                body = await body
            mimetype = _mimetype(request)
            if mimetype in FORM_CONTENT_TYPES:
                files = await request.files()
            else:
                # Connexion asks Starlette's form parser for files on every request; it finds
                # none in anything but a form body (~15 us a JSON request).
                files = {}
                if facts[2] is not None and not parameter_logger.isEnabledFor(logging.DEBUG):
                    return await function(**facts[2].kwargs(request, body, mimetype))
            kwargs = prep_kwargs(request, request_body=body, files=files, arguments=arguments,
                                 has_kwargs=has_kwargs, sanitize=self.sanitize_fn)
            return await function(**kwargs)

        return wrapper

    def _takes_body(self, current: Any, arguments: list[str], has_kwargs: bool) -> bool | None:
        """Connexion's rule in `_maybe_get_body`, for an OpenAPI operation, whose body name does
        not depend on the request (its spec's `x-body-name`, or "body"); None for any other
        operation, which is asked on every request."""
        if (not isinstance(current, OpenAPIOperation)
                or type(current).body_name is not OpenAPIOperation.body_name):
            return None
        return self.sanitize_fn(current.body_name(None)) in arguments or has_kwargs

    def _maybe_get_body(self, request: Any, *, arguments: list[str], has_kwargs: bool) -> Any:
        body = super()._maybe_get_body(request, arguments=arguments, has_kwargs=has_kwargs)
        parsed = request.scope.get("extensions", {}).get(PARSED_BODY_KEY, _NOTHING)
        if parsed is _NOTHING or not asyncio.iscoroutine(body):
            return body
        # Connexion would read the replayed bytes and json.loads them once more; the validator
        # decoded the same bytes (with the request's charset) and validated exactly this value.
        body.close()
        return parsed


_NOTHING = object()
_MIMETYPES: dict[str, str] = {}


def _mimetype(request: Any) -> str:
    """`request.mimetype`: Connexion parses the Content-Type header for it on every request;
    the parse is remembered per header value (bounded: the header comes from the client)."""
    content_type = request.content_type
    found = _MIMETYPES.get(content_type)
    if found is None:
        found = request.mimetype
        if len(_MIMETYPES) < 64:
            _MIMETYPES[content_type] = found
    return found


_IMMUTABLE = (str, int, float, bool, type(None))


class _Arguments:
    """Connexion's `prep_kwargs` (connexion/decorators/parameter.py) for one OpenAPI operation
    and handler, with what it reads from the operation read once: the path and query parameter
    definitions by name, the query defaults, the body's name and whether the handler takes it.
    Per request it does what Connexion does, in the same order and with Connexion's own helpers
    for values (`_get_val_from_param`, `deep_merge`, `_get_body_argument_json`); form bodies
    (files, Swagger 2's unpacking) and Connexion's debug logging stay with `prep_kwargs`.
    tests/http/test_operations_arguments.py compares the two on every operation of the specs."""

    def __init__(self, op: OpenAPIOperation, arguments: list[str], has_kwargs: bool,
                 sanitize: Callable[[str], str]) -> None:
        self.op, self.arguments, self.has_kwargs, self.sanitize = (
            op, arguments, has_kwargs, sanitize)
        self.path = {p["name"]: p for p in op.parameters if p["in"] == "path"}
        self.query = {p["name"]: p for p in op.parameters if p["in"] == "query"}
        self.defaults = _get_query_defaults(self.query)
        # Connexion deep-copies the defaults per request; scalars copy as themselves.
        self.copy_defaults: Callable[[Any], Any] = (
            dict if all(type(v) in _IMMUTABLE for v in self.defaults.values())
            else copy.deepcopy)
        self.trace = op.method.upper() == "TRACE"
        self.body = (len(arguments) > 0 or has_kwargs) and op.is_request_body_defined
        self.body_name = sanitize(op.body_name(None))
        self.body_passed = self.body_name in arguments or has_kwargs

    @classmethod
    def of(cls, op: Any, arguments: list[str], has_kwargs: bool,
           sanitize: Callable[[str], str]) -> _Arguments | None:
        """The operation's arguments, or None for one Connexion must handle per request: not
        an OpenAPI operation, a body name that depends on the request, or a definition its
        helpers cannot read (Connexion then raises or logs per request, as always)."""
        if (not isinstance(op, OpenAPIOperation)
                or type(op).body_name is not OpenAPIOperation.body_name):
            return None
        try:
            return cls(op, arguments, has_kwargs, sanitize)
        except Exception:  # whatever it is, Connexion's path meets it per request
            return None

    def kwargs(self, request: Any, body: Any, mimetype: str) -> dict[str, Any]:
        """`prep_kwargs(request, request_body=body, files={}, ...)` for a request whose media
        type is `mimetype`, not a form."""
        sanitize, arguments, has_kwargs = self.sanitize, self.arguments, self.has_kwargs
        # Both resolved before any value is converted, as Connexion's call does. An empty query
        # string resolves to {} through the OpenAPI parser: Starlette's QueryParams (~5 us,
        # empty or not) is not built for it.
        path_params = request.path_params
        if not request.scope["query_string"] and type(request.uri_parser) is OnceURIParser:
            query_params: dict[str, Any] = {}
        else:
            query_params = request.query_params
        found: dict[str, Any] = {}
        for name, value in path_params.items():
            defn = self.path.get(name)
            found[sanitize(name)] = value if defn is None else _get_val_from_param(value, defn)
        query = deep_merge(self.copy_defaults(self.defaults), query_params)
        for key, value in query.items():
            sanitized_key = sanitize(key)
            if has_kwargs or sanitized_key in arguments:
                defn = self.query.get(key)
                if defn is not None:
                    found[sanitized_key] = _get_val_from_param(value, defn)
                else:
                    parameter_logger.error(
                        "Function argument '%s' (non-sanitized: %s) not defined in "
                        "specification", sanitized_key, key)
        if self.body and not self.trace:
            value = _get_body_argument_json(body, operation=self.op, content_type=mimetype)
            if self.body_passed:
                found[self.body_name] = value
        kwargs = {sanitize(k): v for k, v in found.items()}
        for key, value in _context.get().items():
            if has_kwargs or key in arguments:
                kwargs[key] = value
        if CONTEXT_NAME in arguments:
            kwargs[CONTEXT_NAME] = context
        return kwargs


class _Response(AsyncResponseDecorator):
    """Connexion's response decorator, reading the operation's response types once and the
    handler's Content-Type header without the typing work Connexion's helper does per call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._produces: list[Any] = []  # [operation, its distinct response types]
        # Connexion's default Jsonifier runs json.dumps(data, cls=JSONEncoder), which builds
        # an encoder per call; one built with the same (default) settings encodes the same.
        jsonifier = self.jsonifier
        self._encoder = (JSONEncoder() if type(jsonifier) is Jsonifier and jsonifier.json is json
                         and jsonifier.dumps_args == {"cls": JSONEncoder} else None)
        self._json_types: dict[str | None, bool] = {}

    def _serialize_data(self, data: Any, *, content_type: str) -> Any:
        # Connexion's, with the encoder made once and whether a content type is JSON
        # remembered (the types come from the spec and the handler: bounded all the same).
        if self._encoder is None or data is None or data is NoContent:
            return super()._serialize_data(data, content_type=content_type)
        is_json = self._json_types.get(content_type)
        if is_json is None:
            mime_type, _ = utils.split_content_type(content_type)
            is_json = utils.is_json_mimetype(mime_type)
            if len(self._json_types) < 64:
                self._json_types[content_type] = is_json
        if is_json:
            return self._encoder.encode(data) + "\n"
        return data

    def _infer_content_type(self, data: Any, headers: Any) -> str | None:
        # Connexion's logic (decorators/response.py), step for step.
        content_type = header_content_type(headers)
        current = _operation.get()
        if not self._produces or self._produces[0] is not current:
            self._produces = [current, list(set(current.produces))]
        produces: list[str] = self._produces[1]
        if data is not None and not produces:
            produces = ["application/json"]
        if content_type:
            if content_type not in produces:
                raise NonConformingResponseHeaders(
                    f"Returned content type ({content_type}) is not defined in operation spec "
                    f"({current.produces}).")
            return content_type
        if not produces:
            return None
        if len(produces) == 1:
            return produces[0]
        if isinstance(data, str):
            for produced in produces:
                if "text/plain" in produced:
                    content_type = produced
        elif isinstance(data, (bytes, types.GeneratorType, collections.abc.Iterator)):
            for produced in produces:
                if "application/octet-stream" in produced:
                    content_type = produced
        if content_type is None:
            raise NonConformingResponseHeaders(
                "Multiple response content types are defined in the operation spec, but the "
                "handler response did not specify which one to return.")
        return content_type


def header_content_type(headers: Any) -> str | None:
    """The first Content-Type in a handler's headers (a dict, or (name, value) pairs of str
    or bytes), as connexion.utils.extract_content_type reads it."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        name = key.decode("latin-1") if isinstance(key, bytes) else key
        if name.lower() == "content-type":
            return str(value.decode("latin-1") if isinstance(value, bytes) else value)
    return None


class _OnceDecorator(StarletteDecorator):
    """Builds the parameter and response decorators around a handler once."""

    @property
    def _parameter_decorator_cls(self) -> type[AsyncParameterDecorator]:
        return _Parameters

    @property
    def _response_decorator_cls(self) -> type[AsyncResponseDecorator]:
        return _Response

    @property
    def uri_parser(self) -> Any:
        return uri_parser(self.uri_parser_class or operation.uri_parser_class, operation)

    @functools.cache  # noqa: B019 (one instance per operation, kept for the app's life)
    def decorate(self, function: Callable[..., Any]) -> Callable[..., Any]:
        return super().decorate(function)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        # Connexion's wrapper hands the request its context's scope and receive as werkzeug
        # proxies (every later scope lookup of the request then goes through one) and builds
        # a URI parser per request; here the request gets the objects themselves, and the
        # parser (a function of the operation's definitions) is built once per operation.
        parsers: list[tuple[Any, Any]] = []

        @functools.wraps(function)
        async def wrapper(*_args: Any, **_kwargs: Any) -> Any:
            current = _operation.get()
            if not parsers or parsers[0][0] is not current:
                parsers[:] = [(current, self.uri_parser)]
            # The Starlette framework's get_request, with the query read as OnceRequest reads it.
            request = OnceRequest(_scope.get(), _receive.get(), uri_parser=parsers[0][1])
            return await self.decorate(function)(request)

        return wrapper


class _Operation(AsyncOperation):
    @functools.cached_property
    def fn(self) -> Callable[..., Any]:
        decorator = _OnceDecorator(pythonic_params=self.pythonic_params,
                                   jsonifier=self.jsonifier)
        return decorator(self._fn)


class OnceApi(AsyncApi):
    """The API class of the app's innermost layer, making `_Operation`s."""

    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return _Operation.from_operation(operation, pythonic_params=self.pythonic_params,
                                         jsonifier=self.jsonifier)


def _accepts_kwarg_once() -> None:
    """The security handler asks twice a request whether the info function takes `request`
    and `required_scopes`: a property of the function, answered once per function."""
    original = AbstractSecurityHandler._accepts_kwarg
    if not hasattr(original, "cache_info"):
        AbstractSecurityHandler._accepts_kwarg = staticmethod(
            functools.lru_cache(maxsize=256)(original))


def _body_definition_once() -> None:
    """Connexion looks an operation's body definition up six times a request (a media-type
    match over the spec's content map each time); it is a fixed part of the spec, and the
    lookup returns the spec's own dict, so remembering it returns the very same object."""
    original = OpenAPIOperation.body_definition
    if getattr(original, "_sandbox_once", False):
        return

    def body_definition(self: OpenAPIOperation, content_type: str | None = None) -> Any:
        known: dict[str | None, Any] = self.__dict__.setdefault("_sandbox_body_definitions", {})
        if content_type in known:
            return known[content_type]
        found = original(self, content_type)
        if len(known) < 16:  # the media type comes from the request: keep the cache bounded
            known[content_type] = found
        return found

    body_definition._sandbox_once = True  # type: ignore[attr-defined]
    OpenAPIOperation.body_definition = body_definition


_accepts_kwarg_once()
_body_definition_once()
