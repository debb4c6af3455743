"""Request validation builds its validators once per operation (and media type), and still
checks every request: bad parameters, media types and bodies get their vendor errors."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.middleware.request_validation import RequestValidationOperation

from sandbox.http import request_checks, validation
from tests.conftest import Sandbox

PATH = "/lists/demolist1/import-jobs"
BODY = {"data": {"type": "csv", "content": "username\nalice\nbob\n"}}


def _count_builds(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[Any]:
    built: list[Any] = []
    real = cls.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(kwargs.get("encoding"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return built


def test_validators_are_built_once_per_operation(sb: Sandbox,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    params = _count_builds(monkeypatch, validation.VendorParameterValidator)
    bodies = _count_builds(monkeypatch, validation.VendorJSONBodyValidator)
    # A fresh operation of this test's own app: the list GET, then the create.
    answers = [sb.call("inboxapp", "GET", PATH, params={"limit": n}) for n in (1, 2, 3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    creates = [sb.call("inboxapp", "POST", PATH, json=BODY) for _ in range(3)]
    assert [c.json()["totalCount"] for c in creates] == [2, 2, 2]
    assert len(params) <= 2 and len(bodies) <= 1
    # Another charset is another validator (it decodes the bytes), made once too.
    latin = [sb.call("inboxapp", "POST", PATH, content=b'{"data": {"type": "csv", "content": '
                     b'"username\\nzo\\u00e9\\n"}}',
                     headers={"Content-Type": "application/json; charset=latin-1"})
             for _ in range(2)]
    assert [r.status_code for r in latin] == [200, 200]
    assert bodies.count("latin-1") <= 1


def test_every_request_is_still_checked(sb: Sandbox) -> None:
    assert sb.call("inboxapp", "POST", PATH, json=BODY).status_code == 200
    bad_param = sb.call("inboxapp", "GET", PATH, params={"limit": 0})
    assert bad_param.status_code == 400 and "limit" in bad_param.text
    bad_type = sb.call("inboxapp", "POST", PATH, content=b"username\nalice\n",
                       headers={"Content-Type": "text/csv"})
    assert bad_type.status_code == 415, bad_type.text
    bad_body = sb.call("inboxapp", "POST", PATH, json={"data": {"type": "csv"}})
    assert bad_body.status_code == 400 and "content" in bad_body.text
    assert sb.call("inboxapp", "POST", PATH, json=BODY).status_code == 200


@pytest.mark.parametrize("headers", [
    [],
    [(b"content-type", b"application/json")],
    [(b"Content-Type", b"application/json; charset=latin-1")],
    [(b"CONTENT-TYPE", b"text/xml;charset=iso-8859-1")],
    [(b"content-type", b"application/json;charset=")],
    [(b"accept", b"*/*"), (b"content-type", b"text/csv"), (b"content-type", b"text/xml")],
    [(b"content-type", "application/json; charset=\u00e9".encode("latin-1"))],
    [(b"content-typ", b"application/json")],
])
@pytest.mark.parametrize("consumes", [["application/json"], ["text/xml", "application/json"], []])
def test_content_type_is_read_as_connexion_reads_it(headers: list[tuple[bytes, bytes]],
                                                    consumes: list[str]) -> None:
    class Operation:
        pass

    operation = Operation()
    operation.consumes = consumes  # type: ignore[attr-defined]
    ours = request_checks._Operation.__new__(request_checks._Operation)
    theirs = RequestValidationOperation.__new__(RequestValidationOperation)
    ours._operation = theirs._operation = operation  # type: ignore[assignment]
    assert ours.extract_content_type(headers) == theirs.extract_content_type(headers)


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/x", "query_string": b"a=1",
            "headers": [(b"authorization", b"Bearer k")], "path_params": {"p": "1"}}


def test_plain_requests_are_made_as_connexions_are() -> None:
    from connexion.lifecycle import ConnexionRequest
    from starlette.requests import Request

    parser = object()
    for made, reference in [
        (request_checks.PlainRequest(_scope(), uri_parser=parser),
         ConnexionRequest(_scope(), uri_parser=parser)),
        (request_checks.OnceRequest(_scope()), ConnexionRequest(_scope())),
        (request_checks.PlainRequest.from_starlette_request(Request(_scope()), uri_parser=parser),
         ConnexionRequest.from_starlette_request(Request(_scope()), uri_parser=parser)),
    ]:
        mine, theirs = vars(made), vars(reference)
        assert list(mine) == list(theirs)
        assert {k: v for k, v in mine.items() if k != "_starlette_request"} == {
            k: v for k, v in theirs.items() if k != "_starlette_request"}
        assert type(made._starlette_request) is type(reference._starlette_request)
        assert made._starlette_request.scope == reference._starlette_request.scope
        assert made.headers.get("authorization") == "Bearer k"


def test_a_vendor_request_makes_no_connexion_request_the_slow_way(
        sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from connexion.lifecycle import ConnexionRequest

    made: list[Any] = []
    real = ConnexionRequest.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(type(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(ConnexionRequest, "__init__", counting)
    assert sb.call("inboxapp", "POST", PATH, json=BODY).status_code == 200
    # The security layer, the parameter validator and the handler's request: all PlainRequest.
    assert made == []
    # The security layer still refuses what it refused.
    assert sb.call("inboxapp", "POST", PATH, json=BODY,
                   headers={"Authorization": "Bearer "}).status_code == 401


@pytest.mark.parametrize("headers", [
    [], [(b"content-type", b"application/json")], [(b"x", b"1"), (b"content-type", b"a/b; x=1")],
    [(b"content-type", b"text/plain"), (b"content-type", b"text/csv")],
    [(b"Content-Type", b"text/xml")], [(b"content-type", b"caf\xe9/x")], ((b"content-type", b""),),
])
def test_content_type_is_connexions(headers: Any) -> None:
    from connexion.lifecycle import ConnexionRequest

    def scope() -> dict[str, Any]:
        return {"type": "http", "headers": headers}

    assert (request_checks.PlainRequest(scope()).content_type
            == ConnexionRequest(scope()).content_type)
    assert (request_checks.OnceRequest(scope()).content_type
            == ConnexionRequest(scope()).content_type)


def test_content_type_builds_no_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.requests import Request

    def no_headers(self: Any) -> Any:
        raise AssertionError("Starlette's Headers built for the content type")

    monkeypatch.setattr(Request, "headers", property(no_headers))
    scope = {"type": "http", "headers": [(b"content-type", b"application/json")]}
    assert request_checks.OnceRequest(scope).content_type == "application/json"


def test_scope_and_headers_are_read_without_connexions_getattr(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from connexion.lifecycle import ConnexionRequest

    reference = ConnexionRequest(_scope())
    expected = (reference.scope, dict(reference.headers), reference.context)

    def no_getattr(self: Any, item: str) -> Any:
        raise AssertionError(f"__getattr__({item!r})")

    monkeypatch.setattr(ConnexionRequest, "__getattr__", no_getattr)
    request = request_checks.OnceRequest(_scope())
    assert (request.scope, dict(request.headers), request.context) == expected
    assert request.headers is request._starlette_request.headers  # Starlette's, kept
