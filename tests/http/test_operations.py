"""Connexion's handler wrappers are built once per operation, and still read each request."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from connexion.utils import extract_content_type
from starlette.requests import Request

from sandbox.http import operations
from tests.conftest import Sandbox

PATH = "/lists/demolist1/import-jobs"


def create_three(sb: Sandbox) -> None:
    """Three creates: the create operation's wrappers exist, and the list has three jobs."""
    body = {"data": {"type": "csv", "content": "username\nalice\n"}}
    for _ in range(3):
        assert sb.call("inboxapp", "POST", PATH, json=body).status_code == 200


def test_requests_do_not_inspect_handler_signatures(sb: Sandbox,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = PATH
    create_three(sb)
    sb.call("inboxapp", "GET", path)  # the first call of an operation builds its wrappers
    calls = []
    real = inspect.signature

    def counting(*args: object, **kwargs: object) -> inspect.Signature:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect, "signature", counting)
    answers = [sb.call("inboxapp", "GET", path, params={"limit": n}) for n in (1, 2, 3)]
    assert calls == []
    # Each request's own parameters still reach the handler (nothing cached per request).
    assert [len(a.json()["data"]) for a in answers] == [1, 2, 3]
    bad = sb.call("inboxapp", "GET", path, params={"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.text


def test_the_handler_gets_the_body_the_validator_parsed(sb: Sandbox,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async def second_parse(self: Request) -> None:
        raise AssertionError("the JSON body was parsed a second time")

    monkeypatch.setattr(Request, "json", second_parse)
    body = {"data": {"type": "csv", "content": "username\nalice\nbob\n", "fileName": "a.csv"}}
    r = sb.call("inboxapp", "POST", "/lists/demolist1/import-jobs", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["totalCount"] == 2
    # A request the validator refuses still gets its vendor error, naming the field.
    bad = sb.call("inboxapp", "POST", "/lists/demolist1/import-jobs",
                  json={"data": {"type": "csv"}})
    assert bad.status_code == 400 and "content" in bad.text


def test_uri_parsers_are_built_once_per_operation(sb: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = PATH
    create_three(sb)
    built = []
    real = operations._OnceDecorator.uri_parser

    def counting(self: Any) -> Any:
        built.append(self)
        return real.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(operations._OnceDecorator, "uri_parser", property(counting))
    answers = [sb.call("inboxapp", "GET", path, params={"limit": n}) for n in (1, 2, 3)]
    assert [len(a.json()["data"]) for a in answers] == [1, 2, 3]
    assert len(built) <= 1  # the first GET of this operation, if no test ran it before


def test_a_json_request_is_not_searched_for_form_files(sb: Sandbox,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async def form(self: Request, **_kwargs: Any) -> None:
        raise AssertionError("a JSON body was parsed as a form")

    monkeypatch.setattr(Request, "form", form)
    body = {"data": {"type": "csv", "content": "username\nalice\n"}}
    r = sb.call("inboxapp", "POST", "/lists/demolist1/import-jobs", json=body)
    assert r.status_code == 200, r.text
    assert sb.call("inboxapp", "GET", "/lists/demolist1/import-jobs").status_code == 200


@pytest.mark.parametrize("headers", [
    {}, {"Content-Type": "application/xml"}, {"content-type": "text/plain", "X": "1"},
    {"X-Other": "a"}, [("CONTENT-TYPE", "application/json")], [(b"content-type", b"text/xml")],
    [(b"x", b"y"), (b"Content-Type", b"application/octet-stream"), (b"content-type", b"z")],
])
def test_handler_content_types_are_read_as_connexion_reads_them(headers: Any) -> None:
    assert operations.header_content_type(headers) == extract_content_type(headers)
