"""The URI parser that reads its parameter schemas once resolves path and query parameters
exactly as Connexion's own parser does, and the request that reads its query string without
Starlette's multidict hands the parser the same lists (differential tests over every operation
of the five specs, and an operation with every parameter style)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from connexion.lifecycle import ConnexionRequest
from connexion.operations import OpenAPIOperation
from connexion.spec import Specification
from connexion.uri_parsing import OpenAPIURIParser

from sandbox.http.request_checks import OnceRequest, OnceURIParser, uri_parser
from tests.http.spec_operations import spec_operations

VALUES = ["abc", "1", "-5", "2.5", "true", "null", "", "a,b,c", "1,2", "x|y", "p q", "%20"]


def _styles_operation() -> OpenAPIOperation:
    """An operation with the parameter styles the shipped specs do not use."""
    def query(name: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, **extra}

    items = {"type": "integer"}
    parameters = [
        {"name": "ids", "in": "path", "required": True,
         "schema": {"type": "array", "items": items}},
        {"name": "n", "in": "path", "required": True, "schema": {"type": "number"}},
        query("filter", {"type": "object", "properties": {
            "age": {"type": "integer"}, "tag": {"type": "string"},
            "deep": {"type": "object", "properties": {"x": {"type": "integer"}}}}},
            style="deepObject", explode=True),
        query("free", {"type": "object"}, style="deepObject"),
        query("pipes", {"type": "array", "items": items}, style="pipeDelimited"),
        query("spaces", {"type": "array", "items": {"type": "string"}},
              style="spaceDelimited", explode=False),
        query("csv", {"type": "array", "items": {"type": "number"}}, explode=False),
        query("multi", {"type": "array", "items": {"type": "boolean"}}),
        query("maybe", {"type": "integer", "nullable": True}),
        query("maybe_text", {"type": "string", "nullable": True}),
        query("untyped", {}),
        query("flag", {"type": "boolean"}),
        query("plain", {"type": "string"}),
    ]
    spec = Specification.load({
        "openapi": "3.0.3", "info": {"title": "styles", "version": "1"},
        "paths": {"/s/{ids}/{n}": {"get": {"operationId": "styles", "parameters": parameters,
                                           "responses": {"200": {"description": "ok"}}}}}})
    return OpenAPIOperation.from_spec(spec, path="/s/{ids}/{n}", method="get",
                                      resolver=_Resolver())


class _Resolver:
    def resolve(self, operation: Any) -> Any:
        class Resolution:
            function = staticmethod(lambda: None)
            operation_id = "styles"
        return Resolution()


OPERATIONS = [*spec_operations(), ("styles", _styles_operation())]


def _outcome(call: Any, data: Any) -> Any:
    try:
        return ("ok", call(copy.deepcopy(data)))
    except Exception as exc:  # the same failure is part of the same answer
        return ("raised", type(exc), str(exc))


def _queries(op: OpenAPIOperation) -> list[dict[str, list[str]]]:
    names = [p["name"] for p in op.parameters if p["in"] == "query"]
    out: list[dict[str, list[str]]] = [{}, {"unknown": ["1"]}, {"unknown[a]": ["1"]}]
    for name in names:
        out += [{name: [v]} for v in VALUES]
        out += [{name: ["1", "2"]}, {name: ["a,b", "c"]}, {name: ["x|y", "z"]}]
        out += [{f"{name}[age]": ["7"]}, {f"{name}[tag]": ["t"], f"{name}[age]": ["x"]},
                {f"{name}[deep][x]": ["3"], f"{name}[age]": ["1"]}, {f"{name}[]": ["1"]},
                {f"{name}[a][b]": ["1"], name: ["2"]}]
    for a, b in itertools.combinations(names, 2):
        out.append({a: ["1"], b: ["2,3"], "other": ["x"]})
    out.append({name: ["1"] for name in names})
    return out


def _paths(op: OpenAPIOperation) -> list[dict[str, str]]:
    names = [p["name"] for p in op.parameters if p["in"] == "path"]
    out = [{name: v for name in names} for v in VALUES]
    return [*out, {**{name: "1" for name in names}, "extra": "e"}]


@pytest.mark.parametrize(("name", "op"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
def test_the_once_parser_resolves_as_connexions(name: str, op: OpenAPIOperation) -> None:
    assert op.uri_parser_class is OpenAPIURIParser
    ours = uri_parser(op.uri_parser_class, op)
    theirs = OpenAPIURIParser(op.parameters, op.body_definition())
    assert isinstance(ours, OnceURIParser)
    assert ours.param_schemas == theirs.param_schemas
    for query in _queries(op):
        assert _outcome(ours.resolve_query, query) == _outcome(theirs.resolve_query, query), query
    for path in _paths(op):
        assert _outcome(ours.resolve_path, path) == _outcome(theirs.resolve_path, path), path


def test_other_parser_classes_are_built_as_they_are() -> None:
    class Custom(OpenAPIURIParser):
        pass

    _, op = OPERATIONS[0]
    assert type(uri_parser(Custom, op)) is Custom


QUERY_STRINGS: list[bytes | str] = [
    b"", b"a=1", b"a=1&a=2&b=3&a=4", b"a", b"a=", b"=x", b"&&", b"a=%20b+c%2B", b"a=1;b=2",
    b"filter[age]=7&filter[tag]=t&filter[deep][x]=3", b"\xe9=\xff&%E9=%FF", b"status=queued",
    b"status=queued&status=failed&limit=5&cursor=abc&unknown=1", b"ids=1,2|3&pipes=1|2",
    "limit=10&plain=caf\u00e9", b"multi=true&multi=false&csv=1.5,2&spaces=a%20b",
]


class _Recording(OpenAPIURIParser):
    def resolve_query(self, query_data: Any) -> Any:
        return ("as handed to the parser", copy.deepcopy(query_data))


@pytest.mark.parametrize(("name", "op"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
def test_the_once_request_reads_the_query_as_connexions(name: str, op: OpenAPIOperation) -> None:
    recording = _Recording(op.parameters, op.body_definition())
    parsers = [recording, OpenAPIURIParser(op.parameters, op.body_definition())]
    for query_string in QUERY_STRINGS:
        for parser in parsers:
            scope = {"type": "http", "headers": [], "query_string": query_string}
            ours = OnceRequest(scope, uri_parser=parser)
            theirs = ConnexionRequest(dict(scope), uri_parser=parser)
            assert _query(ours) == _query(theirs), query_string


def _query(request: ConnexionRequest) -> Any:
    try:
        return ("ok", request.query_params)
    except Exception as exc:  # the same failure is part of the same answer
        return ("raised", type(exc), str(exc))
