"""The parameter decorator's per-operation facts give the handler what Connexion's own code
would: whether it takes the body (Connexion's rule), and the keyword arguments (Connexion's
`prep_kwargs`), over every operation of the five specs and operations with what they lack."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from connexion.context import _context, _operation, context
from connexion.decorators.parameter import (
    BaseParameterDecorator,
    inspect_function_arguments,
    prep_kwargs,
    pythonic,
    sanitized,
)
from connexion.frameworks.starlette import Starlette
from connexion.lifecycle import ConnexionRequest
from connexion.operations import OpenAPIOperation
from connexion.spec import Specification
from connexion.uri_parsing import OpenAPIURIParser
from starlette.datastructures import QueryParams

from sandbox.http import operations
from sandbox.http.request_checks import uri_parser
from tests.conftest import Sandbox
from tests.http.spec_operations import spec_operations

OPERATIONS = spec_operations()
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/json",
                 "application/xml", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "text/plain", "application/octet-stream"]
ARGUMENTS: list[tuple[list[str], bool]] = [([], False), ([], True), (["body"], False),
                                           (["user"], False), (["body", "user"], True)]


@contextmanager
def current(op: Any) -> Iterator[None]:
    token = _operation.set(op)
    try:
        yield
    finally:
        _operation.reset(token)


class _Request:
    """What Connexion's `_maybe_get_body` reads of a request."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self.mimetype = content_type.split(";")[0]

    def get_body(self) -> str:
        return "the body"


def _handler_arguments(op: Any) -> list[tuple[list[str], bool]]:
    return [inspect_function_arguments(op.function), *ARGUMENTS]


@pytest.mark.parametrize(("name", "op"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
@pytest.mark.parametrize("pythonic", [True, False])
def test_takes_body_is_connexions_rule(name: str, op: Any, pythonic: bool) -> None:
    ours = operations._Parameters(framework=Starlette, pythonic_params=pythonic)
    theirs = BaseParameterDecorator(framework=Starlette, pythonic_params=pythonic)
    for arguments, has_kwargs in _handler_arguments(op):
        takes = ours._takes_body(op, arguments, has_kwargs)
        assert takes is not None
        with current(op):
            for content_type in CONTENT_TYPES:
                got = theirs._maybe_get_body(_Request(content_type),
                                             arguments=arguments, has_kwargs=has_kwargs)
                assert (got is not None) == takes, (arguments, has_kwargs, content_type)


def test_a_reused_body_is_never_read_or_asked_for(sb: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the body was asked for again")

    monkeypatch.setattr(ConnexionRequest, "get_body", never)
    monkeypatch.setattr(BaseParameterDecorator, "_maybe_get_body", never)
    body = {"data": {"type": "csv", "content": "username\nalice\nbob\n"}}
    r = sb.call("inboxapp", "POST", "/lists/demolist1/import-jobs", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["totalCount"] == 2
    # A handler without a body argument is not handed one either.
    assert sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs").status_code == 200


def styles(ids: Any, n: Any, page: Any, tags: Any, filter_: Any, payload: Any, user: Any,
           context_: Any, **kwargs: Any) -> None:
    """The handler of the operation below (only its signature is read)."""


def plain(count: Any, body: Any) -> None:
    """A handler with neither the context nor **kwargs."""


def _synthetic_operations() -> list[tuple[str, OpenAPIOperation]]:
    """Operations with what the shipped specs lack: defaults of every kind (scalars, object
    properties, objects, arrays), deepObject, an integer path array, a body named by
    x-body-name that is nullable with a default, and the TRACE method."""
    def query(name: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, **extra}

    parameters = [
        {"name": "ids", "in": "path", "required": True,
         "schema": {"type": "array", "items": {"type": "integer"}}},
        {"name": "n", "in": "path", "required": True, "schema": {"type": "number"}},
        query("page", {"type": "integer", "default": 1}),
        query("tags", {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]}),
        query("filter", {"type": "object", "properties": {
            "age": {"type": "integer", "default": 30}, "tag": {"type": "string"},
            "deep": {"type": "object", "properties": {"x": {"type": "integer", "default": 2}}}}},
            style="deepObject", explode=True),
        query("obj", {"type": "object", "default": {"k": {"n": 1}}}, style="deepObject"),
        query("level", {"type": "string", "default": "top"}),
        query("maybe", {"type": "integer", "nullable": True}),
        query("Camel-Case", {"type": "boolean", "default": False}),
    ]
    body = {"x-body-name": "payload", "content": {"application/json": {"schema": {
        "type": "object", "nullable": True, "default": {"d": [1]}}}}}
    counted = [query("count", {"type": "integer", "default": 3})]
    raw: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": "synthetic", "version": "1"},
                           "paths": {
        "/s/{ids}/{n}": {
            "post": {"operationId": "styles", "parameters": parameters, "requestBody": body,
                     "responses": {"200": {"description": "ok"}}},
            "trace": {"operationId": "styles", "parameters": parameters, "requestBody": body,
                      "responses": {"200": {"description": "ok"}}}},
        "/plain": {"put": {"operationId": "plain", "parameters": counted,
                           "requestBody": {"content": {"application/json": {"schema": {}}}},
                           "responses": {"200": {"description": "ok"}}}}}}
    spec = Specification.load(raw)
    resolver = _Resolver()
    return [(f"synthetic {method.upper()} {path}",
             OpenAPIOperation.from_spec(spec, path=path, method=method, resolver=resolver))
            for path, item in raw["paths"].items() for method in item]


class _Resolver:
    def resolve(self, operation: Any) -> Any:
        class Resolution:
            function = staticmethod(globals()[operation.operation_id])
            operation_id = operation.operation_id
        return Resolution()


ALL_OPERATIONS = [*OPERATIONS, *_synthetic_operations()]
CONTEXT = {"user": "u1", "token_info": {"sub": "u1"}, "extra": 1}
BODIES: list[Any] = [None, {}, {"a": 1}, "null", " None ", [1, 2], 0, ""]
SANITIZERS = [functools.lru_cache(maxsize=None)(pythonic), sanitized]


def _value_samples(param: dict[str, Any]) -> list[str]:
    kind = (param.get("schema") or {}).get("type")
    return {"integer": ["5", "abc", "null"], "number": ["2.5", "x"], "boolean": ["true", "0"],
            "array": ["a,b", "1"]}.get(str(kind), ["abc", "null", ""])


def _queries(op: OpenAPIOperation) -> list[list[tuple[str, str]]]:
    params = [p for p in op.parameters if p["in"] == "query"]
    out: list[list[tuple[str, str]]] = [[], [("unknown", "1")]]
    for p in params:
        out += [[(p["name"], v)] for v in _value_samples(p)]
        out += [[(f"{p['name']}[age]", "7")], [(f"{p['name']}[deep][x]", "4")],
                [(f"{p['name']}[k][m]", "z")], [(p["name"], "1"), (p["name"], "2")]]
    out.append([(p["name"], _value_samples(p)[0]) for p in params] + [("other", "x")])
    return out


def _paths(op: OpenAPIOperation) -> list[dict[str, str]]:
    names = [p["name"] for p in op.parameters if p["in"] == "path"]
    out = [{name: v for name in names} for v in ["1", "1,2", "abc", "null"]]
    return [*out, {**{name: "7" for name in names}, "injected": "i"}]


def _argument_sets(op: OpenAPIOperation, sanitize: Any) -> list[tuple[list[str], bool]]:
    everything = [sanitize(p["name"]) for p in op.parameters]
    everything += ["body", "payload", "user", "token_info", "context_"]
    return [*_handler_arguments(op), (everything, False), (everything, True),
            (everything[:1], False)]


def _request(op: OpenAPIOperation, path: dict[str, str], query: list[tuple[str, str]],
             content_type: str | None, parser: Any) -> ConnexionRequest:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    scope = {"type": "http", "method": op.method.upper(), "path": "/", "headers": headers,
             "query_string": urlencode(query).encode(), "path_params": dict(path)}
    return ConnexionRequest(scope, uri_parser=parser)


def _outcome(call: Any, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.clear()
    try:
        result: Any = ("ok", call())
    except Exception as exc:  # the same failure is part of the same answer
        result = ("raised", type(exc), str(exc))
    passed_context = result[0] == "ok" and result[1].get("context_") is context
    return result, passed_context, [(r.levelno, r.getMessage()) for r in caplog.records]


def _cases(op: OpenAPIOperation) -> Iterator[tuple[Any, ...]]:
    """Each handler signature with each path, each query, and each body and media type."""
    paths, queries = _paths(op), _queries(op)
    bodies = BODIES if op.is_request_body_defined else [None]
    for sanitize in SANITIZERS:
        for arguments, has_kwargs in _argument_sets(op, sanitize):
            requests: list[tuple[Any, ...]] = [
                (path, queries[-1], "application/json", bodies[min(2, len(bodies) - 1)])
                for path in paths]
            requests += [(paths[0], query, None, None) for query in queries]
            requests += [(paths[0], queries[-1], content_type, body) for body in bodies
                         for content_type in [None, "application/json", "text/plain"]]
            for request in requests:
                yield (sanitize, arguments, has_kwargs, *request)


def _compare(op: OpenAPIOperation, case: tuple[Any, ...],
             caplog: pytest.LogCaptureFixture) -> None:
    sanitize, arguments, has_kwargs, path, query, content_type, body = case
    plan = operations._Arguments.of(op, arguments, has_kwargs, sanitize)
    assert plan is not None
    # Connexion's request (its URI parser) and code, and the app's (operations.py builds the
    # handler's request with request_checks' parser).
    theirs = _request(op, path, query, content_type,
                      OpenAPIURIParser(op.parameters, op.body_definition()))
    expected = _outcome(lambda: prep_kwargs(theirs, request_body=body, files={},
                                            arguments=arguments, has_kwargs=has_kwargs,
                                            sanitize=sanitize), caplog)
    ours = _request(op, path, query, content_type, uri_parser(OpenAPIURIParser, op))
    got = _outcome(lambda: plan.kwargs(ours, body, operations._mimetype(ours)), caplog)
    assert got == expected, case


@pytest.mark.parametrize(("name", "op"), ALL_OPERATIONS, ids=[n for n, _ in ALL_OPERATIONS])
def test_arguments_are_connexions_prep_kwargs(name: str, op: OpenAPIOperation,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connexion.decorators.parameter")
    token = _context.set(CONTEXT)
    try:
        with current(op):
            for case in _cases(op):
                _compare(op, case, caplog)
    finally:
        _context.reset(token)


def test_query_strings_are_read_without_starlettes_multidict(
        sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a QueryParams was built")

    monkeypatch.setattr(QueryParams, "__init__", never)
    answers = [sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs", params={"limit": n})
               for n in (1, 2)]
    assert [a.status_code for a in answers] == [200, 200]
    bad = sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs", params={"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.text
