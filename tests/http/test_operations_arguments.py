"""The parameter decorator's per-operation facts give the handler what Connexion's own code
would: whether it takes the body (Connexion's rule, over every operation of the five specs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from connexion.context import _operation
from connexion.decorators.parameter import (
    BaseParameterDecorator,
    inspect_function_arguments,
)
from connexion.frameworks.starlette import Starlette
from connexion.lifecycle import ConnexionRequest

from sandbox.http import operations
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
                got = theirs._maybe_get_body(_Request(content_type),  # type: ignore[arg-type]
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
