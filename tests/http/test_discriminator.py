"""The discriminator shortcut of `oneOf` gives exactly the standard keyword's verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft4Validator

from sandbox.http.schemas import compiled


def branch(kind: str, field: str, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["type", field],
            "properties": {"type": {"type": "string", "enum": [kind]},
                           field: {"type": "string", "minLength": 1}}, **extra}


TAGGED = {"oneOf": [branch("csv", "content"), branch("followers", "username")],
          "discriminator": {"propertyName": "type"}}
# Not exact: both branches allow "csv", so a body can match both (oneOf must refuse it).
OVERLAPPING = {"oneOf": [branch("csv", "content"),
                         {**branch("csv", "username"),
                          "properties": {"type": {"enum": ["csv", "x"]},
                                         "username": {"type": "string"}}}],
               "discriminator": {"propertyName": "type"}}
# Not exact: the discriminator is not required in the second branch.
OPTIONAL_TAG = {"oneOf": [branch("csv", "content"),
                          {"type": "object", "required": ["username"],
                           "properties": {"type": {"enum": ["followers"]}}}],
                "discriminator": {"propertyName": "type"}}

BODIES = [
    {"type": "csv", "content": "a,b"},
    {"type": "csv", "content": ""},
    {"type": "csv"},
    {"type": "followers", "username": "jack"},
    {"type": "followers", "content": "a"},
    {"type": "likes", "content": "a"},
    {"type": 1, "content": "a"},
    {"type": ["csv"], "content": "a"},
    {"type": None, "username": "jack"},
    {"content": "a"},
    {"type": "csv", "content": "a", "username": "b"},
    "not an object",
    None,
]


def verdicts(validator: Any, body: Any) -> list[tuple[str, str, list[Any]]]:
    return sorted((e.validator, e.message, list(e.absolute_path))
                  for e in validator.iter_errors(body))


@pytest.mark.parametrize("schema", [TAGGED, OVERLAPPING, OPTIONAL_TAG],
                         ids=["tagged", "overlapping", "optional-tag"])
@pytest.mark.parametrize("body", BODIES, ids=[repr(b)[:40] for b in BODIES])
def test_same_errors_as_the_standard_oneof(schema: dict[str, Any], body: Any) -> None:
    assert verdicts(compiled(schema), body) == verdicts(Draft4Validator(schema), body)


def test_a_body_matching_two_overlapping_branches_is_still_refused() -> None:
    body = {"type": "csv", "content": "a", "username": "b"}
    assert [e.validator for e in compiled(OVERLAPPING).iter_errors(body)] == ["oneOf"]
