"""The compiled body check never passes a body jsonschema refuses (differential test over every
request body schema of the five specs), and it does pass the bodies it should."""

from __future__ import annotations

import random
from typing import Any

import pytest
from connexion.json_schema import resolve_refs
from jsonschema import Draft4Validator

from sandbox.app import load_spec
from sandbox.http.fastcheck import INT64, fast_check
from sandbox.http.schemas import compiled
from sandbox.settings import Settings
from sandbox.vendors import FACES


def body_schemas() -> list[tuple[str, dict[str, Any], list[Any]]]:
    """(name, schema, the spec's own examples of that body)."""
    found = []
    for name in [f.spec_file for f in FACES] + ["sandbox.yaml"]:
        spec = resolve_refs(load_spec(Settings(), name))
        for path, item in spec["paths"].items():
            for method, op in item.items():
                content = (op.get("requestBody") or {}).get("content", {}) if isinstance(
                    op, dict) else {}
                for media, entry in content.items():
                    if "schema" in entry:
                        examples = [e.get("value") for e in (entry.get("examples") or {}).values()]
                        examples += [entry["example"]] if "example" in entry else []
                        examples += ([entry["schema"]["example"]]
                                     if "example" in entry["schema"] else [])
                        found.append((f"{name} {method.upper()} {path} {media}", entry["schema"],
                                      examples))
    return found


SCHEMAS = body_schemas()
STRINGS = ["", "a", "x" * 300, "2025-01-15T10:00:00Z", "2025-01-15", "not a date",
           "someone@example.com", "no-at-sign", "3fa85f64-5717-4562-b3fc-2c963f66afa6",
           "https://example.com/a", "with\nnewline\n", "ümlaut", "fail_rate_limit", "12345"]
INTEGERS = [0, 1, -1, 7, 500, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30]
OTHERS: list[Any] = [None, True, False, 1.0, 2.5, -0.0, [], {}, "1", [None], {"a": 1}]


def mutate(value: Any, rnd: random.Random) -> Any:
    """A copy of a valid body with one value somewhere replaced, or one key dropped."""
    if isinstance(value, dict) and value and rnd.random() < 0.7:
        key = rnd.choice(list(value))
        out = dict(value)
        if rnd.random() < 0.2:
            del out[key]
        else:
            out[key] = mutate(value[key], rnd)
        return out
    if isinstance(value, list) and value and rnd.random() < 0.7:
        i = rnd.randrange(len(value))
        return [*value[:i], mutate(value[i], rnd), *value[i + 1:]]
    return rnd.choice(OTHERS + STRINGS + INTEGERS)


def sample(schema: Any, rnd: random.Random, depth: int = 0) -> Any:
    """A value near the schema's edges: often valid, often just outside it."""
    if not isinstance(schema, dict) or depth > 6:
        return rnd.choice(OTHERS)
    if rnd.random() < 0.08:
        return rnd.choice(OTHERS + STRINGS[:3] + INTEGERS[:3])
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return sample(rnd.choice(schema[key]), rnd, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged = {**merged, **part, "properties": {**merged.get("properties", {}),
                                                           **part.get("properties", {})}}
        return sample(merged, rnd, depth + 1)
    if schema.get("enum") and rnd.random() < 0.8:
        return rnd.choice(schema["enum"])
    kind = schema.get("type")
    kind = rnd.choice(kind) if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        out = {}
        for name, sub in props.items():
            if (name in schema.get("required", []) and rnd.random() < 0.95) or rnd.random() < 0.5:
                out[name] = sample(sub, rnd, depth + 1)
        if rnd.random() < 0.1:
            out[rnd.choice(["extra", "zz", "type"])] = rnd.choice(OTHERS)
        return out
    if kind == "array":
        return [sample(schema.get("items", {}), rnd, depth + 1)
                for _ in range(rnd.choice([0, 1, 2, 3]))]
    if kind == "integer":
        near = [schema[k] + d for k in ("minimum", "maximum") if k in schema for d in (-1, 0, 1)]
        return rnd.choice(INTEGERS + near)
    if kind == "number":
        return rnd.choice([*INTEGERS[:6], 0.5, -2.25, 1e+300])
    if kind == "boolean":
        return rnd.choice([True, False, 1, 0])
    if kind == "string":
        for example_key in ("example", "default"):
            if isinstance(schema.get(example_key), str) and rnd.random() < 0.3:
                return schema[example_key]
        return rnd.choice(STRINGS)
    return rnd.choice(OTHERS + STRINGS + INTEGERS)


@pytest.mark.parametrize(("name", "schema", "examples"), SCHEMAS, ids=[s[0] for s in SCHEMAS])
def test_never_passes_what_jsonschema_refuses(name: str, schema: dict[str, Any],
                                              examples: list[Any]) -> None:
    check = fast_check(schema)
    assert check is not None, f"{name}: the schema did not compile"
    validator = compiled(schema)
    rnd = random.Random(name)
    passed = 0
    for i in range(800):
        body = mutate(examples[i % len(examples)], rnd) if examples and i % 2 else sample(
            schema, rnd)
        if check(body):
            passed += 1
            errors = [e.message for e in validator.iter_errors(body)]
            assert errors == [], f"{name}: passed {body!r}, jsonschema says {errors}"
    # Not vacuous: valid bodies are reached, and the spec's own examples pass the check.
    assert passed > 0, f"{name}: no generated body passed"
    for example in examples:
        assert check(example) == validator.is_valid(example), f"{name}: {example!r}"


def test_the_rules_connexion_and_the_sandbox_add_to_draft_4() -> None:
    schema = {"type": "object", "properties": {
        "count": {"type": "integer"},
        "note": {"type": "string", "nullable": True},
        "kind": {"type": "string", "enum": ["a", "b"], "nullable": True},
        "at": {"type": "string", "format": "date-time"},
        "mail": {"type": "string", "format": "email"}}}
    check = fast_check(schema)
    assert check is not None
    assert check({"count": INT64 - 1}) and check({"count": -INT64})
    assert not check({"count": INT64}) and not check({"count": -INT64 - 1})
    assert not check({"count": 1.0}) and not check({"count": True})
    assert check({"note": None, "kind": None}) and not check({"kind": "c"})
    assert check({"at": "2025-01-15T10:00:00Z"}) == compiled(schema).is_valid(
        {"at": "2025-01-15T10:00:00Z"})
    assert not check({"at": "yesterday"}) and not check({"mail": "nobody"})
    body: dict[str, Any] = {"count": 3}
    check(body)
    assert body == {"count": 3}  # defaults are never filled in


def parameter_schemas() -> list[tuple[str, dict[str, Any]]]:
    """(name, schema) of every path, query, header and cookie parameter of the five specs."""
    found = []
    for name in [f.spec_file for f in FACES] + ["sandbox.yaml"]:
        spec = resolve_refs(load_spec(Settings(), name))
        for path, item in spec["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if not isinstance(op, dict) or method == "parameters":
                    continue
                for param in [*shared, *op.get("parameters", [])]:
                    found.append((f"{name} {method.upper()} {path} {param['in']} "
                                  f"{param['name']}", param.get("schema", param)))
    return found


PARAMETERS = parameter_schemas()


@pytest.mark.parametrize(("name", "schema"), PARAMETERS, ids=[p[0] for p in PARAMETERS])
def test_parameters_never_pass_what_jsonschema_refuses(name: str, schema: dict[str, Any]
                                                       ) -> None:
    # Parameters are checked after the URI parser has converted them (strings, integers,
    # lists of them), with plain Draft 4 plus the int64 rule.
    check = fast_check(schema)
    assert check is not None, f"{name}: the schema did not compile"
    validator = compiled(schema, Draft4Validator)
    rnd = random.Random(name)
    passed = 0
    for i in range(400):
        # Dashboard asset names: the one parameter with a pattern no sample would match.
        value = sample(schema, rnd) if i % 10 else rnd.choice(["dashboard.js", "app.css"])
        if check(value):
            passed += 1
            errors = [e.message for e in validator.iter_errors(value)]
            assert errors == [], f"{name}: passed {value!r}, jsonschema says {errors}"
        else:
            assert not validator.is_valid(value), f"{name}: refused {value!r}, which is valid"
    assert passed > 0, f"{name}: no generated value passed"
