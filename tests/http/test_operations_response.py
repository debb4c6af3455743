"""The response decorator's serialisation (operations._Response._serialize_data) against
Connexion's own: the same text for every value and content type, without json.dumps."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from connexion.datastructures import NoContent
from connexion.decorators.response import BaseResponseDecorator
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.jsonifier import Jsonifier

from sandbox.http import operations

VALUES: list[Any] = [
    {"id": "x", "n": 1, "f": 0.1, "none": None, "ok": True, "list": [1, "é", {"a": []}]},
    [], {}, "text", "ünïcode ☃", b"bytes", 0, 1.5e300, None, NoContent, [None],
    {"when": datetime.datetime(2025, 1, 15, 10, 0, tzinfo=datetime.UTC),
     "naive": datetime.datetime(2025, 1, 15, 10, 0), "day": datetime.date(2025, 1, 15),
     "uuid": uuid.UUID(int=7), "dec": decimal.Decimal("1.25")},
    {"nan": float("nan"), "inf": float("inf")}, {1: "int key", 2.5: "float key"},
]
TYPES = ["application/json", "application/problem+json", "application/json; charset=utf-8",
         "text/plain", "text/csv", "application/xml", None]


def _reference(data: Any, content_type: str | None) -> Any:
    decorator = BaseResponseDecorator(framework=StarletteFramework, jsonifier=Jsonifier())
    return BaseResponseDecorator._serialize_data(decorator, data, content_type=content_type)


def _outcome(serialise: Any, data: Any, content_type: str | None) -> Any:
    """The text, or the exception's type and message (bytes are no JSON, for both)."""
    try:
        return serialise(data, content_type)
    except Exception as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("content_type", TYPES)
def test_serialisation_is_connexions(content_type: str | None) -> None:
    ours = operations._Response(framework=StarletteFramework, jsonifier=Jsonifier())
    for data in VALUES:
        for _ in range(2):  # the second time with the content type remembered
            mine = _outcome(lambda d, c: ours._serialize_data(d, content_type=c), data,
                            content_type)
            assert mine == _outcome(_reference, data, content_type), (data, content_type)


def test_a_type_connexion_refuses_is_refused_every_time() -> None:
    ours = operations._Response(framework=StarletteFramework, jsonifier=Jsonifier())
    for _ in range(2):
        with pytest.raises(ValueError):
            ours._serialize_data({"a": 1}, content_type="nonsense")
        with pytest.raises(ValueError):
            _reference({"a": 1}, "nonsense")


def test_the_default_jsonifier_does_not_build_an_encoder_per_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = operations._Response(framework=StarletteFramework, jsonifier=Jsonifier())

    def no_dumps(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("json.dumps called")

    monkeypatch.setattr(json, "dumps", no_dumps)
    assert ours._serialize_data({"a": 1}, content_type="application/json") == '{"a": 1}\n'


def test_another_jsonifier_is_used_as_it_is() -> None:
    custom = Jsonifier(indent=2)
    ours = operations._Response(framework=StarletteFramework, jsonifier=custom)
    assert ours._serialize_data({"a": 1}, content_type="application/json") == (
        json.dumps({"a": 1}, indent=2) + "\n")
