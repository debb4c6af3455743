"""The compiled check tries a `oneOf` as an `anyOf` (stopping at the first branch that holds)
only where no instance can satisfy two branches: its verdicts are those of the plain `oneOf`
on every request body schema of the five specs."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sandbox.http import fastcheck
from tests.http.test_fastcheck import SCHEMAS, mutate, sample


def _branch(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["kind"],
            "properties": {"kind": {"type": "string", "enum": [value]}}, **extra}


@pytest.mark.parametrize(("branches", "exclusive"), [
    ([_branch("a"), _branch("b"), _branch("c")], True),
    ([_branch("a"), {**_branch("b"), "required": ["kind", "x"]}], True),
    ([_branch("a"), _branch("a")], False),  # a shared value
    ([_branch(1), _branch(True)], False),  # equal in Python, and so for the check
    ([_branch(1), _branch(1.0)], False),
    ([_branch(float("nan")), _branch("b")], False),
    ([_branch("a"), {**_branch("b"), "type": ["object", "null"]}], False),  # nullable
    ([_branch("a"), {**_branch("b"), "required": []}], False),
    ([_branch("a"), {**_branch("b"), "type": "string"}], False),
    ([_branch("a"), {"type": "object", "required": ["kind"]}], False),  # no enum
    ([_branch([1]), _branch("b")], False),  # not a scalar
    ([], False),
])
def test_exclusive_branches(branches: list[Any], exclusive: bool) -> None:
    assert fastcheck._exclusive(branches) is exclusive


def _one_of_count(node: Any) -> int:
    if isinstance(node, dict):
        return ("oneOf" in node) + sum(_one_of_count(v) for v in node.values())
    if isinstance(node, list):
        return sum(_one_of_count(v) for v in node)
    return 0


REWRITTEN = [s for s in SCHEMAS
             if _one_of_count(fastcheck._draft4(s[1], set(), set())) < _one_of_count(s[1])]


def test_the_import_bodies_are_rewritten() -> None:
    assert any(name.startswith("inboxapp.yaml POST /lists/{listId}/import-jobs")
               for name, _, _ in REWRITTEN)


@pytest.mark.parametrize(("name", "schema", "examples"), REWRITTEN, ids=[s[0] for s in REWRITTEN])
def test_the_rewrite_gives_the_one_of_verdict(name: str, schema: dict[str, Any],
                                              examples: list[Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rewritten = fastcheck._compile(schema)
    monkeypatch.setattr(fastcheck, "_exclusive", lambda branches: False)
    plain = fastcheck._compile(schema)
    assert rewritten is not None and plain is not None
    rnd = random.Random(name)
    verdicts = set()
    for i in range(2000):
        body = mutate(examples[i % len(examples)], rnd) if examples and i % 2 else sample(
            schema, rnd)
        verdict = plain(body)
        assert rewritten(body) == verdict, body
        verdicts.add(verdict)
    assert verdicts == {True, False}
